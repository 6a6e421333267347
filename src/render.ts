// `wpgw render`: the webhook's and the controller's result, offline. Same code path as the webhook
// (mutatePod / mutateService through an AdmissionContext built from the input), like
// `istioctl kube-inject`. Text in, text out; the CLI does the file I/O.
import type {
  V1Ingress,
  V1Namespace,
  V1ObjectMeta,
  V1Pod,
  V1PodTemplateSpec,
  V1Service,
} from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import type { AdmissionContext } from './core/context.js';
import type { Sidecar } from './core/mesh-scope.js';
import { checkShape } from './core/admission.js';
import { namespaceHints, workloadHints } from './core/hints.js';
import { desiredNamespaceState } from './core/desired.js';
import { istioRootNamespace } from './core/desired/egress.js';
import { callerObjects } from './core/desired/user-conflicts.js';
import { subjectText, type DesiredOptions, type KubeObject, type UserIstioObjects } from './core/desired-types.js';
import { mutatePod, type PodLike } from './core/pod.js';
import { mutateService } from './core/service.js';
import { podTemplateOf, servicesReaching, unmanagedBecause, unmanagedPodWarning } from './core/workloads.js';
import { groupBy, inputContext } from './render-context.js';
import { DEFAULT_CLUSTER_DOMAIN, MANAGED_BY_LABEL, MANAGED_BY_VALUE } from './names.js';
import {
  DEFAULT_COREDNS_IMAGE,
  DEFAULT_GATEWAY_REPLICAS,
  PLACEHOLDER_DNS_IP,
  PLACEHOLDER_GATEWAY_IP,
} from './defaults.js';

export interface RenderOptions {
  gatewayIP?: string;
  dnsIP?: string;
  defaultNamespace?: string;
  clusterDomain?: string;
  corednsImage?: string;
  istioRevision?: string;
  /** Istio's root namespace: its policies in the input are mesh-wide (default istio-system). */
  istioRootNamespace?: string;
  /** Cluster DNS address wpgw-dns forwards to (render cannot look it up). */
  clusterDnsIP?: string;
}

export interface RenderResult {
  yaml: string;
  /** The same objects as `yaml`, in order. */
  objects: unknown[];
  /** What happened to each object, for a person (stderr). */
  report: string[];
  /** Objects that the webhook would deny, with the reason. Non-empty means failure. */
  errors: string[];
}

/** Kinds without a namespace: they never make render invent one (or a gateway for it). */
const CLUSTER_SCOPED_KINDS = new Set([
  'Namespace',
  'RuntimeClass',
  'Node',
  'PersistentVolume',
  'StorageClass',
  'CSIDriver',
  'CSINode',
  'VolumeAttachment',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
  'APIService',
  'PriorityClass',
  'IngressClass',
  'GatewayClass',
  'MutatingWebhookConfiguration',
  'ValidatingWebhookConfiguration',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
  'MutatingAdmissionPolicy',
  'MutatingAdmissionPolicyBinding',
  'CertificateSigningRequest',
  'ClusterIssuer',
  'FlowSchema',
  'PriorityLevelConfiguration',
]);

/**
 * Adds a document's objects to `docs`: a `List` or any `*List` with `items` is unwrapped (items of
 * a typed list such as DeploymentList carry no kind: it comes from the list). Returns a problem.
 */
function unwrap(v: unknown, docs: Doc[]): string | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    return 'not an object (a Kubernetes object or a List of them)';
  const doc = v as Doc;
  if (typeof doc.kind === 'string' && doc.kind.endsWith('List') && Array.isArray(doc.items)) {
    const itemKind = doc.kind === 'List' ? undefined : doc.kind.slice(0, -'List'.length);
    for (const [i, item] of (doc.items as unknown[]).entries()) {
      if (typeof item !== 'object' || item === null || Array.isArray(item))
        return `${doc.kind} item ${i + 1} is not an object`;
      const it = item as Doc;
      const filled = itemKind && it.kind === undefined ? { apiVersion: doc.apiVersion, kind: itemKind, ...it } : it;
      const problem = unwrap(filled, docs);
      if (problem) return problem;
    }
    return undefined;
  }
  if (
    doc.metadata !== undefined &&
    (typeof doc.metadata !== 'object' || doc.metadata === null || Array.isArray(doc.metadata))
  ) {
    return `${String(doc.kind ?? '<no kind>')}: metadata must be an object`;
  }
  const meta = doc.metadata as Record<string, unknown> | undefined;
  for (const key of ['name', 'namespace'] as const) {
    if (meta?.[key] !== undefined && typeof meta[key] !== 'string')
      return `${String(doc.kind ?? '<no kind>')}: metadata.${key} must be a string`;
  }
  docs.push(doc);
  return undefined;
}

