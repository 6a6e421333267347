// The AdmissionContext of `wpgw webhook --dev`: no cluster, a fixed gateway address, and the
// label sets of Windows pods this process has admitted (so a Service posted after its pods is
// re-pointed, as with the real caches). For trying the webhook locally; never for a cluster.
import type { AdmissionDecision } from '../core/admission-types.js';
import type { AdmissionContext } from '../core/context.js';

export interface DevContext extends AdmissionContext {
  /** Remember a pod admitted as managed, so later Services can match it. */
  remember(decision: AdmissionDecision, labels: Record<string, string> | undefined): void;
}

export function devContext(gatewayIP: string, dnsIP: string): DevContext {
  const labelSets = new Map<string, Array<Record<string, string>>>();
  return {
    gatewayIP: () => gatewayIP,
    dnsIP: () => dnsIP,
    runtimeClassOS: () => undefined,
    namespaceAnnotations: () => ({}),
    windowsLabelSets: (ns) => labelSets.get(ns) ?? [],
    takenInboundPorts: () => new Set(),
    gatewaySelectingServicePorts: () => new Set(),
    serviceOwner: () => undefined,
    unmanagedWorkloads: () => [],
    ingresses: () => [],
    remember(decision, labels) {
      if (decision.kind !== 'Pod' || decision.decision !== 'patched' || !labels) return;
      const list = labelSets.get(decision.namespace) ?? [];
      if (list.length < 1000) list.push(labels);
      labelSets.set(decision.namespace, list);
    },
  };
}
