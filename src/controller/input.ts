// The desired-state input of one namespace, read from the cache.
import type { V1Deployment, V1Namespace } from '@kubernetes/client-node';
import { clusterIPOf } from '../cluster/admission-context.js';
import { DEFAULT_CLUSTER_DOMAIN, GATEWAY_SERVICE, MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../names.js';
import { CLUSTER_DNS, type ClusterCache } from '../cluster/cache.js';
import type { NamespaceInput } from '../core/desired-types.js';
import { DEFAULT_ISTIO_NAMESPACE } from '../core/desired/egress.js';
import { callerObjects } from '../core/desired/user-conflicts.js';
import { declaredTargets } from '../core/desired/outbound-plan.js';
import { scopeInUse } from '../core/desired/mesh.js';

export { CLUSTER_DNS };

export type InputCacheView = Pick<
  ClusterCache,
  | 'services'
  | 'service'
  | 'managedPods'
  | 'ingresses'
  | 'workload'
  | 'istioObjects'
  | 'allRouting'
  | 'allServices'
  | 'sidecars'
>;

const byName = (a: { metadata?: { name?: string } }, b: { metadata?: { name?: string } }): number =>
  (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '');

/** Sidecars sorted; none at all (not even []) when they cannot be read, so the desired state says so. */
function sidecarsOf(cache: InputCacheView, ns: string): Pick<NamespaceInput, 'sidecars' | 'sidecarsUnreadable'> {
  const list = cache.sidecars(ns);
  return list ? { sidecars: [...list].sort(byName) } : { sidecarsUnreadable: true };
}

export function buildNamespaceInput(
  cache: InputCacheView,
  namespace: V1Namespace,
  clusterDomain = DEFAULT_CLUSTER_DOMAIN,
  rootNamespace = DEFAULT_ISTIO_NAMESPACE,
): NamespaceInput {
  const ns = namespace.metadata?.name ?? '';
  const clusterDnsIP = clusterIPOf(cache.service(CLUSTER_DNS.namespace, CLUSTER_DNS.name));
  const gateway = cache.workload<V1Deployment>('deployments', ns, GATEWAY_SERVICE);
  const pods = [...cache.managedPods(ns)].sort(byName);
  // The gateway's egress policy names the pods behind declared Services of other namespaces; the
  // kubernetes Service's address is one the gateway must never reach as an "external" name.
  const destinationServices = declaredTargets(pods, ns, clusterDomain).flatMap((t) =>
    t.kind === 'service' && t.namespace !== ns ? (cache.service(t.namespace, t.service) ?? []) : [],
  );
  const apiServiceIP = clusterIPOf(cache.service('default', 'kubernetes'));
  // Every Service of the cluster only where mesh-wide outbound is on (the scope picks from them).
  const mesh = scopeInUse(ns, namespace.metadata?.annotations ?? {}, pods).length > 0;
  return {
    namespace,
    // Sorted so the desired state does not depend on watch arrival order.
    pods,
    services: [...cache.services(ns)].sort(byName),
    ingresses: [...cache.ingresses(ns)].sort(byName),
    istio: cache.istioObjects(ns),
    callerIstio: callerObjects(cache.allRouting(), ns),
    ...(ns !== rootNamespace
      ? { meshIstio: { namespace: rootNamespace, objects: cache.istioObjects(rootNamespace) } }
      : {}),
    ...(clusterDnsIP ? { clusterDnsIP } : {}),
    ...(gateway?.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE ? { gatewayDeployment: gateway } : {}),
    ...(destinationServices.length > 0 ? { destinationServices } : {}),
    ...(apiServiceIP ? { clusterAddresses: [apiServiceIP] } : {}),
    ...(mesh ? { clusterServices: cache.allServices(), ...sidecarsOf(cache, ns) } : {}),
  };
}
