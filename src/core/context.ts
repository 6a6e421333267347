// What the pure admission core needs to know about the cluster. The webhook implements it from
// watch-backed caches (src/cluster/), `wpgw render` from the YAML it was given. No I/O here.
import type { V1Ingress } from '@kubernetes/client-node';
import type { ServiceOwner } from './service-rules.js';
import type { RepointedService, UnmanagedWorkload } from './workloads.js';

export interface AdmissionContext {
  /** ClusterIP of the namespace's `wpgw` Service, if it exists. */
  gatewayIP(namespace: string): string | undefined;
  /** ClusterIP of the namespace's `wpgw-dns` Service (dnsConfig mode), if it exists. */
  dnsIP(namespace: string): string | undefined;
  /** The OS a RuntimeClass schedules onto (its scheduling.nodeSelector kubernetes.io/os). */
  runtimeClassOS(name: string): string | undefined;
  /** Annotations of the namespace (resolver mode default lives there). */
  namespaceAnnotations(namespace: string): Record<string, string>;
  /**
   * Label sets of the namespace's Windows workloads: managed pods and the pod templates of
   * Windows Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and CronJobs.
   * A Service whose selector matches one of them is re-pointed at the gateway.
   */
  windowsLabelSets(namespace: string): ReadonlyArray<Readonly<Record<string, string>>>;
  /** Gateway pod ports already taken in the namespace (inbound targetPorts of other Services). */
  takenInboundPorts(namespace: string, exceptService: string): ReadonlySet<number>;
  /** `port` values of every Service that selects the namespace's gateway pods (must not be reused as pod ports). */
  gatewaySelectingServicePorts(namespace: string, exceptService: string): ReadonlySet<number>;
  /**
   * Who owns the namespace's Service `name`: "wpgw" (labelled app.kubernetes.io/managed-by=wpgw),
   * "user" (any other), or undefined when there is none. A `<name>-app` the user owns blocks re-pointing.
   */
  serviceOwner(namespace: string, name: string): ServiceOwner | undefined;
  /**
   * Workloads of the namespace whose pods the webhook will not manage (not Windows, opted out,
   * host network), with their pod-template labels. The webhook's caches see workloads, not bare
   * unmanaged pods. A re-pointed Service whose selector matches one gets a narrowed `<name>-app`.
   */
  unmanagedWorkloads(namespace: string): ReadonlyArray<UnmanagedWorkload>;
  /** The namespace's Ingress objects (an ingress controller outside the mesh is a non-mesh client). */
  ingresses(namespace: string): ReadonlyArray<V1Ingress>;
  /**
   * The namespace's re-pointed Services (recorded selector, narrowed or not), so a pod left
   * unmanaged that one still reaches is warned about. Optional: fixed test contexts leave it out.
   */
  repointedServices?(namespace: string): ReadonlyArray<RepointedService>;
}
