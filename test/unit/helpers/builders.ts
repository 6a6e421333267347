// Shared builders for the core tests (the static AdmissionContext and the AdmissionReview builder
// are test/lib/admission.ts): real JSON-patch application, and pods/Services as the webhook leaves
// them (produced by the real mutatePod/mutateService, so desired-state tests consume exactly what
// admission writes).
import jsonpatch, { type Operation } from 'fast-json-patch';
import type { V1Namespace, V1Pod, V1Service, V1ServicePort } from '@kubernetes/client-node';
import type { AdmitResult } from '../../../src/core/admission-types.js';
import { admit } from '../../../src/core/admission.js';
import type { AdmissionContext } from '../../../src/core/context.js';
import type { KubeObject } from '../../../src/core/desired-types.js';
import { mutatePod, type PodLike } from '../../../src/core/pod.js';
import { mutateService } from '../../../src/core/service.js';
import { review, staticContext } from '../../lib/admission.js';

export function deepCopy<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** The JSON patch of an admission response, decoded (undefined when the response carries none). */
export function decodePatch(result: AdmitResult): Operation[] | undefined {
  if (!result.ok || result.review.response.patch === undefined) return undefined;
  return JSON.parse(Buffer.from(result.review.response.patch, 'base64').toString('utf8')) as Operation[];
}

/**
 * Applies the response's patch to a deep copy of `object` the way the API server does: every
 * operation validated against the document, throwing on the first one that does not apply.
 */
export function applyResponse<T>(object: T, result: AdmitResult, banPrototypeModifications = true): T {
  const patch = decodePatch(result);
  if (patch === undefined) return deepCopy(object);
  return jsonpatch.applyPatch(deepCopy(object), patch, true, true, banPrototypeModifications).newDocument;
}

/** admit() + apply: the object as the API server would store it. */
export function admitAndApply<T>(
  kind: 'Pod' | 'Service',
  namespace: string,
  object: T,
  ctx: AdmissionContext,
  operation: 'CREATE' | 'UPDATE' = 'CREATE',
): { result: AdmitResult; stored: T } {
  const result = admit(
    review({ kind, namespace, object, operation, ...(operation === 'UPDATE' ? { oldObject: object } : {}) }),
    ctx,
  );
  return { result, stored: applyResponse(object, result) };
}

// ---- pods and Services as admission leaves them ------------------------------------------------

export interface WindowsPodOptions {
  name: string;
  namespace?: string;
  outbound?: string;
  resolver?: 'hostAliases' | 'dnsConfig';
  /** wpgw.io/mesh-outbound */
  mesh?: string;
  labels?: Record<string, string>;
  ip?: string | string[];
  ctx?: AdmissionContext;
}

/** A Windows pod admitted by the real webhook core, with pod IP(s) as the kubelet reports them. */
export function injectedPod(o: WindowsPodOptions): V1Pod {
  const namespace = o.namespace ?? 'shop';
  const annotations: Record<string, string> = {};
  if (o.outbound !== undefined) annotations['wpgw.io/outbound'] = o.outbound;
  if (o.resolver !== undefined) annotations['wpgw.io/resolver'] = o.resolver;
  if (o.mesh !== undefined) annotations['wpgw.io/mesh-outbound'] = o.mesh;
  const pod: PodLike = {
    metadata: { name: o.name, namespace, labels: o.labels ?? { app: o.name.replace(/-[a-z0-9]+$/, '') }, annotations },
    spec: { nodeSelector: { 'kubernetes.io/os': 'windows' }, containers: [{ name: 'app', image: 'example/app:1' }] },
  };
  const outcome = mutatePod({ pod, namespace, ctx: o.ctx ?? staticContext() });
  if (outcome.action !== 'mutate')
    throw new Error(`test setup: pod ${o.name} was not injected: ${JSON.stringify(outcome)}`);
  const ips = o.ip === undefined ? [] : Array.isArray(o.ip) ? o.ip : [o.ip];
  return {
    ...(outcome.pod as V1Pod),
    status: ips.length > 0 ? { podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) } : {},
  };
}

/** A user Service, re-pointed by the real webhook core (its Windows pods carry `windowsLabels`). */
export function repointedService(
  user: V1Service,
  windowsLabels: Record<string, string>,
  opts: { uid?: string; ctx?: AdmissionContext } = {},
): V1Service {
  const namespace = user.metadata?.namespace ?? 'shop';
  const ctx = opts.ctx ?? staticContext({ windowsLabelSets: { [namespace]: [windowsLabels] } });
  const outcome = mutateService(user, namespace, ctx);
  if (outcome.action !== 'mutate')
    throw new Error(`test setup: service was not re-pointed: ${JSON.stringify(outcome)}`);
  const svc = deepCopy(outcome.service);
  if (opts.uid) svc.metadata = { ...svc.metadata, uid: opts.uid };
  return svc;
}

export function service(
  name: string,
  namespace: string,
  selector: Record<string, string>,
  ports: V1ServicePort[],
): V1Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec: { selector, ports } };
}

export function namespaceObject(name: string, annotations?: Record<string, string>): V1Namespace {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels: { 'wpgw.io/inject': 'enabled' }, ...(annotations ? { annotations } : {}) },
  };
}

// ---- reading desired state ----------------------------------------------------------------------

export function find(objects: KubeObject[], kind: string, name: string): KubeObject | undefined {
  return objects.find((o) => o.kind === kind && o.metadata.name === name);
}

export function get(objects: KubeObject[], kind: string, name: string): KubeObject {
  const o = find(objects, kind, name);
  if (!o) throw new Error(`no ${kind}/${name} among: ${objects.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')}`);
  return o;
}

export function ofKind(objects: KubeObject[], kind: string): KubeObject[] {
  return objects.filter((o) => o.kind === kind);
}

/** Loose accessor for the untyped spec of a generated object. */
export function spec(o: KubeObject | undefined): any {
  return (o as { spec?: unknown } | undefined)?.spec;
}