/** True when a value contains itself: yaml turns `&a {x: *a}` into a cyclic object. */
function isCyclic(v: unknown, ancestors: Set<unknown> = new Set()): boolean {
  if (typeof v !== 'object' || v === null) return false;
  if (ancestors.has(v)) return true;
  ancestors.add(v);
  const found = Object.values(v).some((child) => isCyclic(child, ancestors));
  ancestors.delete(v);
  return found;
}

/** An object of a kind render does not know that still carries a pod template (spec.template.spec). */
function hasPodTemplate(d: Doc): boolean {
  const template = (d.spec as { template?: { spec?: { containers?: unknown } } } | undefined)?.template;
  return Array.isArray(template?.spec?.containers);
}
type Doc = Record<string, unknown> & { kind?: string; metadata?: { name?: string; namespace?: string } };

/** Where each workload kind keeps its pod template (the core's one definition), for render's documents. */
function templateOf(doc: Doc): V1PodTemplateSpec | undefined {
  return doc.kind === undefined ? undefined : podTemplateOf(doc);
}

function setTemplate(doc: Doc, template: PodLike): Doc {
  const spec = { ...(doc.spec as Record<string, unknown>) };
  if (doc.kind === 'CronJob') {
    const jobTemplate = { ...(spec.jobTemplate as Record<string, unknown>) };
    jobTemplate.spec = { ...(jobTemplate.spec as Record<string, unknown>), template };
    spec.jobTemplate = jobTemplate;
  } else spec.template = template;
  return { ...doc, spec };
}

/** VirtualServices and DestinationRules of several namespaces, each keeping its own. */
function routingOf(
  docs: Doc[],
  nsOf: (d: Doc) => string,
): Pick<UserIstioObjects, 'virtualServices' | 'destinationRules'> {
  const of = (kind: string) =>
    docs
      .filter((d) => d.kind === kind && String(d.apiVersion ?? '').startsWith('networking.istio.io/'))
      .map((d) => ({ ...d, metadata: { ...d.metadata, namespace: nsOf(d) } }) as unknown as KubeObject);
  return { virtualServices: of('VirtualService'), destinationRules: of('DestinationRule') };
}

function userIstioOf(docs: Doc[], namespace: string): UserIstioObjects {
  const of = (kind: string, group = 'networking') =>
    docs
      .filter((d) => d.kind === kind && String(d.apiVersion ?? '').startsWith(`${group}.istio.io/`))
      .map((d) => ({ ...d, metadata: { ...d.metadata, namespace } }) as unknown as KubeObject);
  return {
    virtualServices: of('VirtualService'),
    destinationRules: of('DestinationRule'),
    authorizationPolicies: of('AuthorizationPolicy', 'security'),
    peerAuthentications: of('PeerAuthentication', 'security'),
    requestAuthentications: of('RequestAuthentication', 'security'),
  };
}

