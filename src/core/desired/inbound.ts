// Inbound, per re-pointed Service `<name>`: mesh caller -(mTLS)-> wpgw -> `<name>-app` -> Windows pods.
import type { V1Service, V1ServicePort } from '@kubernetes/client-node';
import { MANAGED_LABEL, appServiceName } from '../../names.js';
import type { Conflict, KubeObject } from '../desired-types.js';
import { readOriginal } from '../records.js';
import { appServiceBlocker, type ServiceOwner } from '../service-rules.js';
import { gatewayLabels, isHttpPort, meta, type Owner } from './common.js';
import type { ServedService } from './user-authz.js';
import type { UserRouting } from './user-routes.js';

export interface InboundResult {
  objects: KubeObject[];
  conflicts: Conflict[];
  /** Gateway pod ports serving inbound traffic (mTLS from any mesh identity). */
  podPorts: number[];
  /** The Service as the gateway serves it (users' AuthorizationPolicies are scoped by it). */
  served?: ServedService;
}

/**
 * `ownerOfApp`: who owns a Service named `<name>-app` in the namespace today, if one exists.
 * `callerRule`: also write the ISTIO_MUTUAL DestinationRule for `<name>`, only while the live gateway
 * pods do not all carry the tlsMode label yet (an upgrade from before it): see desired.ts.
 */
export function inboundObjects(
  service: V1Service,
  namespace: string,
  clusterDomain: string,
  ownerOfApp?: ServiceOwner,
  callerRule = false,
  routing: UserRouting = { conflicts: [] },
): InboundResult {
  const name = service.metadata?.name ?? '';
  const original = readOriginal(service);
  if (!original) return { objects: [], conflicts: [], podPorts: [] };
  const owner: Owner = { kind: 'service', name };
  const app = appServiceName(name);
  const conflicts: Conflict[] = [];
  // Never take over a user's Service, never try a name the API server refuses.
  const blocked = appServiceBlocker(name, ownerOfApp);
  if (blocked) {
    conflicts.push({
      subject: `Service/${name}`,
      reason: blocked.reason === 'app_name_too_long' ? 'NameTooLong' : 'AppServiceTaken',
      message: `${blocked.message}; re-apply the Service afterwards`,
    });
    return { objects: [], conflicts, podPorts: [] };
  }
  // Pair each original port with the gateway pod port the webhook gave it.
  const pairs: Array<{ port: V1ServicePort; podPort: number }> = [];
  for (const port of original.ports) {
    const live = service.spec?.ports?.find((p) => p.port === port.port);
    if (typeof live?.targetPort !== 'number') {
      conflicts.push({
        subject: `Service/${name}`,
        reason: 'PortNotRepointed',
        message: `port ${port.port} has no gateway pod port; re-apply the Service`,
      });
      continue;
    }
    pairs.push({ port, podPort: live.targetPort });
  }
  const uid = service.metadata?.uid;
  const appHost = `${app}.${namespace}.svc.${clusterDomain}`;
  const gatewayName = `wpgw-in-${name}`;
  const objects: KubeObject[] = [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        ...meta(app, namespace, owner),
        // Deleting `<name>` deletes `<name>-app` (garbage collection); render has no UID to point at.
        ...(uid
          ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name, uid, blockOwnerDeletion: true }] }
          : {}),
      },
      spec: {
        type: 'ClusterIP',
        selector: { ...original.selector, ...(original.onlyManaged ? { [MANAGED_LABEL]: 'true' } : {}) },
        ports: original.ports.map((p) => ({
          ...(p.name !== undefined ? { name: p.name } : {}),
          port: p.port,
          targetPort: p.targetPort ?? p.port,
          protocol: p.protocol ?? 'TCP',
          ...(p.appProtocol !== undefined ? { appProtocol: p.appProtocol } : {}),
        })),
      },
    },
  ];
  if (pairs.length > 0) {
    objects.push(
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'Gateway',
        metadata: meta(gatewayName, namespace, owner),
        spec: {
          selector: gatewayLabels(namespace),
          // ISTIO_MUTUAL: the gateway presents its workload certificate and requires the caller's.
          // hosts "./*" gives no SNI match, so sidecars' outbound_.<port>_._.<fqdn> SNI is accepted.
          servers: pairs.map(({ port, podPort }) => ({
            port: {
              number: podPort,
              name: `${isHttpPort(port) ? 'https' : 'tls'}-in-${port.port}`,
              protocol: isHttpPort(port) ? 'HTTPS' : 'TLS',
            },
            hosts: ['./*'],
            tls: { mode: 'ISTIO_MUTUAL' },
          })),
        },
      },
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: meta(gatewayName, namespace, owner),
        spec: inboundRoutes(pairs, gatewayName, appHost, routing.delegate),
      },
      // Transitional only: gateway pods without the tlsMode label would get plaintext from callers.
      // Otherwise callers' auto-mTLS does it, and a DR here would compete with the user's own.
      ...(callerRule ? [callerDestinationRule(gatewayName, name, namespace, clusterDomain, owner)] : []),
      {
        // The wpgw -> Windows pod hop is plaintext (no sidecar there); pin it against mesh-wide DRs.
        apiVersion: 'networking.istio.io/v1',
        kind: 'DestinationRule',
        metadata: meta(`wpgw-app-${name}`, namespace, owner),
        spec: appRuleSpec(service, namespace, appHost, routing.appPolicy, conflicts),
      },
    );
  }
  const served: ServedService = {
    name,
    selector: original.selector,
    ports: pairs.map(({ port, podPort }) => ({ port: port.port, targetPort: port.targetPort ?? port.port, podPort })),
  };
  return { objects, conflicts, podPorts: pairs.map((p) => p.podPort), served };
}

