// Settings written where wpgw does not read them: without a word they would silently do nothing.
// Pure, one definition of each hint: `wpgw render` reports them, the controller records them as
// Events on the object concerned, `wpgw status` lists them (the webhook never sees Namespaces or
// workloads themselves, and a pod's warning goes to whoever created it: usually a controller).
import type { V1Namespace, V1ObjectMeta, V1PodSpec, V1Service } from '@kubernetes/client-node';
import { asRepointed } from './service.js';
import {
  servicesReaching,
  topLevelWorkloads,
  unmanagedBecause,
  unmanagedPodWarning,
  type WorkloadObject,
} from './workloads.js';
import {
  DNS_SERVER_ANNOTATION,
  INJECT_KEY,
  MANAGED_LABEL,
  NS_INJECT_ENABLED,
  NS_INJECT_LABEL,
  OUTBOUND_ANNOTATION,
  REPLICAS_ANNOTATION,
  RESOLVER_ANNOTATION,
  RESTART_ON_IP_CHANGE_ANNOTATION,
} from '../names.js';

/** Namespace settings read from annotations. */
const NAMESPACE_ANNOTATIONS = [
  RESOLVER_ANNOTATION,
  DNS_SERVER_ANNOTATION,
  REPLICAS_ANNOTATION,
  RESTART_ON_IP_CHANGE_ANNOTATION,
];
/** Pod settings read from the pod (template) annotations. */
const POD_ANNOTATIONS = [OUTBOUND_ANNOTATION, RESOLVER_ANNOTATION];

export function namespaceHints(name: string, meta: V1ObjectMeta | undefined): string[] {
  const labels = meta?.labels ?? {};
  const annotations = meta?.annotations ?? {};
  const hints: string[] = [];
  for (const key of NAMESPACE_ANNOTATIONS) {
    if (labels[key] !== undefined && annotations[key] === undefined) {
      hints.push(
        `${key} is set as a label, but wpgw reads it as an annotation: kubectl annotate namespace ${name} ${key}=${labels[key]}`,
      );
    }
  }
  const value = labels[NS_INJECT_LABEL];
  // kubectl label namespace x wpgw.io/inject=true: a string, valid, and not the opt-in value.
  if (value !== undefined && value !== NS_INJECT_ENABLED && /^(true|yes|on|1|enable|enabled)$/i.test(value)) {
    hints.push(
      `${NS_INJECT_LABEL}=${value} does not opt the namespace in: the value that does is "${NS_INJECT_ENABLED}": kubectl label --overwrite namespace ${name} ${NS_INJECT_LABEL}=${NS_INJECT_ENABLED}`,
    );
  }
  if (annotations[NS_INJECT_LABEL] !== undefined && labels[NS_INJECT_LABEL] === undefined) {
    hints.push(
      `${NS_INJECT_LABEL} is set as an annotation, but opting in is the label (the webhook configuration selects on it): kubectl label namespace ${name} ${NS_INJECT_LABEL}=${NS_INJECT_ENABLED}`,
    );
  }
  return hints;
}

/** A workload whose own metadata carries pod settings that belong on its pod template. */
export function workloadHints(
  kind: string,
  meta: V1ObjectMeta | undefined,
  template: V1ObjectMeta | undefined,
): string[] {
  const own = meta?.annotations ?? {};
  const onTemplate = template?.annotations ?? {};
  return POD_ANNOTATIONS.filter((key) => own[key] !== undefined && onTemplate[key] === undefined).map(
    (key) =>
      `${key} is on the ${kind}'s own metadata, where it has no effect: wpgw reads it from the pod template (spec.template.metadata.annotations)`,
  );
}

/** A pod (template) with wpgw.io/outbound that wpgw will not manage because nothing says Windows. */
export function outboundNotWindowsHint(): string {
  return `has ${OUTBOUND_ANNOTATION} but is not recognised as Windows (spec.os.name, a kubernetes.io/os nodeSelector or required node affinity, or a Windows RuntimeClass), so the annotation has no effect; add one of those, or label it ${INJECT_KEY}: "true" to manage a pod that cannot run a sidecar`;
}

type PodObject = { metadata?: V1ObjectMeta; spec?: V1PodSpec };

/** A misplaced setting on one object, for an Event on it or a line of `wpgw status`. */
export interface SettingHint {
  kind: string;
  name: string;
  /** apiVersion of the object (for an Event's involvedObject). */
  apiVersion?: string;
  uid?: string;
  message: string;
}

/**
 * Every misplaced-setting hint of a namespace: its own (label vs annotation, opt-in value), its
 * top-level workloads' (pod settings on the workload's metadata, wpgw.io/outbound on a pod
 * template that is not Windows, pods wpgw leaves unmanaged that a re-pointed Service still
 * reaches) and, when given (status reads every Pod; the caches hold only managed ones), bare Pods'.
 */
export function settingHints(
  namespace: V1Namespace,
  objects: { workloads?: readonly WorkloadObject[]; pods?: readonly PodObject[]; services?: readonly V1Service[] },
  runtimeClassOS: (name: string) => string | undefined,
): SettingHint[] {
  const name = namespace.metadata?.name ?? '';
  const out: SettingHint[] = namespaceHints(name, namespace.metadata).map((message) => ({
    kind: 'Namespace',
    name,
    apiVersion: 'v1',
    uid: namespace.metadata?.uid,
    message,
  }));
  const repointed = (objects.services ?? []).flatMap((svc) => asRepointed(svc, name) ?? []);
  for (const { object, template } of topLevelWorkloads(objects.workloads ?? [])) {
    const kind = object.kind ?? 'workload';
    const messages = workloadHints(kind, object.metadata, template.metadata);
    const why = unmanagedBecause(template, runtimeClassOS);
    if (template.metadata?.annotations?.[OUTBOUND_ANNOTATION] !== undefined && why === 'not Windows') {
      messages.push(`its pod template ${outboundNotWindowsHint()}`);
    }
    const reaching = why ? servicesReaching(template.metadata?.labels ?? {}, repointed) : [];
    if (why && reaching.length > 0) messages.push(unmanagedPodWarning(why, reaching, 'its pods'));
    for (const message of messages)
      out.push({
        kind,
        name: object.metadata?.name ?? '',
        apiVersion: object.apiVersion,
        uid: object.metadata?.uid,
        message,
      });
  }
  // Pods wpgw left unmanaged with no workload over them (owned ones are covered by their workload).
  for (const pod of objects.pods ?? []) {
    if (pod.metadata?.labels?.[MANAGED_LABEL] !== undefined || pod.metadata?.ownerReferences?.some((r) => r.controller))
      continue;
    const why = unmanagedBecause(pod, runtimeClassOS);
    const reaching = why ? servicesReaching(pod.metadata?.labels ?? {}, repointed) : [];
    if (why && reaching.length > 0)
      out.push({
        kind: 'Pod',
        name: pod.metadata?.name ?? '',
        apiVersion: 'v1',
        uid: pod.metadata?.uid,
        message: unmanagedPodWarning(why, reaching),
      });
  }
  // The namespace's own first, then the rest by kind and name.
  const own = out.filter((h) => h.kind === 'Namespace');
  const rest = out
    .filter((h) => h.kind !== 'Namespace')
    .sort((a, b) => `${a.kind}/${a.name}`.localeCompare(`${b.kind}/${b.name}`));
  return [...own, ...rest];
}
