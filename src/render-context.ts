// The AdmissionContext `wpgw render` admits its input with: the core's namespaceView (the one the
// webhook's cache and dev mode use) over the input's objects, so render and the webhook agree on
// what they know about a namespace. Services are replaced by their admitted form as render goes,
// as they would be in a cluster; Pods count as the webhook admits them, like the cache's managed
// Pods (bare Pods wpgw leaves alone are not watched; see docs/architecture.md).
import type { V1Ingress, V1Namespace, V1Service } from '@kubernetes/client-node';
import type { AdmissionContext } from './core/context.js';
import { admissionContext, namespaceView, type NamespaceView, type PodObject } from './core/namespace-view.js';
import { mutatePod, type PodLike } from './core/pod.js';
import { podTemplateOf, type WorkloadObject } from './core/workloads.js';
import { OS_LABEL } from './names.js';

/** An input document as render reads it. */
export type InputObject = WorkloadObject & { scheduling?: unknown };

export function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) out.set(key(item), [...(out.get(key(item)) ?? []), item]);
  return out;
}

export interface InputContext {
  ctx: AdmissionContext;
  /** Record a Service as admitted, so later admissions see it as the cluster would. */
  admitted(svc: V1Service, namespace: string): void;
}

export function inputContext(
  docs: readonly InputObject[],
  opts: { gatewayIP: string; dnsIP: string; defaultNamespace: string; clusterDomain: string },
): InputContext {
  const nsOf = (d: InputObject) => d.metadata?.namespace ?? opts.defaultNamespace;
  const runtimeClasses = new Map<string, string | undefined>();
  for (const d of docs.filter((d) => d.kind === 'RuntimeClass')) {
    const sel = (d.scheduling as { nodeSelector?: Record<string, string> } | undefined)?.nodeSelector;
    runtimeClasses.set(d.metadata?.name ?? '', sel?.[OS_LABEL]);
  }
  const runtimeClassOS = (n: string) => runtimeClasses.get(n);
  const namespaces = new Map<string, V1Namespace>();
  for (const d of docs.filter((d) => d.kind === 'Namespace')) namespaces.set(d.metadata?.name ?? '', d as V1Namespace);
  const ingresses = groupBy(docs.filter((d) => d.kind === 'Ingress') as V1Ingress[], (d) => nsOf(d as InputObject));
  const servicesByNs = new Map<string, Map<string, V1Service>>();
  for (const d of docs.filter((d) => d.kind === 'Service')) {
    const ns = nsOf(d);
    servicesByNs.set(
      ns,
      (servicesByNs.get(ns) ?? new Map()).set(d.metadata?.name ?? '', {
        ...d,
        metadata: { ...d.metadata, namespace: ns },
      } as V1Service),
    );
  }
  const podsByNs = groupBy(docs.filter((d) => d.kind === 'Pod') as PodLike[], (d) => nsOf(d));
  // The input's Pods as the API server would store them once the webhook admitted them (Pods read
  // only addresses, RuntimeClasses and namespace annotations, never other Pods or Services).
  const admittedPods = (ns: string): PodObject[] =>
    (podsByNs.get(ns) ?? []).flatMap((pod) => {
      const outcome = mutatePod({ pod, namespace: ns, ctx, clusterDomain: opts.clusterDomain });
      return outcome.action === 'mutate' && outcome.reason === 'injected' ? [outcome.pod] : [];
    });
  const workloadsByNs = groupBy(
    docs.filter((d) => d.kind !== undefined && podTemplateOf(d)),
    nsOf,
  );
  // One view per namespace until a Service there is admitted (render inputs can be large).
  const views = new Map<string, NamespaceView>();
  const view = (ns: string): NamespaceView => {
    let v = views.get(ns);
    if (!v) {
      // Thunks, not lists: admitting the Pods asks this view for the namespace's annotations.
      const services = [...(servicesByNs.get(ns)?.values() ?? [])];
      v = namespaceView(
        ns,
        {
          namespace: () => namespaces.get(ns),
          services: () => services,
          pods: () => admittedPods(ns),
          workloads: () => workloadsByNs.get(ns) ?? [],
          ingresses: () => ingresses.get(ns) ?? [],
        },
        runtimeClassOS,
      );
      views.set(ns, v);
    }
    return v;
  };
  const ctx = admissionContext({ view, runtimeClassOS, addresses: { gatewayIP: opts.gatewayIP, dnsIP: opts.dnsIP } });
  return {
    ctx,
    admitted(svc, ns) {
      servicesByNs.set(ns, (servicesByNs.get(ns) ?? new Map()).set(svc.metadata?.name ?? '', svc));
      views.delete(ns);
    },
  };
}
