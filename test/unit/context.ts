// A static AdmissionContext for unit tests: the cluster as plain data.
import type { AdmissionContext } from '../../src/core/context.js';
import type { UnmanagedWorkload } from '../../src/core/workloads.js';

export interface FakeCluster {
  gatewayIPs?: Record<string, string>;
  dnsIPs?: Record<string, string>;
  runtimeClasses?: Record<string, string>;
  namespaceAnnotations?: Record<string, Record<string, string>>;
  windowsLabels?: Record<string, Array<Record<string, string>>>;
  takenPorts?: Record<string, number[]>;
  selectingPorts?: Record<string, number[]>;
  /** Services that exist, by namespace: name -> owner. */
  serviceOwners?: Record<string, Record<string, 'wpgw' | 'user'>>;
  unmanagedWorkloads?: Record<string, UnmanagedWorkload[]>;
}

export function fakeContext(c: FakeCluster = {}): AdmissionContext {
  return {
    gatewayIP: (ns) => c.gatewayIPs?.[ns],
    dnsIP: (ns) => c.dnsIPs?.[ns],
    runtimeClassOS: (n) => c.runtimeClasses?.[n],
    namespaceAnnotations: (ns) => c.namespaceAnnotations?.[ns] ?? {},
    windowsLabelSets: (ns) => c.windowsLabels?.[ns] ?? [],
    takenInboundPorts: (ns) => new Set(c.takenPorts?.[ns] ?? []),
    gatewaySelectingServicePorts: (ns) => new Set(c.selectingPorts?.[ns] ?? []),
    serviceOwner: (ns, name) => c.serviceOwners?.[ns]?.[name],
    unmanagedWorkloads: (ns) => c.unmanagedWorkloads?.[ns] ?? [],
    ingresses: () => [],
  };
}
