// Which live objects to delete: ours (managed-by=wpgw), of a managed kind, and no longer desired.
import { groupKind } from '../cluster/kinds.js';
import { isManagedByWpgw, isTerminating } from '../cluster/objects.js';
import { MANAGED_KINDS, type KubeObject } from '../core/desired-types.js';

/** Identity of an object ignoring its API version (a kind served at two versions is one object). */
export function objectKey(obj: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>): string {
  return `${groupKind(obj.apiVersion, obj.kind)}/${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
}

const MANAGED_GROUP_KINDS = new Set(MANAGED_KINDS.map((k) => groupKind(k.apiVersion, k.kind)));

export function isManagedKind(apiVersion: string, kind: string): boolean {
  return MANAGED_GROUP_KINDS.has(groupKind(apiVersion, kind));
}

/**
 * Live objects to delete. Never returns an object without the managed-by=wpgw label, of a kind
 * outside MANAGED_KINDS, from another namespace, or already being deleted.
 */
export function selectPrunes(
  namespace: string,
  desired: readonly KubeObject[],
  live: readonly KubeObject[],
): KubeObject[] {
  const want = new Set(desired.map(objectKey));
  return live.filter(
    (o) =>
      o.metadata?.namespace === namespace &&
      isManagedByWpgw(o) &&
      isManagedKind(o.apiVersion, o.kind) &&
      !isTerminating(o) &&
      !want.has(objectKey(o)),
  );
}
