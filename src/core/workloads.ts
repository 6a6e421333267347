// Which workload pod templates the webhook will NOT manage, so a Service whose selector also
// matches them can say so (issue 11, item 4). Pure: templates in, named label sets out. The
// decision mirrors mutatePod: wpgw.io/inject "false" opts out, Windows evidence or "true" opts in,
// hostNetwork / HostProcess pods are admitted unmanaged.
import type { V1ObjectMeta, V1PodSpec, V1PodTemplateSpec } from '@kubernetes/client-node';
import { INJECT_KEY, NUDGE_ANNOTATION, appServiceName } from '../names.js';
import { isHostProcess, windowsEvidence } from './detect.js';
import { serviceSelects } from './labels.js';

/** Argo Rollouts' Rollout: a workload kind like Deployment (pod template at spec.template). */
export const ROLLOUT_KIND = { apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', plural: 'rollouts' } as const;

/** Any object that may carry a pod template, read through podTemplateOf. */
export interface WorkloadObject {
  apiVersion?: string;
  kind?: string;
  metadata?: V1ObjectMeta;
  spec?: unknown;
}

/** Kinds keeping their pod template at spec.template. */
const TEMPLATE_AT_SPEC = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job']);

interface TemplateHolder {
  template?: V1PodTemplateSpec;
  jobTemplate?: { spec?: { template?: V1PodTemplateSpec } };
}

/**
 * Where each workload kind keeps its pod template; undefined for kinds wpgw does not know. A
 * Rollout with spec.workloadRef borrows a Deployment's template and has none of its own. An
 * object without a kind (a typed cache list) is read at either place.
 */
export function podTemplateOf(w: WorkloadObject): V1PodTemplateSpec | undefined {
  const spec = (typeof w.spec === 'object' && w.spec !== null ? w.spec : {}) as TemplateHolder;
  if (w.kind === undefined) return spec.template ?? spec.jobTemplate?.spec?.template;
  if (TEMPLATE_AT_SPEC.has(w.kind)) return spec.template;
  if (w.kind === ROLLOUT_KIND.kind) return w.apiVersion?.startsWith('argoproj.io/') ? spec.template : undefined;
  if (w.kind === 'CronJob') return spec.jobTemplate?.spec?.template;
  return undefined;
}

/** "Kind/name" of the controller owning the object, if any. */
function controllerOf(o: WorkloadObject): string | undefined {
  const ref = o.metadata?.ownerReferences?.find((r) => r.controller);
  return ref ? `${ref.kind}/${ref.name}` : undefined;
}

/**
 * The workloads that stand for their pods, with their templates. A Deployment's ReplicaSets, a
 * Rollout's ReplicaSets, a CronJob's Jobs are named by their owner; when the owner is not listed
 * (not watched, no RBAC, deleted) they stand for it themselves.
 */
export function topLevelWorkloads(
  list: readonly WorkloadObject[],
): Array<WorkloadTemplate & { object: WorkloadObject; template: V1PodTemplateSpec }> {
  const listed = new Set(list.map((w) => `${w.kind ?? ''}/${w.metadata?.name ?? ''}`));
  const out: Array<WorkloadTemplate & { object: WorkloadObject; template: V1PodTemplateSpec }> = [];
  for (const object of list) {
    const owner = controllerOf(object);
    const template = podTemplateOf(object);
    if (template && !(owner && listed.has(owner)))
      out.push({ object, workload: `${object.kind ?? 'workload'}/${object.metadata?.name ?? ''}`, template });
  }
  return out;
}

export interface WorkloadTemplate {
  /** "Kind/name" of the top-level workload (a Deployment, not its ReplicaSets). */
  workload: string;
  template: { metadata?: V1ObjectMeta; spec?: V1PodSpec } | undefined;
}

export type UnmanagedWhy = 'not Windows' | 'opted out' | 'host network';

export interface UnmanagedWorkload {
  workload: string;
  why: UnmanagedWhy;
  labels: Readonly<Record<string, string>>;
}

/** Why the webhook would leave pods of this template unmanaged, or undefined if it manages them. */
export function unmanagedBecause(
  template: WorkloadTemplate['template'],
  runtimeClassOS: (name: string) => string | undefined,
): UnmanagedWhy | undefined {
  const meta = template?.metadata;
  const inject = meta?.labels?.[INJECT_KEY] ?? meta?.annotations?.[INJECT_KEY];
  if (inject === 'false') return 'opted out';
  const spec = template?.spec;
  if (!spec || (inject !== 'true' && !windowsEvidence(spec, runtimeClassOS))) return 'not Windows';
  if (spec.hostNetwork || (Array.isArray(spec.containers) && isHostProcess(spec))) return 'host network';
  return undefined;
}

export function unmanagedWorkloads(
  list: readonly WorkloadTemplate[],
  runtimeClassOS: (name: string) => string | undefined,
): UnmanagedWorkload[] {
  const out: UnmanagedWorkload[] = [];
  for (const w of list) {
    const why = unmanagedBecause(w.template, runtimeClassOS);
    const labels = w.template?.metadata?.labels ?? {};
    if (why && Object.keys(labels).length > 0) out.push({ workload: w.workload, why, labels });
  }
  return out.sort((a, b) => a.workload.localeCompare(b.workload));
}

const MAX_NAMED = 5;

/** The warning for a re-pointed Service whose selector also matches unmanaged workloads. */
export function overlapWarning(service: string, app: string, others: readonly UnmanagedWorkload[]): string {
  const named = others
    .slice(0, MAX_NAMED)
    .map((o) => `${o.workload} (${o.why})`)
    .join(', ');
  const more = others.length > MAX_NAMED ? ` and ${others.length - MAX_NAMED} more` : '';
  return (
    `its selector also matches workloads wpgw does not manage: ${named}${more}. ${app} selects only the wpgw-managed ` +
    `pods (wpgw.io/managed=true), so those get no traffic through ${service} any more; give them their own Service, ` +
    `or narrow the selector of ${service} to the Windows pods`
  );
}

/** A re-pointed Service as the overlap checks read it: its recorded selector, and whether `<name>-app` is narrowed. */
export interface RepointedService {
  name: string;
  selector: Readonly<Record<string, string>>;
  onlyManaged: boolean;
}

/** The re-pointed Services whose `<name>-app` selects a pod with these labels (recorded selector, not narrowed). */
export function servicesReaching(
  labels: Readonly<Record<string, string>>,
  services: readonly RepointedService[],
): RepointedService[] {
  return services.filter((s) => !s.onlyManaged && serviceSelects(s.selector, labels));
}

/**
 * For a pod wpgw leaves unmanaged that re-pointed Services still reach: their `<name>-app` was
 * not narrowed to the managed pods because, when they were admitted, the webhook did not know
 * this pod (it was not there, or is a bare Pod: the caches hold workloads, not unmanaged Pods).
 */
export function unmanagedPodWarning(
  why: UnmanagedWhy,
  services: readonly RepointedService[],
  subject: 'this pod' | 'its pods' = 'this pod',
): string {
  const names = services
    .slice(0, MAX_NAMED)
    .map((s) => `"${s.name}"`)
    .join(', ');
  const apps = services
    .slice(0, MAX_NAMED)
    .map((s) => `"${appServiceName(s.name)}"`)
    .join(', ');
  const more = services.length > MAX_NAMED ? ` and ${services.length - MAX_NAMED} more` : '';
  const [it, the] = subject === 'this pod' ? ['it', 'the pod'] : ['them', 'the pod template'];
  // Re-admission (any change to the Service) narrows <name>-app once the webhook knows a workload
  // of these pods; an unchanged `kubectl apply` sends nothing, so name a change that always works.
  const readmit = `kubectl annotate --overwrite service ${services[0]?.name ?? '<name>'} ${NUDGE_ANNOTATION}=now`;
  return (
    `wpgw does not manage ${subject} (${why}), yet the re-pointed Service ${names}${more} selects ${it}, so ${apps} sends ` +
    `${it} the wpgw gateway's traffic without mTLS (a sidecar under STRICT mTLS refuses it); give ${the} labels that ` +
    `selector does not match, or ${subject === 'this pod' ? 'run it from a Deployment (or another workload) and then ' : ''}` +
    `have the webhook admit the Service again (${readmit}), which narrows ${apps} to the wpgw-managed pods`
  );
}
