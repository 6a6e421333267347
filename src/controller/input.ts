// The desired-state input of one namespace, read from the cache.
import type { V1Namespace } from '@kubernetes/client-node';
import { clusterIPOf } from '../cluster/admission-context.js';
import { CLUSTER_DNS, type ClusterCache } from '../cluster/cache.js';
import type { NamespaceInput } from '../core/desired-types.js';

export { CLUSTER_DNS };

export type InputCacheView = Pick<ClusterCache, 'services' | 'service' | 'managedPods' | 'ingresses'>;

const byName = (a: { metadata?: { name?: string } }, b: { metadata?: { name?: string } }): number =>
  (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '');

export function buildNamespaceInput(cache: InputCacheView, namespace: V1Namespace): NamespaceInput {
  const ns = namespace.metadata?.name ?? '';
  const clusterDnsIP = clusterIPOf(cache.service(CLUSTER_DNS.namespace, CLUSTER_DNS.name));
  return {
    namespace,
    // Sorted so the desired state does not depend on watch arrival order.
    pods: [...cache.managedPods(ns)].sort(byName),
    services: [...cache.services(ns)].sort(byName),
    ingresses: [...cache.ingresses(ns)].sort(byName),
    ...(clusterDnsIP ? { clusterDnsIP } : {}),
  };
}