export function render(input: string, opts: RenderOptions = {}): RenderResult {
  const report: string[] = [];
  const errors: string[] = [];
  const clusterDomain = opts.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN;
  const defaultNs = opts.defaultNamespace ?? 'default';
  const docs: Doc[] = [];
  parseAllDocuments(input).forEach((d, index) => {
    const where = `document ${index + 1}`;
    if (d.errors.length > 0) {
      errors.push(`${where}: YAML error: ${d.errors[0]?.message}`);
      return;
    }
    let v: unknown;
    try {
      v = d.toJS();
    } catch (e) {
      // Recursive or exponential aliases (&a [*a]) and similar: the yaml library refuses them.
      errors.push(`${where}: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    if (v === null || v === undefined) return;
    if (isCyclic(v)) {
      errors.push(
        `${where}: a YAML alias refers to the node that contains it (a cycle), which no Kubernetes object can hold`,
      );
      return;
    }
    const problem = unwrap(v, docs);
    if (problem) errors.push(`${where}: ${problem}`);
  });
  if (errors.length > 0) return { yaml: '', objects: [], report, errors };

  const clusterScoped = (d: Doc) => CLUSTER_SCOPED_KINDS.has(d.kind ?? '');
  const nsOf = (d: Doc) => d.metadata?.namespace ?? defaultNs;
  const label = (d: Doc) =>
    `${d.kind ?? '<no kind>'}/${d.metadata?.name ?? '<unnamed>'}${clusterScoped(d) ? '' : ` in namespace ${nsOf(d)}`}`;
  const seen = new Map<string, number>();
  for (const d of docs) {
    const key = `${d.apiVersion ?? ''}|${label(d)}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
    if (seen.get(key) === 2)
      report.push(`warning: ${label(d)} appears more than once in the input; applied, the last one wins`);
  }
  const namespaces = new Map<string, V1Namespace>();
  for (const d of docs.filter((d) => d.kind === 'Namespace')) namespaces.set(d.metadata?.name ?? '', d as V1Namespace);
  for (const d of docs)
    if (!clusterScoped(d)) {
      const ns = nsOf(d);
      if (!namespaces.has(ns)) namespaces.set(ns, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    }

  const addresses = { gatewayIP: opts.gatewayIP ?? PLACEHOLDER_GATEWAY_IP, dnsIP: opts.dnsIP ?? PLACEHOLDER_DNS_IP };
  const { ctx, admitted } = inputContext(docs, { ...addresses, defaultNamespace: defaultNs, clusterDomain });
  const ingresses = groupBy(docs.filter((d) => d.kind === 'Ingress') as Array<Doc & V1Ingress>, nsOf);
  const services: V1Service[] = [];

  const outDocs: Doc[] = [];
  const pods = new Map<string, V1Pod[]>();
  const leftUnmanaged: Array<{ d: Doc; ns: string; pod: PodLike; warnings: string[] }> = [];
  const ownedByController = (d: Doc) =>
    (d.metadata as { labels?: Record<string, string> } | undefined)?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
  for (const d of docs) {
    const ns = nsOf(d);
    // Objects the controller owns are regenerated below, so rendering rendered output is stable.
    if (ownedByController(d)) continue;
    if (clusterScoped(d)) {
      if (d.kind === 'Namespace')
        namespaceHints(d.metadata?.name ?? '', d.metadata as V1ObjectMeta).forEach((h) =>
          report.push(`warning: ${label(d)}: ${h}`),
        );
      outDocs.push(d);
      continue;
    }
    const podLike = d.kind === 'Pod' ? (d as PodLike) : templateOf(d);
    const shape = podLike
      ? checkShape(podLike as Record<string, unknown>, 'Pod')
      : d.kind === 'Service'
        ? checkShape(d, 'Service')
        : undefined;
    if (shape) {
      errors.push(
        `${label(d)}: not a valid ${d.kind === 'Pod' || d.kind === 'Service' ? d.kind : 'pod template'}: ${shape}`,
      );
      continue;
    }
    if (!podLike && hasPodTemplate(d)) {
      report.push(
        `${label(d)}: not examined (wpgw does not know where ${d.kind ?? 'this kind'} keeps its pod template); in a cluster its Pods are still admitted, but its template does not count as Windows for re-pointing Services`,
      );
    }
    if (podLike && d.kind !== 'Pod')
      workloadHints(d.kind ?? 'workload', d.metadata as V1ObjectMeta, podLike.metadata).forEach((h) =>
        report.push(`warning: ${label(d)}: ${h}`),
      );
    if (podLike) {
      const outcome = mutatePod({ pod: podLike, namespace: ns, ctx, clusterDomain });
      if (outcome.action === 'deny') {
        errors.push(`${label(d)}: ${outcome.message}`);
        continue;
      }
      outcome.warnings.forEach((w) => report.push(`warning: ${label(d)}: ${w}`));
      if (d.kind === 'Pod' && (outcome.action === 'skip' || outcome.reason === 'stripped')) {
        leftUnmanaged.push({
          d,
          ns,
          pod: outcome.action === 'skip' ? podLike : outcome.pod,
          warnings: outcome.warnings,
        });
      }
      if (outcome.action === 'skip') {
        report.push(`${label(d)}: unchanged (${outcome.reason})`);
        outDocs.push(d);
        continue;
      }
      report.push(`${label(d)}: ${outcome.reason}`);
      const mutated = d.kind === 'Pod' ? (outcome.pod as Doc) : setTemplate(d, outcome.pod);
      outDocs.push(mutated);
      const asPod: V1Pod = {
        metadata: { ...outcome.pod.metadata, name: d.metadata?.name ?? 'pod', namespace: ns },
        spec: outcome.pod.spec!,
      };
      pods.set(ns, [...(pods.get(ns) ?? []), asPod]);
      continue;
    }
    if (d.kind === 'Service') {
      const svc = { ...d, metadata: { ...d.metadata, namespace: ns } } as V1Service;
      const outcome = mutateService(svc, ns, ctx);
      if (outcome.action === 'deny') {
        errors.push(`${label(d)}: ${outcome.message}`);
        continue;
      }
      outcome.warnings.forEach((w) => report.push(`warning: ${label(d)}: ${w}`));
      const result = outcome.action === 'mutate' ? outcome.service : svc;
      report.push(`${label(d)}: ${outcome.action === 'mutate' ? outcome.reason : `unchanged (${outcome.reason})`}`);
      services.push(result);
      admitted(result, ns);
      outDocs.push(outcome.action === 'mutate' ? (outcome.service as Doc) : d);
      continue;
    }
    outDocs.push(d);
  }
  // A Pod admitted before the Service that re-points over it got no warning at admission (nor
  // would it in a cluster, where `wpgw status` then names it): say it here, as status would.
  for (const { d, ns, pod, warnings } of leftUnmanaged) {
    const why = unmanagedBecause(pod, ctx.runtimeClassOS);
    const reaching = why ? servicesReaching(pod.metadata?.labels ?? {}, ctx.repointedServices?.(ns) ?? []) : [];
    const message = why && reaching.length > 0 ? unmanagedPodWarning(why, reaching) : undefined;
    if (message && !warnings.some((w) => w.endsWith(message))) report.push(`warning: ${label(d)}: ${message}`);
  }
  if (errors.length > 0) return { yaml: '', objects: [], report, errors };

  const desiredOpts: DesiredOptions = {
    clusterDomain,
    defaultGatewayReplicas: DEFAULT_GATEWAY_REPLICAS,
    corednsImage: opts.corednsImage ?? DEFAULT_COREDNS_IMAGE,
    ...(opts.istioRevision ? { istioRevision: opts.istioRevision } : {}),
    pinnedGatewayIP: opts.gatewayIP ?? PLACEHOLDER_GATEWAY_IP,
    pinnedDnsIP: opts.dnsIP ?? PLACEHOLDER_DNS_IP,
  };
  const generated: KubeObject[] = [];
  const root = istioRootNamespace({ istioRootNamespace: opts.istioRootNamespace });
  for (const [ns, namespace] of [...namespaces.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
    // The root namespace given only for its mesh-wide policies is no namespace to opt in.
    if (
      ns === root &&
      docs.every((d) => nsOf(d) !== ns || clusterScoped(d) || String(d.apiVersion ?? '').includes('istio.io/'))
    )
      continue;
    const state = desiredNamespaceState(
      {
        namespace,
        pods: pods.get(ns) ?? [],
        services: services.filter((s) => s.metadata?.namespace === ns),
        // Declared Services of other namespaces in the input: the gateway's egress names their pods.
        destinationServices: services.filter((s) => s.metadata?.namespace !== ns),
        clusterDnsIP: opts.clusterDnsIP ?? '10.96.0.10',
        ingresses: ingresses.get(ns) ?? [],
        // The user's own Istio objects in the input shape the inbound routes, as in a cluster.
        istio: userIstioOf(
          docs.filter((d) => nsOf(d) === ns && !ownedByController(d)),
          ns,
        ),
        // Callers' routes in the input's other namespaces, and the root namespace's policies.
        callerIstio: callerObjects(
          routingOf(
            docs.filter((d) => nsOf(d) !== ns && !ownedByController(d)),
            nsOf,
          ),
          ns,
        ),
        ...(ns !== root
          ? {
              meshIstio: {
                namespace: root,
                objects: userIstioOf(
                  docs.filter((d) => nsOf(d) === root && !ownedByController(d)),
                  root,
                ),
              },
            }
          : {}),
        // Mesh-wide outbound picks from every Service in the input, as from the cluster's.
        clusterServices: services,
        sidecars: docs.filter((d) => d.kind === 'Sidecar' && nsOf(d) === ns) as Sidecar[],
      },
      desiredOpts,
    );
    generated.push(...state.objects);
    state.notes.forEach((n) => report.push(`namespace ${ns}: ${n}`));
    state.conflicts.forEach((c) => report.push(`conflict: namespace ${ns}: ${subjectText(c)}: ${c.message}`));
    if ((pods.get(ns) ?? []).length > 0) {
      report.push(`namespace ${ns}: outbound authorization lists pod IPs; the controller fills them in as pods start`);
    }
  }
  const generatedNamespaces = namespaces.size;
  if (!opts.gatewayIP)
    report.push(
      `no --gateway-ip given: using ${PLACEHOLDER_GATEWAY_IP} (a documentation address) as the gateway ClusterIP`,
    );
  if (generatedNamespaces > 1) {
    report.push(
      `${generatedNamespaces} namespaces share the gateway address ${opts.gatewayIP ?? PLACEHOLDER_GATEWAY_IP} here, a placeholder per namespace: in a cluster each namespace's wpgw Service gets its own ClusterIP`,
    );
  }
  const objects = [...outDocs, ...generated];
  const yaml = objects.map((d) => stringify(d, { lineWidth: 0, aliasDuplicateObjects: false })).join('---\n');
  return { yaml, objects, report, errors };
}
