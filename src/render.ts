// `wpgw render`: the webhook's and the controller's result, offline. Same code path as the webhook
// (mutatePod / mutateService through an AdmissionContext built from the input), like
// `istioctl kube-inject`. Text in, text out; the CLI does the file I/O.
import type { V1Ingress, V1Namespace, V1Pod, V1PodTemplateSpec, V1Service } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import type { AdmissionContext } from './core/context.js';
import { desiredNamespaceState } from './core/desired.js';
import type { DesiredOptions, KubeObject } from './core/desired-types.js';
import { windowsEvidence } from './core/detect.js';
import { mutatePod, type PodLike } from './core/pod.js';
import { ROLLOUT_KIND } from './cluster/kinds.js';
import { mutateService, readOriginal } from './core/service.js';
import { serviceOwnerOf, type ServiceOwner } from './core/service-rules.js';
import { unmanagedWorkloads, type UnmanagedWorkload } from './core/workloads.js';
import { DEFAULT_CLUSTER_DOMAIN, MANAGED_BY_LABEL, MANAGED_BY_VALUE, OS_LABEL, PLACEHOLDER_GATEWAY_IP } from './names.js';

export interface RenderOptions {
  gatewayIP?: string;
  dnsIP?: string;
  defaultNamespace?: string;
  clusterDomain?: string;
  corednsImage?: string;
  /** Cluster DNS address wpgw-dns forwards to (render cannot look it up). */
  clusterDnsIP?: string;
}

export interface RenderResult {
  yaml: string;
  /** What happened to each object, for a person (stderr). */
  report: string[];
  /** Objects that the webhook would deny, with the reason. Non-empty means failure. */
  errors: string[];
}

const PLACEHOLDER_DNS_IP = '192.0.2.53';
export const DEFAULT_COREDNS_IMAGE = 'registry.k8s.io/coredns/coredns:v1.12.4';

type Doc = Record<string, unknown> & { kind?: string; metadata?: { name?: string; namespace?: string } };

/** Where each workload kind keeps its pod template. */
function templateOf(doc: Doc): V1PodTemplateSpec | undefined {
  const spec = doc.spec as Record<string, unknown> | undefined;
  switch (doc.kind) {
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet':
    case 'Job':
      return spec?.template as V1PodTemplateSpec | undefined;
    case ROLLOUT_KIND.kind:
      // Argo Rollouts; a Rollout with spec.workloadRef borrows a Deployment's template instead.
      return typeof doc.apiVersion === 'string' && doc.apiVersion.startsWith('argoproj.io/') ? (spec?.template as V1PodTemplateSpec | undefined) : undefined;
    case 'CronJob':
      return ((spec?.jobTemplate as Record<string, unknown> | undefined)?.spec as Record<string, unknown> | undefined)?.template as
        | V1PodTemplateSpec
        | undefined;
    default:
      return undefined;
  }
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

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) out.set(key(item), [...(out.get(key(item)) ?? []), item]);
  return out;
}

