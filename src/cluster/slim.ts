// What the caches keep of each object: the one definition of the fields wpgw's decisions read.
// Applied at the watch edge (kube-source.ts per list page, reflector.ts per event), so a cached
// object is shaped like the Kubernetes object (same field paths, fewer fields) and every reader
// (the webhook's AdmissionContext, the controller's desired state, restore, status, Service rules)
// works on it unchanged. test/unit/cluster-slim.test.ts checks that decisions on slim objects
// equal those on the full ones; a new read of a cached field belongs in these lists.
import { isManagedByWpgw } from './objects.js';
import type { KubeObjectLike } from './store.js';

/** "a.b.c" copies a.b.c whole; "a.list[].x" copies x of every element of a.list. */
type Shape = { [key: string]: Shape | true };

function compile(paths: readonly string[]): Shape {
  const root: Shape = {};
  for (const p of paths) {
    const parts = p.split('.');
    let node = root;
    parts.forEach((part, i) => {
      if (i === parts.length - 1) {
        node[part] = true;
        return;
      }
      const next = node[part];
      if (next === true) return; // a shorter path already keeps the whole subtree
      node = next ?? (node[part] = {});
    });
  }
  return root;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function project(value: unknown, shape: Shape): unknown {
  // Not the shape the schema promises (the API server validates, so only in tests): keep it as is,
  // so a reader sees exactly what it would have seen.
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, sub] of Object.entries(shape)) {
    const many = key.endsWith('[]');
    const name = many ? key.slice(0, -2) : key;
    if (!(name in value)) continue;
    const v = value[name];
    if (sub === true) out[name] = v;
    else if (many && Array.isArray(v)) out[name] = v.map((e) => project(e, sub));
    else out[name] = project(v, sub);
  }
  return out;
}

const META = [
  'apiVersion',
  'kind',
  'metadata.name',
  'metadata.namespace',
  'metadata.uid',
  'metadata.resourceVersion',
  'metadata.creationTimestamp',
  'metadata.deletionTimestamp',
  'metadata.labels',
  'metadata.ownerReferences',
];

/** What a pod template is read for: its labels, Windows evidence (core/detect.ts), opt-outs, host network, restarts. */
function podTemplate(at: string): string[] {
  return [
    `${at}.metadata.labels`,
    `${at}.metadata.annotations`,
    `${at}.spec.os`,
    `${at}.spec.nodeSelector`,
    `${at}.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution`,
    `${at}.spec.runtimeClassName`,
    `${at}.spec.hostNetwork`,
    `${at}.spec.securityContext.windowsOptions`,
    `${at}.spec.containers[].name`,
    `${at}.spec.containers[].securityContext.windowsOptions`,
    `${at}.spec.initContainers[].name`,
    `${at}.spec.initContainers[].securityContext.windowsOptions`,
  ];
}

/** Kinds whose cached objects are projected, by the cache's resource key. */
export type SlimKind =
  | 'namespace'
  | 'service'
  | 'workload'
  | 'ingress'
  | 'runtimeClass'
  | 'istio'
  | 'virtualService'
  | 'managedPod'
  | 'admissionPod'
  | 'managedOutput'
  | 'node'
  | 'serviceCIDR';

