// AdmissionContext over the watch cache. The answers come from the core's namespaceView (the one
// definition render and dev mode use too); this file only feeds it the cache's per-namespace
// lists and memoizes the view per namespace generation, so an admission costs at most
// O(objects in that namespace) and nothing between changes there.
import type { AdmissionContext } from '../core/context.js';
import { admissionContext, namespaceView, type NamespaceView } from '../core/namespace-view.js';
import type { WorkloadObject } from '../core/workloads.js';
import { OS_LABEL } from '../names.js';
import { WORKLOAD_RESOURCES, type ClusterCache } from './cache.js';

export { clusterIPOf } from '../core/namespace-view.js';

/** The read side of ClusterCache this context needs (so tests can pass a tiny fake). */
export type AdmissionCacheView = Pick<
  ClusterCache,
  'namespace' | 'service' | 'services' | 'managedPods' | 'runtimeClass' | 'workloads' | 'generation' | 'ingresses'
>;

/** The namespace's view, from the cache's indexes (each list read only when an answer needs it). */
export function cacheNamespaceView(
  cache: Pick<ClusterCache, 'namespace' | 'services' | 'managedPods' | 'runtimeClass' | 'workloads' | 'ingresses'>,
  namespace: string,
): NamespaceView {
  return namespaceView(
    namespace,
    {
      namespace: () => cache.namespace(namespace),
      services: () => cache.services(namespace),
      pods: () => cache.managedPods(namespace),
      workloads: () => WORKLOAD_RESOURCES.flatMap((r): WorkloadObject[] => cache.workloads(r, namespace)),
      ingresses: () => cache.ingresses(namespace),
    },
    (name) => runtimeClassOSOf(cache, name),
  );
}

/** The OS a cached RuntimeClass pins (its scheduling.nodeSelector kubernetes.io/os). */
export function runtimeClassOSOf(cache: Pick<ClusterCache, 'runtimeClass'>, name: string): string | undefined {
  return cache.runtimeClass(name)?.scheduling?.nodeSelector?.[OS_LABEL];
}

/** The webhook's AdmissionContext: the core's, over the cache, one view per namespace generation. */
export function cacheAdmissionContext(cache: AdmissionCacheView): AdmissionContext {
  const memo = new Map<string, { gen: number; view: NamespaceView }>();
  const view = (namespace: string): NamespaceView => {
    const gen = cache.generation(namespace);
    const hit = memo.get(namespace);
    if (hit && hit.gen === gen) return hit.view;
    const fresh = cacheNamespaceView(cache, namespace);
    memo.set(namespace, { gen, view: fresh });
    return fresh;
  };
  return admissionContext({ view, runtimeClassOS: (name) => runtimeClassOSOf(cache, name) });
}
