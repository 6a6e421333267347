// Outbound Istio config: Windows pod -> wpgw -> destination.
// Servers are addressed by gateway *pod* port (never a Service port), so Istio's legacy port
// translation through "any Service selecting the gateway" cannot pick the wrong one.
import type { KubeObject } from '../desired-types.js';
import { escapeRegex, gatewayLabels, meta, objectName, type Owner } from './common.js';
import type { OutboundRoute, PortGroup } from './outbound-plan.js';

const NS_OWNER: Owner = { kind: 'namespace' };
export const OUTBOUND_GATEWAY = 'wpgw-out';

/** `pins`: external hosts the controller resolved and checked (src/core/desired/pinning.ts). */
export function outboundObjects(
  namespace: string,
  groups: PortGroup[],
  pins: ReadonlyMap<string, string[]> = new Map(),
): KubeObject[] {
  if (groups.length === 0) return [];
  const objects: KubeObject[] = [
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'Gateway',
      metadata: meta(OUTBOUND_GATEWAY, namespace, NS_OWNER),
      spec: {
        // A namespace-unique label value: a classic Gateway selector matches pods mesh-wide.
        selector: gatewayLabels(namespace),
        servers: groups.map(server),
      },
    },
  ];
  const shortNameRoutes: Array<{ group: PortGroup; route: OutboundRoute; name: string }> = [];
  for (const group of groups) {
    for (const route of group.routes) {
      objects.push(virtualService(namespace, group, route));
      // Classic VirtualService hosts turn a bare "orders" into orders.<ns>.svc..., so a bare Host
      // header can only be matched by authority on a "*" host (see docs/architecture.md).
      const bare = route.names.find((n) => !n.includes('.'));
      if (group.family === 'http' && bare) shortNameRoutes.push({ group, route, name: bare });
    }
  }
  if (shortNameRoutes.length > 0) objects.push(shortNameService(namespace, shortNameRoutes));
  objects.push(...serviceEntries(namespace, groups, pins), ...tlsOriginationRules(namespace, groups));
  return objects;
}

function server(group: PortGroup): Record<string, unknown> {
  const name = `${group.family}-out-${group.port}`;
  if (group.family === 'http') return { port: { number: group.podPort, name, protocol: 'HTTP' }, hosts: ['./*'] };
  if (group.family === 'tls') {
    return { port: { number: group.podPort, name, protocol: 'TLS' }, hosts: ['./*'], tls: { mode: 'PASSTHROUGH' } };
  }
  return { port: { number: group.podPort, name, protocol: 'TCP' }, hosts: ['./*'] };
}

/** Hosts a classic VirtualService can name: every dial name but the bare short name. */
function vsHosts(route: OutboundRoute): string[] {
  return route.names.filter((n) => n.includes('.'));
}

function destination(route: OutboundRoute): Record<string, unknown> {
  return { host: route.routeHost, port: { number: route.routePort } };
}

function httpRoute(
  group: PortGroup,
  route: OutboundRoute,
  extraMatch: Record<string, unknown> = {},
): Record<string, unknown> {
  const external = route.target.kind === 'external';
  return {
    match: [{ port: group.podPort, ...extraMatch }],
    // External servers expect their own name, not "host:port" as the app sent it; with TLS
    // origination the DestinationRule sets SNI explicitly (auto_sni would use the pre-rewrite Host).
    // A wildcard has no one name: the app's Host stays (rewriting it to the literal "*.zone" broke
    // the upstream request and Envoy's dynamic forward proxy, which resolves the Host).
    ...(external && !route.dest.wildcard ? { rewrite: { authority: route.dest.host } } : {}),
    route: [{ destination: destination(route) }],
  };
}

