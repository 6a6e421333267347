// The cluster of the mesh-wide outbound benchmarks (mesh-scale.ts in process, mesh-istiod.ts against
// a real istiod): N HTTP Services in team namespaces, and namespace shop whose Windows pod (admitted
// by the real webhook core) has the seed's two declared destinations and, for the mesh-wide case,
// wpgw.io/mesh-outbound "*/*".
import type { V1Service } from '@kubernetes/client-node';
import type { DesiredOptions, NamespaceInput } from '../src/core/desired-types.js';
import { mutatePod } from '../src/core/pod.js';

export const OPTS: DesiredOptions = {
  clusterDomain: 'cluster.local',
  defaultGatewayReplicas: 1,
  corednsImage: 'coredns/coredns:1.12.4',
};
export const SERVICES_PER_NAMESPACE = 50;

const ctx = {
  gatewayIP: () => '10.96.100.10',
  dnsIP: () => '10.96.100.53',
  runtimeClassOS: () => undefined,
  namespaceAnnotations: () => ({}),
  windowsLabelSets: () => [],
  takenInboundPorts: () => new Set<number>(),
  gatewaySelectingServicePorts: () => new Set<number>(),
  serviceOwner: () => undefined,
  unmanagedWorkloads: () => [],
  ingresses: () => [],
};

/** N HTTP Services (from index `offset`), SERVICES_PER_NAMESPACE per namespace, on a handful of common ports (as real meshes reuse ports). */
export function services(n: number, offset = 0): V1Service[] {
  const ports = [80, 8080, 9080, 3000, 5000];
  return Array.from({ length: n }, (_, i) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `svc-${i + offset}`, namespace: `team-${Math.floor((i + offset) / SERVICES_PER_NAMESPACE)}` },
    spec: {
      clusterIP: `10.97.${Math.floor((i + offset) / 250)}.${(i + offset) % 250}`,
      selector: { app: `svc-${i + offset}` },
      ports: [{ name: 'http', port: ports[(i + offset) % ports.length]! }],
    },
  }));
}

export function windowsPod(mesh: boolean) {
  const out = mutatePod({
    pod: {
      metadata: {
        name: 'legacy-1',
        namespace: 'shop',
        annotations: {
          'wpgw.io/outbound': 'orders.sales.svc.cluster.local:9080\nexample.com:80+tls',
          'wpgw.io/resolver': 'dnsConfig',
          ...(mesh ? { 'wpgw.io/mesh-outbound': '*/*' } : {}),
        },
      },
      spec: { nodeSelector: { 'kubernetes.io/os': 'windows' }, containers: [{ name: 'app', image: 'app' }] },
    },
    namespace: 'shop',
    ctx,
  });
  if (out.action !== 'mutate') throw new Error(`bench setup: pod not injected: ${JSON.stringify(out)}`);
  return { ...out.pod, status: { podIP: '10.244.64.10' } };
}

export const GATEWAY: V1Service = {
  metadata: { name: 'wpgw', namespace: 'shop', labels: { 'app.kubernetes.io/managed-by': 'wpgw' } },
  spec: { clusterIP: '10.96.100.10', selector: { 'wpgw.io/gateway': 'shop' }, ports: [{ port: 15021 }] },
};

export function input(mesh: boolean, cluster: V1Service[]): NamespaceInput {
  return {
    namespace: { metadata: { name: 'shop' } },
    pods: [windowsPod(mesh)],
    services: [GATEWAY],
    clusterDnsIP: '10.96.0.10',
    clusterServices: cluster,
  };
}
