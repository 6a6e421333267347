// The gateway itself: ServiceAccount, Deployment (Istio gateway injection), PDB, `wpgw` Service.
import { GATEWAY_SERVICE, ISTIO_REV_LABEL, NO_PORT_TRANSLATION_LABEL, OS_LABEL } from '../../names.js';
import type { KubeObject } from '../desired-types.js';
import { TLS_MODE_LABEL } from '../pod.js';
import { gatewayLabels, meta, type Owner } from './common.js';
import type { PortGroup } from './outbound-plan.js';

const NS_OWNER: Owner = { kind: 'namespace' };
/** Envoy's health port on Istio gateways; always on the Service so it is never port-less. */
export const STATUS_PORT = 15021;
/** Gateway replicas a namespace (or the controller's default) may ask for. */
export const MAX_GATEWAY_REPLICAS = 50;

/**
 * An Istio revision or tag name: a DNS-1123 label, as Istio names `istiod-<rev>` and its webhooks
 * after it (and it must be a label value for `istio.io/rev`).
 */
export function isIstioRevision(text: string): boolean {
  return text.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(text);
}

/** The labels of the gateway pods (a Service whose selector matches them selects the gateway). */
export function gatewayPodLabels(namespace: string, revision?: string): Record<string, string> {
  return {
    ...gatewayLabels(namespace),
    app: GATEWAY_SERVICE,
    // Istio's gateway injection: the webhook fills in the istio-proxy container ("image: auto").
    // With a revision both labels, as Istio's own gateway chart sets them: the default
    // revision's object webhook skips pods with istio.io/rev, that revision's matches.
    'sidecar.istio.io/inject': 'true',
    ...(revision ? { [ISTIO_REV_LABEL]: revision } : {}),
    // Callers' auto-mTLS picks Istio mTLS for endpoints with this label (Istio's gateway
    // template leaves it out), so mTLS to the wpgw does not depend on a DestinationRule
    // for <name> winning a merge with the user's own (docs/user-policies.md).
    [TLS_MODE_LABEL]: 'istio',
  };
}

/** `revision`: the gateway pods carry `istio.io/rev=<revision>`, for Istio's per-revision injectors. */
export function gatewayObjects(namespace: string, replicas: number, revision?: string): KubeObject[] {
  const labels = gatewayLabels(namespace);
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(GATEWAY_SERVICE, namespace, NS_OWNER) },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: meta(GATEWAY_SERVICE, namespace, NS_OWNER),
      spec: {
        replicas,
        selector: { matchLabels: labels },
        template: {
          metadata: {
            labels: gatewayPodLabels(namespace, revision),
            annotations: { 'inject.istio.io/templates': 'gateway' },
          },
          spec: {
            serviceAccountName: GATEWAY_SERVICE,
            // Envoy is a Linux image; a mixed cluster must never schedule it on Windows nodes.
            nodeSelector: { [OS_LABEL]: 'linux' },
            topologySpreadConstraints: [
              {
                maxSkew: 1,
                topologyKey: 'topology.kubernetes.io/zone',
                whenUnsatisfiable: 'ScheduleAnyway',
                labelSelector: { matchLabels: labels },
              },
              {
                maxSkew: 1,
                topologyKey: 'kubernetes.io/hostname',
                whenUnsatisfiable: 'ScheduleAnyway',
                labelSelector: { matchLabels: labels },
              },
            ],
            containers: [
              {
                name: 'istio-proxy',
                image: 'auto',
                ports: [{ name: 'status-port', containerPort: STATUS_PORT, protocol: 'TCP' }],
                resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '1Gi' } },
              },
            ],
          },
        },
      },
    },
    {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: meta(GATEWAY_SERVICE, namespace, NS_OWNER),
      spec: { maxUnavailable: 1, selector: { matchLabels: labels } },
    },
  ];
}

/**
 * The `wpgw` Service the Windows pods' names resolve to. Its ports are the ports the apps dial;
 * each targets the gateway pod port whose listener serves that port's destinations.
 */
export function gatewayService(namespace: string, groups: PortGroup[], clusterIP: string | undefined): KubeObject {
  const ports = [
    ...groups.map((g) => ({ name: `${g.family}-out-${g.port}`, port: g.port, targetPort: g.podPort, protocol: 'TCP' })),
  ];
  if (!groups.some((g) => g.port === STATUS_PORT)) {
    ports.push({ name: 'status-port', port: STATUS_PORT, targetPort: STATUS_PORT, protocol: 'TCP' });
  }
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(GATEWAY_SERVICE, namespace, NS_OWNER, { [NO_PORT_TRANSLATION_LABEL]: 'true' }),
    spec: {
      type: 'ClusterIP',
      ...(clusterIP ? { clusterIP } : {}),
      selector: gatewayLabels(namespace),
      ports,
    },
  };
}