function virtualService(namespace: string, group: PortGroup, route: OutboundRoute): KubeObject {
  const spec: Record<string, unknown> = { hosts: vsHosts(route), gateways: [OUTBOUND_GATEWAY], exportTo: ['.'] };
  if (group.family === 'http') spec.http = [httpRoute(group, route)];
  else if (group.family === 'tls') {
    // SNI is whatever name the app dialled. sniHosts must fall under the VirtualService hosts, and
    // a bare short name cannot be a classic host, so such a route takes "*" (its match still
    // names every SNI exactly).
    if (route.names.some((n) => !n.includes('.'))) spec.hosts = ['*'];
    spec.tls = [
      { match: [{ port: group.podPort, sniHosts: route.names }], route: [{ destination: destination(route) }] },
    ];
  } else spec.tcp = [{ match: [{ port: group.podPort }], route: [{ destination: destination(route) }] }];
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: meta(objectName('wpgw-out', route.dest.host, route.dest.port), namespace, NS_OWNER),
    spec,
  };
}

function shortNameService(
  namespace: string,
  routes: Array<{ group: PortGroup; route: OutboundRoute; name: string }>,
): KubeObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: meta('wpgw-out-shortnames', namespace, NS_OWNER),
    spec: {
      hosts: ['*'],
      gateways: [OUTBOUND_GATEWAY],
      exportTo: ['.'],
      // Every route has a match, so a Host nobody declared still gets 404: no open proxy.
      http: routes.map(({ group, route, name }) =>
        httpRoute(group, route, { authority: { regex: `^${escapeRegex(name)}(:[0-9]+)?$` } }),
      ),
    },
  };
}

/** External hosts enter the registry for this namespace only (exportTo "."): the allowlist. */
function serviceEntries(namespace: string, groups: PortGroup[], pins: ReadonlyMap<string, string[]>): KubeObject[] {
  const byHost = new Map<string, { wildcard: boolean; ports: Map<number, { name: string; protocol: string }> }>();
  for (const group of groups) {
    for (const route of group.routes) {
      if (route.target.kind !== 'external') continue;
      const entry = byHost.get(route.dest.host) ?? { wildcard: route.dest.wildcard, ports: new Map() };
      const d = route.dest;
      const protocol = d.protocol === 'tcp' ? 'TCP' : d.protocol === 'tls' ? 'TLS' : d.originateTls ? 'HTTPS' : 'HTTP';
      entry.ports.set(route.routePort, { name: `${protocol.toLowerCase()}-${route.routePort}`, protocol });
      byHost.set(route.dest.host, entry);
    }
  }
  return [...byHost.entries()].map(([host, { wildcard, ports }]) => {
    const pinned = pins.get(host);
    return {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: meta(objectName('wpgw-ext', host), namespace, NS_OWNER),
      spec: {
        hosts: [host],
        exportTo: ['.'],
        location: 'MESH_EXTERNAL',
        // Pinned: the controller resolved and checked the addresses; the gateway connects only to
        // them. Else (offline render, wildcards) the gateway resolves with cluster DNS (never
        // wpgw-dns, so no loop back to itself).
        resolution: pinned ? 'STATIC' : wildcard ? 'DYNAMIC_DNS' : 'DNS',
        ports: [...ports.entries()]
          .sort((a, b) => a[0] - b[0])
          .map(([number, p]) => ({ number, name: p.name, protocol: p.protocol })),
        ...(pinned ? { endpoints: pinned.map((address) => ({ address })) } : {}),
      },
    };
  });
}

/** "+tls": originate TLS with SNI and a certificate name check (Istio skips the SAN check if unset). */
function tlsOriginationRules(namespace: string, groups: PortGroup[]): KubeObject[] {
  const byHost = new Map<string, Set<number>>();
  for (const r of groups.flatMap((g) => g.routes)) {
    if (!r.dest.originateTls || r.target.kind !== 'external') continue;
    byHost.set(r.dest.host, (byHost.get(r.dest.host) ?? new Set()).add(r.routePort));
  }
  // One rule per host: Istio does not merge traffic policies of several rules for one host.
  return [...byHost.entries()].map(([host, ports]) => ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: meta(objectName('wpgw-tls', host), namespace, NS_OWNER),
    spec: {
      host,
      exportTo: ['.'],
      trafficPolicy: {
        portLevelSettings: [...ports]
          .sort((a, b) => a - b)
          .map((number) => ({
            port: { number },
            // caCertificates "system": the OS trust store, said explicitly (Istio's analyzer IST0129).
            tls: { mode: 'SIMPLE', sni: host, subjectAltNames: [host], caCertificates: 'system' },
          })),
      },
    },
  }));
}
