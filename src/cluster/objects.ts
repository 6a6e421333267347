// Small predicates on raw Kubernetes objects shared by the caches, the controller and `wpgw status`.
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, NS_INJECT_ENABLED, NS_INJECT_LABEL } from '../names.js';
import type { KubeObjectLike } from './store.js';

export { canonicalLabels, serviceSelects } from '../core/labels.js';

export function labelsOf(obj: KubeObjectLike | undefined): Record<string, string> {
  return obj?.metadata?.labels ?? {};
}

export function annotationsOf(obj: KubeObjectLike | undefined): Record<string, string> {
  return obj?.metadata?.annotations ?? {};
}

export function isManagedByWpgw(obj: KubeObjectLike | undefined): boolean {
  return labelsOf(obj)[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
}

export function isOptedIn(namespace: KubeObjectLike | undefined): boolean {
  return labelsOf(namespace)[NS_INJECT_LABEL] === NS_INJECT_ENABLED;
}

export function isTerminating(obj: KubeObjectLike | undefined): boolean {
  return !!obj?.metadata?.deletionTimestamp;
}

/** Time in ms from a metadata timestamp (the API gives strings; typed models claim Date). */
export function timeOf(t: unknown): number | undefined {
  if (t instanceof Date) return t.getTime();
  if (typeof t === 'string') {
    const ms = Date.parse(t);
    return Number.isNaN(ms) ? undefined : ms;
  }
  return undefined;
}
