// Settings written where wpgw does not read them: without a word they would silently do nothing.
// Pure: `wpgw render` reports these; the webhook never sees Namespaces or workloads themselves.
import type { V1ObjectMeta } from '@kubernetes/client-node';
import {
  DNS_SERVER_ANNOTATION,
  NS_INJECT_ENABLED,
  NS_INJECT_LABEL,
  OUTBOUND_ANNOTATION,
  REPLICAS_ANNOTATION,
  RESOLVER_ANNOTATION,
  RESTART_ON_IP_CHANGE_ANNOTATION,
} from '../names.js';

/** Namespace settings read from annotations. */
const NAMESPACE_ANNOTATIONS = [RESOLVER_ANNOTATION, DNS_SERVER_ANNOTATION, REPLICAS_ANNOTATION, RESTART_ON_IP_CHANGE_ANNOTATION];
/** Pod settings read from the pod (template) annotations. */
const POD_ANNOTATIONS = [OUTBOUND_ANNOTATION, RESOLVER_ANNOTATION];

export function namespaceHints(name: string, meta: V1ObjectMeta | undefined): string[] {
  const labels = meta?.labels ?? {};
  const annotations = meta?.annotations ?? {};
  const hints: string[] = [];
  for (const key of NAMESPACE_ANNOTATIONS) {
    if (labels[key] !== undefined && annotations[key] === undefined) {
      hints.push(`${key} is set as a label, but wpgw reads it as an annotation: kubectl annotate namespace ${name} ${key}=${labels[key]}`);
    }
  }
  if (annotations[NS_INJECT_LABEL] !== undefined && labels[NS_INJECT_LABEL] === undefined) {
    hints.push(`${NS_INJECT_LABEL} is set as an annotation, but opting in is the label (the webhook configuration selects on it): kubectl label namespace ${name} ${NS_INJECT_LABEL}=${NS_INJECT_ENABLED}`);
  }
  return hints;
}

/** A workload whose own metadata carries pod settings that belong on its pod template. */
export function workloadHints(kind: string, meta: V1ObjectMeta | undefined, template: V1ObjectMeta | undefined): string[] {
  const own = meta?.annotations ?? {};
  const onTemplate = template?.annotations ?? {};
  return POD_ANNOTATIONS.filter((key) => own[key] !== undefined && onTemplate[key] === undefined).map(
    (key) => `${key} is on the ${kind}'s own metadata, where it has no effect: wpgw reads it from the pod template (spec.template.metadata.annotations)`,
  );
}
