// AdmissionContext over the watch cache. Called on every admission, so every answer costs
// O(objects in that namespace) and the expensive ones are memoized per namespace generation.
import type { V1Ingress, V1Service } from '@kubernetes/client-node';
import type { AdmissionContext } from '../core/context.js';
import { DNS_SERVICE, GATEWAY_POD_LABEL, GATEWAY_SERVICE, OS_LABEL, SERVICE_ORIGINAL_ANNOTATION } from '../names.js';
import { WORKLOAD_RESOURCES, type ClusterCache } from './cache.js';
import { serviceOwnerOf, type ServiceOwner } from '../core/service-rules.js';
import { unmanagedWorkloads, type UnmanagedWorkload, type WorkloadTemplate } from '../core/workloads.js';
import { annotationsOf, canonicalLabels, labelsOf, sameStringMap } from './objects.js';
import { isWindowsPodSpec, podTemplateOf } from './windows.js';

type LabelSet = Readonly<Record<string, string>>;

/** The read side of ClusterCache this context needs (so tests can pass a tiny fake). */
export type AdmissionCacheView = Pick<
  ClusterCache,
  'namespace' | 'service' | 'services' | 'managedPods' | 'runtimeClass' | 'workloads' | 'generation' | 'ingresses'
>;

/** A Service's ClusterIP, if it has a real one. */
export function clusterIPOf(svc: V1Service | undefined): string | undefined {
  const ip = svc?.spec?.clusterIP;
  return ip && ip !== 'None' ? ip : undefined;
}

export class CacheAdmissionContext implements AdmissionContext {
  private readonly memo = new Map<string, { gen: number; sets: LabelSet[] }>();
  private readonly unmanagedMemo = new Map<string, { gen: number; list: UnmanagedWorkload[] }>();

  constructor(private readonly cache: AdmissionCacheView) {}

  gatewayIP(namespace: string): string | undefined {
    return clusterIPOf(this.cache.service(namespace, GATEWAY_SERVICE));
  }

  dnsIP(namespace: string): string | undefined {
    return clusterIPOf(this.cache.service(namespace, DNS_SERVICE));
  }

  runtimeClassOS(name: string): string | undefined {
    return this.cache.runtimeClass(name)?.scheduling?.nodeSelector?.[OS_LABEL];
  }

  namespaceAnnotations(namespace: string): Record<string, string> {
    return { ...annotationsOf(this.cache.namespace(namespace)) };
  }

  windowsLabelSets(namespace: string): ReadonlyArray<LabelSet> {
    const gen = this.cache.generation(namespace);
    const hit = this.memo.get(namespace);
    if (hit && hit.gen === gen) return hit.sets;
    const sets = computeWindowsLabelSets(this.cache, namespace, (n) => this.runtimeClassOS(n));
    this.memo.set(namespace, { gen, sets });
    return sets;
  }

  takenInboundPorts(namespace: string, exceptService: string): ReadonlySet<number> {
    const out = new Set<number>();
    for (const svc of this.cache.services(namespace)) {
      if (svc.metadata?.name === exceptService) continue;
      if (!(SERVICE_ORIGINAL_ANNOTATION in annotationsOf(svc))) continue;
      for (const p of svc.spec?.ports ?? []) {
        if (typeof p.targetPort === 'number') out.add(p.targetPort);
      }
    }
    return out;
  }

  gatewaySelectingServicePorts(namespace: string, exceptService: string): ReadonlySet<number> {
    const out = new Set<number>();
    const gatewaySelector = { [GATEWAY_POD_LABEL]: namespace };
    for (const svc of this.cache.services(namespace)) {
      if (svc.metadata?.name === exceptService) continue;
      if (!sameStringMap(svc.spec?.selector, gatewaySelector)) continue;
      for (const p of svc.spec?.ports ?? []) out.add(p.port);
    }
    return out;
  }

  unmanagedWorkloads(namespace: string): ReadonlyArray<UnmanagedWorkload> {
    const gen = this.cache.generation(namespace);
    const hit = this.unmanagedMemo.get(namespace);
    if (hit && hit.gen === gen) return hit.list;
    const templates: WorkloadTemplate[] = [];
    for (const resource of WORKLOAD_RESOURCES) {
      for (const w of this.cache.workloads(resource, namespace)) {
        // A Deployment's ReplicaSets, a CronJob's Jobs, a Rollout's ReplicaSets: named by their owner.
        if (w.metadata?.ownerReferences?.some((r) => r.controller)) continue;
        templates.push({ workload: `${w.kind ?? resource}/${w.metadata?.name ?? ''}`, template: podTemplateOf(w) });
      }
    }
    const list = unmanagedWorkloads(templates, (n) => this.runtimeClassOS(n));
    this.unmanagedMemo.set(namespace, { gen, list });
    return list;
  }

  ingresses(namespace: string): ReadonlyArray<V1Ingress> {
    return this.cache.ingresses(namespace);
  }

  serviceOwner(namespace: string, name: string): ServiceOwner | undefined {
    return serviceOwnerOf(this.cache.service(namespace, name));
  }
}

/** Labels of managed pods plus pod-template labels of the namespace's Windows workloads, de-duplicated. */
export function computeWindowsLabelSets(
  cache: Pick<ClusterCache, 'managedPods' | 'workloads'>,
  namespace: string,
  runtimeClassOS: (name: string) => string | undefined,
): LabelSet[] {
  const seen = new Map<string, LabelSet>();
  const add = (labels: LabelSet): void => {
    if (Object.keys(labels).length === 0) return;
    const k = canonicalLabels(labels);
    if (!seen.has(k)) seen.set(k, Object.freeze({ ...labels }));
  };
  for (const pod of cache.managedPods(namespace)) add(labelsOf(pod));
  for (const resource of WORKLOAD_RESOURCES) {
    for (const w of cache.workloads(resource, namespace)) {
      const tpl = podTemplateOf(w);
      if (tpl && isWindowsPodSpec(tpl.spec, runtimeClassOS)) add(tpl.metadata?.labels ?? {});
    }
  }
  return [...seen.values()];
}