const SHAPES: Record<Exclude<SlimKind, 'managedPod' | 'managedOutput'>, Shape> = {
  // The webhook's managed pods: admission reads only which label sets are Windows (core/namespace-view.ts).
  admissionPod: compile(META),
  // Every namespace (they are how an opt-in is noticed): labels; annotations in withOwnAnnotations.
  namespace: compile(META),
  // Selector, ports, type, addresses, session affinity and our annotations: the spec is small.
  service: compile([...META, 'metadata.annotations', 'spec']),
  workload: compile([
    ...META,
    'spec.replicas',
    // Argo Rollouts restart through spec.restartAt (controller/owners.ts).
    'spec.restartAt',
    ...podTemplate('spec.template'),
    ...podTemplate('spec.jobTemplate.spec.template'),
  ]),
  ingress: compile([...META, 'metadata.annotations', 'spec']),
  runtimeClass: compile([...META, 'handler', 'scheduling']),
  // Users' Istio objects (DestinationRule, policies, Sidecar): their specs are read whole (a
  // DestinationRule for <name>-app is carried as it is).
  istio: compile([...META, 'metadata.annotations', 'spec']),
  // Users' VirtualServices, cached in every namespace (callers' routes to a re-pointed Service are
  // checked wherever they are, docs/user-policies.md): hosts, bindings and route destinations, and
  // what a delegate's reports read of its matches. Istio reads the routes themselves.
  virtualService: compile([
    ...META,
    'spec.hosts',
    'spec.gateways',
    'spec.exportTo',
    'spec.http[].name',
    'spec.http[].match[].port',
    'spec.http[].match[].sourceLabels',
    'spec.http[].match[].sourceNamespace',
    'spec.http[].match[].gateways',
    'spec.http[].route[].destination',
    'spec.http[].mirror',
    'spec.tcp[].route[].destination',
    'spec.tls[].route[].destination',
  ]),
  // The cluster's own ranges (core/cluster-ranges.ts): pod CIDRs and the node's own addresses only
  // (a Node's status is large: images, conditions, capacity).
  node: compile([...META, 'spec.podCIDR', 'spec.podCIDRs', 'status.addresses']),
  serviceCIDR: compile([...META, 'spec.cidrs']),
};

/** Namespace annotations wpgw reads (resolver, DNS server, replicas, restarts, Istio revision) all start so. */
const WPGW_ANNOTATION_PREFIX = 'wpgw.io/';

/**
 * Namespaces and workloads keep only wpgw's own annotations of their metadata: the namespace
 * settings, and the misplaced-setting hints (core/hints.ts: `wpgw.io/outbound` written on a
 * Deployment's own metadata instead of its pod template).
 */
function withOwnAnnotations<T extends KubeObjectLike>(obj: T, kind: 'namespace' | 'workload'): T {
  const out = project(obj, SHAPES[kind]) as T;
  const annotations = obj.metadata?.annotations;
  if (!annotations || !out.metadata) return out;
  const ours = Object.entries(annotations).filter(([k]) => k.startsWith(WPGW_ANNOTATION_PREFIX));
  return { ...out, metadata: { ...out.metadata, annotations: Object.fromEntries(ours) } };
}

interface ManagedFieldsEntry {
  operation?: string;
}

/**
 * An object the controller manages: kept whole (its live state is compared with the desired one),
 * but of managedFields only the Apply entries (controller/compare.ts reads its own apply set).
 */
function slimManaged<T extends KubeObjectLike>(obj: T): T {
  const meta = obj.metadata as (T['metadata'] & { managedFields?: ManagedFieldsEntry[] }) | undefined;
  if (!meta?.managedFields) return obj;
  const applied = meta.managedFields.filter((e) => e?.operation === 'Apply');
  const { managedFields: _all, ...rest } = meta;
  return { ...obj, metadata: applied.length > 0 ? { ...rest, managedFields: applied } : rest };
}

/** Managed pods (restore, drift, nudges, the gateway's NetworkPolicies read them): all but managedFields and most of status. */
function slimManagedPod<T extends KubeObjectLike>(obj: T): T {
  const { managedFields: _m, ...meta } = (obj.metadata ?? {}) as Record<string, unknown>;
  const status = (obj as { status?: Record<string, unknown> }).status;
  const out: Record<string, unknown> = { ...(obj as Record<string, unknown>), metadata: meta };
  if (status) {
    const kept: Record<string, unknown> = {};
    for (const k of ['phase', 'podIP', 'podIPs'] as const) if (k in status) kept[k] = status[k];
    out.status = kept;
  }
  return out as T;
}

/** The cached form of `obj`. Idempotent: slim(slim(x)) equals slim(x). */
export function slimObject<T extends KubeObjectLike>(kind: SlimKind, obj: T): T {
  if (kind === 'managedPod') return slimManagedPod(obj);
  if (kind === 'namespace') return withOwnAnnotations(obj, kind);
  if (kind === 'managedOutput' || isManagedByWpgw(obj)) return slimManaged(obj);
  if (kind === 'workload') return withOwnAnnotations(obj, kind);
  return project(obj, SHAPES[kind]) as T;
}
