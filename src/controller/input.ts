// The desired-state input of one namespace, read from the cache.
import type { V1Deployment, V1Namespace } from '@kubernetes/client-node';
import { clusterIPOf } from '../cluster/admission-context.js';
import { DEFAULT_CLUSTER_DOMAIN } from '../names.js';
import type { ClusterCache } from '../cluster/cache.js';
import type { NamespaceInput } from '../core/desired-types.js';
import { GATEWAY_SERVICE, MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../names.js';
import { declaredTargets } from '../core/desired/outbound-plan.js';

export const CLUSTER_DNS = { namespace: 'kube-system', name: 'kube-dns' } as const;

export type InputCacheView = Pick<ClusterCache, 'services' | 'service' | 'managedPods' | 'ingresses' | 'workload' | 'istioObjects'>;

const byName = (a: { metadata?: { name?: string } }, b: { metadata?: { name?: string } }): number =>
  (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '');

export function buildNamespaceInput(cache: InputCacheView, namespace: V1Namespace, clusterDomain = DEFAULT_CLUSTER_DOMAIN): NamespaceInput {
  const ns = namespace.metadata?.name ?? '';
  const clusterDnsIP = clusterIPOf(cache.service(CLUSTER_DNS.namespace, CLUSTER_DNS.name));
  const gateway = cache.workload<V1Deployment>('deployments', ns, GATEWAY_SERVICE);
  const pods = cache.managedPods(ns);
  // The gateway's egress policy names the pods behind declared Services of other namespaces; the
  // kubernetes Service's address is one the gateway must never reach as an "external" name.
  const destinationServices = declaredTargets(pods, ns, clusterDomain).flatMap((t) => (t.kind === 'service' && t.namespace !== ns ? (cache.service(t.namespace, t.service) ?? []) : []));
  const apiServiceIP = clusterIPOf(cache.service('default', 'kubernetes'));
  return {
    namespace,
    // Sorted so the desired state does not depend on watch arrival order.
    pods: [...pods].sort(byName),
    services: [...cache.services(ns)].sort(byName),
    ingresses: [...cache.ingresses(ns)].sort(byName),
    istio: cache.istioObjects(ns),
    ...(clusterDnsIP ? { clusterDnsIP } : {}),
    ...(gateway?.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE ? { gatewayDeployment: gateway } : {}),
    ...(destinationServices.length > 0 ? { destinationServices } : {}),
    ...(apiServiceIP ? { clusterAddresses: [apiServiceIP] } : {}),
  };
}
