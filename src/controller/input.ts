// The desired-state input of one namespace, read from the cache.
import type { V1Deployment, V1Namespace } from '@kubernetes/client-node';
import { clusterIPOf } from '../cluster/admission-context.js';
import type { ClusterCache } from '../cluster/cache.js';
import type { NamespaceInput } from '../core/desired-types.js';
import { GATEWAY_SERVICE, MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../names.js';

export const CLUSTER_DNS = { namespace: 'kube-system', name: 'kube-dns' } as const;

export type InputCacheView = Pick<ClusterCache, 'services' | 'service' | 'managedPods' | 'ingresses' | 'workload' | 'istioObjects'>;

const byName = (a: { metadata?: { name?: string } }, b: { metadata?: { name?: string } }): number =>
  (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '');

export function buildNamespaceInput(cache: InputCacheView, namespace: V1Namespace): NamespaceInput {
  const ns = namespace.metadata?.name ?? '';
  const clusterDnsIP = clusterIPOf(cache.service(CLUSTER_DNS.namespace, CLUSTER_DNS.name));
  const gateway = cache.workload<V1Deployment>('deployments', ns, GATEWAY_SERVICE);
  return {
    namespace,
    // Sorted so the desired state does not depend on watch arrival order.
    pods: [...cache.managedPods(ns)].sort(byName),
    services: [...cache.services(ns)].sort(byName),
    ingresses: [...cache.ingresses(ns)].sort(byName),
    istio: cache.istioObjects(ns),
    ...(clusterDnsIP ? { clusterDnsIP } : {}),
    ...(gateway?.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE ? { gatewayDeployment: gateway } : {}),
  };
}