export function render(input: string, opts: RenderOptions = {}): RenderResult {
  const report: string[] = [];
  const errors: string[] = [];
  const clusterDomain = opts.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN;
  const defaultNs = opts.defaultNamespace ?? 'default';
  const docs: Doc[] = [];
  for (const d of parseAllDocuments(input)) {
    if (d.errors.length > 0) {
      errors.push(`YAML error: ${d.errors[0]?.message}`);
      continue;
    }
    const v = d.toJS() as unknown;
    if (v === null || v === undefined) continue;
    if (typeof v !== 'object' || Array.isArray(v)) {
      errors.push('YAML document is not an object');
      continue;
    }
    const doc = v as Doc;
    if (doc.kind === 'List' && Array.isArray(doc.items)) docs.push(...(doc.items as Doc[]));
    else docs.push(doc);
  }
  if (errors.length > 0) return { yaml: '', report, errors };

  const nsOf = (d: Doc) => d.metadata?.namespace ?? defaultNs;
  const label = (d: Doc) => `${d.kind ?? '<no kind>'}/${d.metadata?.name ?? '<unnamed>'} in namespace ${nsOf(d)}`;
  const runtimeClasses = new Map<string, string | undefined>();
  for (const d of docs.filter((d) => d.kind === 'RuntimeClass')) {
    const sel = (d.scheduling as { nodeSelector?: Record<string, string> } | undefined)?.nodeSelector;
    runtimeClasses.set(d.metadata?.name ?? '', sel?.[OS_LABEL]);
  }
  const namespaces = new Map<string, V1Namespace>();
  for (const d of docs.filter((d) => d.kind === 'Namespace')) namespaces.set(d.metadata?.name ?? '', d as V1Namespace);
  for (const d of docs) if (d.kind !== 'Namespace' && d.kind !== 'RuntimeClass') {
    const ns = nsOf(d);
    if (!namespaces.has(ns)) namespaces.set(ns, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  }

  // Windows label sets come from the input's pods and templates, as the webhook's caches would.
  const runtimeClassOS = (n: string) => runtimeClasses.get(n);
  const labelSets = new Map<string, Array<Record<string, string>>>();
  for (const d of docs) {
    const podLike = d.kind === 'Pod' ? (d as PodLike) : templateOf(d);
    if (!podLike) continue;
    const optIn = (podLike.metadata?.labels ?? {})['wpgw.io/inject'] ?? podLike.metadata?.annotations?.['wpgw.io/inject'];
    if (optIn === 'false') continue;
    if (windowsEvidence(podLike.spec, runtimeClassOS) || optIn === 'true') {
      const list = labelSets.get(nsOf(d)) ?? [];
      list.push(podLike.metadata?.labels ?? {});
      labelSets.set(nsOf(d), list);
    }
  }
  // Render sees bare Pods too (the webhook's caches do not): they count like workloads here.
  const unmanaged = new Map<string, UnmanagedWorkload[]>();
  for (const [ns, list] of groupBy(docs.filter((d) => d.kind === 'Pod' || templateOf(d)), nsOf)) {
    const templates = list.map((d) => ({ workload: `${d.kind}/${d.metadata?.name ?? ''}`, template: d.kind === 'Pod' ? (d as PodLike) : templateOf(d) }));
    unmanaged.set(ns, unmanagedWorkloads(templates, runtimeClassOS));
  }
  const ingresses = groupBy(docs.filter((d) => d.kind === 'Ingress') as Array<Doc & V1Ingress>, nsOf);
  const services: V1Service[] = [];
  const inputServices = new Map<string, ServiceOwner | undefined>();
  for (const d of docs.filter((d) => d.kind === 'Service')) inputServices.set(`${nsOf(d)}/${d.metadata?.name ?? ''}`, serviceOwnerOf(d as V1Service));
  const ctx: AdmissionContext = {
    gatewayIP: () => opts.gatewayIP ?? PLACEHOLDER_GATEWAY_IP,
    dnsIP: () => opts.dnsIP ?? PLACEHOLDER_DNS_IP,
    runtimeClassOS,
    namespaceAnnotations: (ns) => namespaces.get(ns)?.metadata?.annotations ?? {},
    windowsLabelSets: (ns) => labelSets.get(ns) ?? [],
    takenInboundPorts: (ns, except) =>
      new Set(
        services
          .filter((s) => s.metadata?.namespace === ns && s.metadata?.name !== except && readOriginal(s))
          .flatMap((s) => (s.spec?.ports ?? []).map((p) => p.targetPort).filter((p): p is number => typeof p === 'number')),
      ),
    gatewaySelectingServicePorts: (ns, except) =>
      new Set(
        services
          .filter((s) => s.metadata?.namespace === ns && s.metadata?.name !== except && readOriginal(s))
          .flatMap((s) => (s.spec?.ports ?? []).map((p) => p.port)),
      ),
    serviceOwner: (ns, name) => inputServices.get(`${ns}/${name}`),
    unmanagedWorkloads: (ns) => unmanaged.get(ns) ?? [],
    ingresses: (ns) => ingresses.get(ns) ?? [],
  };

  const outDocs: Doc[] = [];
  const pods = new Map<string, V1Pod[]>();
  const ownedByController = (d: Doc) =>
    (d.metadata as { labels?: Record<string, string> } | undefined)?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
  for (const d of docs) {
    const ns = nsOf(d);
    // Objects the controller owns are regenerated below, so rendering rendered output is stable.
    if (ownedByController(d)) continue;
    const podLike = d.kind === 'Pod' ? (d as PodLike) : templateOf(d);
    if (podLike) {
      const outcome = mutatePod({ pod: podLike, namespace: ns, ctx, clusterDomain });
      if (outcome.action === 'deny') {
        errors.push(`${label(d)}: ${outcome.message}`);
        continue;
      }
      outcome.warnings.forEach((w) => report.push(`warning: ${label(d)}: ${w}`));
      if (outcome.action === 'skip') {
        report.push(`${label(d)}: unchanged (${outcome.reason})`);
        outDocs.push(d);
        continue;
      }
      report.push(`${label(d)}: ${outcome.reason}`);
      const mutated = d.kind === 'Pod' ? (outcome.pod as Doc) : setTemplate(d, outcome.pod);
      outDocs.push(mutated);
      const asPod: V1Pod = { metadata: { ...outcome.pod.metadata, name: d.metadata?.name ?? 'pod', namespace: ns }, spec: outcome.pod.spec! };
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
      outDocs.push(outcome.action === 'mutate' ? (outcome.service as Doc) : d);
      continue;
    }
    outDocs.push(d);
  }
  if (errors.length > 0) return { yaml: '', report, errors };

  const desiredOpts: DesiredOptions = {
    clusterDomain,
    defaultGatewayReplicas: 2,
    corednsImage: opts.corednsImage ?? DEFAULT_COREDNS_IMAGE,
    pinnedGatewayIP: opts.gatewayIP ?? PLACEHOLDER_GATEWAY_IP,
    pinnedDnsIP: opts.dnsIP ?? PLACEHOLDER_DNS_IP,
  };
  const generated: KubeObject[] = [];
  for (const [ns, namespace] of [...namespaces.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
    const state = desiredNamespaceState(
      {
        namespace,
        pods: pods.get(ns) ?? [],
        services: services.filter((s) => s.metadata?.namespace === ns),
        clusterDnsIP: opts.clusterDnsIP ?? '10.96.0.10',
        ingresses: ingresses.get(ns) ?? [],
      },
      desiredOpts,
    );
    generated.push(...state.objects);
    state.notes.forEach((n) => report.push(`namespace ${ns}: ${n}`));
    state.conflicts.forEach((c) => report.push(`conflict: namespace ${ns}: ${c.subject}: ${c.message}`));
    if ((pods.get(ns) ?? []).length > 0) {
      report.push(`namespace ${ns}: outbound authorization lists pod IPs; the controller fills them in as pods start`);
    }
  }
  if (!opts.gatewayIP) report.push(`no --gateway-ip given: using ${PLACEHOLDER_GATEWAY_IP} (a documentation address) as the gateway ClusterIP`);
  const yaml = [...outDocs, ...generated].map((d) => stringify(d, { lineWidth: 0, aliasDuplicateObjects: false })).join('---\n');
  return { yaml, report, errors };
}