function callerDestinationRule(
  objName: string,
  name: string,
  namespace: string,
  clusterDomain: string,
  owner: Owner,
): KubeObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: meta(objName, namespace, owner),
    spec: { host: `${name}.${namespace}.svc.${clusterDomain}`, trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } },
  };
}

/**
 * The wpgw -> `<name>-app` DestinationRule: plaintext (no sidecar there), pinned against mesh-wide
 * DRs, carrying the user's own DR for `<name>-app` (subsets, load balancing, outlier detection...).
 * Its workloadSelector (the gateway pods) makes istiod pick it over selector-less DRs for that host
 * for the wpgw, whatever their creation order (pilot SidecarScope.DestinationRule).
 */
function appRuleSpec(
  service: V1Service,
  namespace: string,
  appHost: string,
  user: UserRouting['appPolicy'],
  conflicts: Conflict[],
): Record<string, unknown> {
  const affinity = clientIPAffinity(service);
  const base = { host: appHost, exportTo: ['.'], workloadSelector: { matchLabels: gatewayLabels(namespace) } };
  if (!user) return { ...base, trafficPolicy: { tls: { mode: 'DISABLE' }, ...affinity } };
  const trafficPolicy = { ...user.trafficPolicy };
  if (affinity.loadBalancer) {
    if (trafficPolicy.loadBalancer === undefined) trafficPolicy.loadBalancer = affinity.loadBalancer;
    else
      conflicts.push({
        subject: `DestinationRule/${user.from}`,
        reason: 'AffinityOverridden',
        message: `its loadBalancer replaces the ClientIP session affinity of Service ${service.metadata?.name ?? ''} at the wpgw hop`,
      });
  }
  return { ...base, trafficPolicy, ...(user.subsets ? { subsets: user.subsets } : {}) };
}

/**
 * spec.sessionAffinity ClientIP pinned a client to one pod through kube-proxy; the gateway balances
 * per request, so carry it as ring hashing on the source address the gateway sees (see service-rules.ts).
 */
function clientIPAffinity(service: V1Service): Record<string, unknown> {
  return service.spec?.sessionAffinity === 'ClientIP'
    ? { loadBalancer: { consistentHash: { useSourceIp: true } } }
    : {};
}

function inboundRoutes(
  pairs: Array<{ port: V1ServicePort; podPort: number }>,
  gateway: string,
  appHost: string,
  delegate: UserRouting['delegate'],
): Record<string, unknown> {
  const route = (p: { port: V1ServicePort; podPort: number }) => ({
    match: [{ port: p.podPort }],
    route: [{ destination: { host: appHost, port: { number: p.port.port } } }],
  });
  // The user's delegate first; after it the plain route, for requests no delegate route matches
  // and for the moment a deleted delegate is still in this root (Istio then drops only that route).
  const handOver = (p: { port: V1ServicePort; podPort: number }) => [
    { name: `user-${p.port.port}`, match: [{ port: p.podPort }], delegate },
    route(p),
  ];
  const http = pairs.filter((p) => isHttpPort(p.port)).flatMap((p) => (delegate ? handOver(p) : [route(p)]));
  const tcp = pairs.filter((p) => !isHttpPort(p.port)).map(route);
  // One gateway resource per Service, so this "*" host catches every Host on its servers only
  // (ingress traffic keeps its external Host; mesh callers may send a short name).
  return {
    hosts: ['*'],
    gateways: [gateway],
    exportTo: ['.'],
    ...(http.length ? { http } : {}),
    ...(tcp.length ? { tcp } : {}),
  };
}
