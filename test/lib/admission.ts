// The test toolkit's admission pieces: one static AdmissionContext (the cluster as plain data) and
// one AdmissionReview builder, for the unit tests of the core, the webhook server and the fuzzer.
import type { V1Ingress } from '@kubernetes/client-node';
import type { AdmissionContext } from '../../src/core/context.js';
import type { UnmanagedWorkload } from '../../src/core/workloads.js';

export const GATEWAY_IP = '10.96.100.10';
export const DNS_IP = '10.96.100.53';

export interface StaticContextOptions {
  /** The gateway address of every namespace (default GATEWAY_IP; undefined: no gateway anywhere). */
  gatewayIP?: string | undefined;
  /** Gateway addresses by namespace instead: only these namespaces have a gateway. */
  gatewayIPs?: Record<string, string>;
  dnsIP?: string | undefined;
  /** wpgw-dns addresses by namespace instead: only these namespaces have one. */
  dnsIPs?: Record<string, string>;
  runtimeClasses?: Record<string, string>;
  namespaceAnnotations?: Record<string, Record<string, string>>;
  windowsLabelSets?: Record<string, Array<Record<string, string>>>;
  /** Inbound ports taken in every namespace, or by namespace. */
  takenInboundPorts?: Iterable<number> | Record<string, number[]>;
  gatewaySelectingServicePorts?: Iterable<number> | Record<string, number[]>;
  /** Services that exist, by namespace: name -> owner. */
  serviceOwners?: Record<string, Record<string, 'wpgw' | 'user'>>;
  unmanagedWorkloads?: Record<string, UnmanagedWorkload[]>;
  ingresses?: Record<string, V1Ingress[]>;
}

/** Ports for every namespace (an iterable) or keyed by namespace (a record of lists). */
function portsByNamespace(ports: Iterable<number> | Record<string, number[]> | undefined): (ns: string) => Set<number> {
  if (ports === undefined) return () => new Set();
  if (Symbol.iterator in ports) {
    const all = new Set(ports as Iterable<number>);
    return () => all;
  }
  const keyed = ports as Record<string, number[]>;
  return (ns) => new Set(keyed[ns] ?? []);
}

/** An AdmissionContext answering from fixed data (the same answer for every namespace unless keyed). */
export function staticContext(o: StaticContextOptions = {}): AdmissionContext {
  const gatewayIP = 'gatewayIP' in o ? o.gatewayIP : GATEWAY_IP;
  const dnsIP = 'dnsIP' in o ? o.dnsIP : DNS_IP;
  const runtimeClasses = o.runtimeClasses ?? { 'windows-rc': 'windows', 'linux-rc': 'linux' };
  const taken = portsByNamespace(o.takenInboundPorts);
  const selecting = portsByNamespace(o.gatewaySelectingServicePorts);
  return {
    gatewayIP: (ns) => (o.gatewayIPs ? o.gatewayIPs[ns] : gatewayIP),
    dnsIP: (ns) => (o.dnsIPs ? o.dnsIPs[ns] : dnsIP),
    runtimeClassOS: (name) => runtimeClasses[name],
    namespaceAnnotations: (ns) => o.namespaceAnnotations?.[ns] ?? {},
    windowsLabelSets: (ns) => o.windowsLabelSets?.[ns] ?? [],
    takenInboundPorts: taken,
    gatewaySelectingServicePorts: selecting,
    serviceOwner: (ns, name) => o.serviceOwners?.[ns]?.[name],
    unmanagedWorkloads: (ns) => o.unmanagedWorkloads?.[ns] ?? [],
    ingresses: (ns) => o.ingresses?.[ns] ?? [],
  };
}

export interface ReviewOptions {
  /** Pod and Service are what wpgw admits; any other kind tests the refusals. */
  kind: string;
  operation?: string;
  namespace: string;
  object?: unknown;
  oldObject?: unknown;
  uid?: string;
  /** request.name (default: the object's metadata.name, when it has one). */
  name?: string;
  /** Other request fields (subResource, dryRun, ...). */
  extra?: Record<string, unknown>;
}

/** An admission.k8s.io/v1 AdmissionReview request, shaped as kube-apiserver sends it. */
export function review(o: ReviewOptions): Record<string, unknown> & { request: Record<string, unknown> } {
  const name = o.name ?? (o.object as { metadata?: { name?: string } } | undefined)?.metadata?.name;
  const resource = o.kind === 'Pod' ? 'pods' : o.kind === 'Service' ? 'services' : `${o.kind.toLowerCase()}s`;
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: o.uid ?? 'uid-1',
      kind: { group: '', version: 'v1', kind: o.kind },
      resource: { group: '', version: 'v1', resource },
      operation: o.operation ?? 'CREATE',
      namespace: o.namespace,
      ...(name ? { name } : {}),
      object: o.object,
      ...(o.oldObject !== undefined ? { oldObject: o.oldObject } : {}),
      ...o.extra,
    },
  };
}
