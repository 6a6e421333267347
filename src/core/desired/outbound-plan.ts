// Which outbound routes a namespace needs: the union of what its managed pods were injected with
// (their status annotation, not the editable outbound annotation), grouped by the port the apps
// dial, with a gateway pod port per group and every conflict that cannot be routed reported.
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import { appServiceName, OUTBOUND_POD_PORTS, POD_STATUS_ANNOTATION, type ResolverMode } from '../../names.js';
import type { Conflict } from '../desired-types.js';
import {
  classifyHost,
  dialNames,
  formatDestination,
  OutboundParseError,
  parseOutbound,
  reservedUpstreamPort,
  sharingConflict,
  type AppProtocol,
  type Destination,
  type HostTarget,
} from '../outbound.js';
import { parseStatus, readOriginal } from '../records.js';

export interface OutboundRoute {
  dest: Destination;
  target: HostTarget;
  /** Every name the apps may dial (hostAliases / DNS answers / authz hosts). */
  names: string[];
  /** Where the gateway sends it: a Service FQDN, `<svc>-app` for a re-pointed neighbour, or the external host. */
  routeHost: string;
  routePort: number;
  /** True when the destination is a re-pointed Service of this namespace (skip its gateway hairpin). */
  viaAppService: boolean;
  /** The pod whose declaration is routed (conflicts name it). */
  from: string;
  /** From the mesh-wide scope (wpgw.io/mesh-outbound), not declared. */
  mesh?: true;
}

export interface PortGroup {
  port: number;
  family: AppProtocol;
  podPort: number;
  routes: OutboundRoute[];
}

export interface OutboundPlan {
  groups: PortGroup[];
  conflicts: Conflict[];
  /** Pod IPs of the managed pods: the only sources allowed on the outbound ports. */
  sourceIPs: string[];
  modes: Set<ResolverMode>;
  /** The gateway address most hostAliases pods were injected with (kept stable on re-creation). */
  recordedGatewayIP?: string;
  /** Likewise the wpgw-dns address most dnsConfig pods were pointed at. */
  recordedDnsIP?: string;
}

export function planOutbound(
  pods: V1Pod[],
  namespace: string,
  services: V1Service[],
  reservedPorts: ReadonlySet<number>,
  clusterDomain: string,
  inboundPodPorts: ReadonlySet<number> = new Set(),
  /** Mesh-wide destinations (core/mesh-scope.ts): routed after the declared ones, which win. */
  mesh: readonly Destination[] = [],
): OutboundPlan {
  const conflicts: Conflict[] = [];
  const modes = new Set<ResolverMode>();
  const ipVotes = new Map<string, number>();
  const dnsVotes = new Map<string, number>();
  const sourceIPs = new Set<string>();
  const byHostPort = new Map<string, { dest: Destination; from: string }>();
  const repointed = new Map(services.filter((s) => readOriginal(s)).map((s) => [s.metadata?.name ?? '', s]));

  for (const pod of [...pods].sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''))) {
    const podName = pod.metadata?.name ?? pod.metadata?.generateName ?? '<unnamed>';
    const status = parseStatus(pod.metadata?.annotations?.[POD_STATUS_ANNOTATION]);
    for (const ip of pod.status?.podIPs?.map((p) => p.ip) ?? (pod.status?.podIP ? [pod.status.podIP] : []))
      sourceIPs.add(ip);
    if (!status) continue;
    modes.add(status.mode);
    if (status.mode === 'hostAliases' && status.gatewayIP)
      ipVotes.set(status.gatewayIP, (ipVotes.get(status.gatewayIP) ?? 0) + 1);
    if (status.mode === 'dnsConfig' && status.dnsIP) dnsVotes.set(status.dnsIP, (dnsVotes.get(status.dnsIP) ?? 0) + 1);
    let dests: Destination[];
    try {
      dests = parseOutbound(status.outbound.join(','));
    } catch (e) {
      const message = e instanceof OutboundParseError ? e.message : String(e);
      conflicts.push({ subject: `Pod/${podName}`, reason: 'InvalidOutbound', message });
      continue;
    }
    for (const dest of dests) {
      const key = `${dest.host}:${dest.port}`;
      const prev = byHostPort.get(key);
      if (!prev) byHostPort.set(key, { dest, from: podName });
      else if (formatDestination(prev.dest) !== formatDestination(dest)) {
        conflicts.push({
          subject: `Pod/${podName}`,
          reason: 'DestinationConflict',
          message: `"${dest.raw}" conflicts with "${prev.dest.raw}" declared by pod ${prev.from}; keeping the latter`,
        });
      }
    }
  }

  // Group by the port the apps dial; one protocol family per gateway port (Istio cannot mix
  // plaintext and TLS on one listener), and one tcp destination per port (routed by port alone).
  const groups = new Map<number, PortGroup>();
  // External host:port -> the ServiceEntry protocol it needs; TLS origination (HTTPS) and TLS
  // passthrough cannot share one upstream port of one host.
  const upstreams = new Map<string, Destination>();
  const sorted = [...byHostPort.values()].sort(
    (a, b) => a.dest.port - b.dest.port || a.dest.host.localeCompare(b.dest.host),
  );
  // Mesh-wide routes come after every declared one: a declared entry keeps its host and port
  // (same or other meaning) and its port's protocol family. What cannot be routed is summed up
  // in one conflict per reason, not one Event per Service.
  const meshSkipped = new Map<string, string[]>();
  const declared = sorted.length;
  // Declared by any of its names ("orders.sales.svc:9080" is the mesh's orders.sales.svc.<domain>:9080).
  const declaredTargets = new Set(
    sorted.map(({ dest }) => {
      const t = classifyHost(dest.host, namespace, clusterDomain);
      return `${t.kind === 'service' ? t.fqdn : dest.host}:${dest.port}`;
    }),
  );
  for (const dest of mesh)
    if (!declaredTargets.has(`${dest.host}:${dest.port}`)) sorted.push({ dest, from: MESH_FROM });
  for (const [i, { dest, from }] of sorted.entries()) {
    const isMesh = i >= declared;
    const group = groups.get(dest.port);
    if (isMesh && (inboundPodPorts.has(dest.port) || (group && group.family !== 'http'))) {
      const why = inboundPodPorts.has(dest.port)
        ? `port ${dest.port} is the gateway pod port of an inbound Service here`
        : `port ${dest.port} is declared as ${group!.family}`;
      meshSkipped.set(why, [...(meshSkipped.get(why) ?? []), `${dest.host}:${dest.port}`]);
      continue;
    }
    if (inboundPodPorts.has(dest.port)) {
      // A wpgw Service port equal to an inbound gateway pod port would capture that listener
      // through Istio's port translation.
      conflicts.push({
        subject: `Pod/${from}`,
        reason: 'PortCollision',
        message: `"${dest.raw}": port ${dest.port} is the gateway pod port of an inbound Service in this namespace; not routed`,
      });
      continue;
    }
    const portConflict = group ? sharingConflict(group.routes[0]!.dest, dest, () => false) : undefined;
    if (portConflict) {
      conflicts.push({
        subject: `Pod/${from}`,
        reason: portConflict.reason,
        message: `${portConflict.message}; not routed`,
      });
      continue;
    }
    const target = classifyHost(dest.host, namespace, clusterDomain);
    if (target.kind === 'service' && dest.originateTls) {
      conflicts.push({
        subject: `Pod/${from}`,
        reason: 'TlsOriginationInMesh',
        message: `"${dest.raw}": +tls applies to external hosts; in-mesh destinations already get Istio mTLS from the gateway; not routed`,
      });
      continue;
    }
    const reserved = target.kind === 'external' ? reservedUpstreamPort(dest) : undefined;
    if (reserved) {
      conflicts.push({
        subject: `Pod/${from}`,
        reason: 'ReservedUpstreamPort',
        message: `"${dest.raw}": ${reserved}; not routed`,
      });
      continue;
    }
    if (target.kind === 'external') {
      const key = `${dest.host}:${dest.upstreamPort}`;
      const prev = upstreams.get(key);
      const upstreamConflict = prev ? sharingConflict(prev, dest, () => true) : undefined;
      if (upstreamConflict) {
        conflicts.push({
          subject: `Pod/${from}`,
          reason: upstreamConflict.reason,
          message: `${upstreamConflict.message}; not routed`,
        });
        continue;
      }
      if (!prev) upstreams.set(key, dest);
    }
    const neighbour =
      target.kind === 'service' && target.namespace === namespace ? repointed.get(target.service) : undefined;
    const route: OutboundRoute = {
      dest,
      target,
      names: dialNames(target, namespace, clusterDomain),
      routeHost: neighbour
        ? `${appServiceName(target.kind === 'service' ? target.service : '')}.${namespace}.svc.${clusterDomain}`
        : target.kind === 'service'
          ? target.fqdn
          : target.host,
      routePort: dest.upstreamPort,
      viaAppService: neighbour !== undefined,
      from,
      ...(isMesh ? { mesh: true as const } : {}),
    };
    if (group) group.routes.push(route);
    else groups.set(dest.port, { port: dest.port, family: dest.protocol, podPort: 0, routes: [route] });
  }

  for (const [why, hosts] of meshSkipped) {
    conflicts.push({
      subject: `Namespace/${namespace}`,
      reason: 'MeshRouteNotRouted',
      message: `${hosts.length} mesh-wide destination(s) not routed: ${why} (${hosts.slice(0, 5).join(', ')}${hosts.length > 5 ? ', ...' : ''}); the declared entries win, so the Windows pods cannot reach these through the gateway`,
    });
  }

  // Pod ports: 20000 + port % 10000, probing upwards past any port a selecting Service uses.
  const taken = new Set<number>([...reservedPorts, ...groups.keys()]);
  const size = OUTBOUND_POD_PORTS.max - OUTBOUND_POD_PORTS.min + 1;
  for (const group of [...groups.values()].sort((a, b) => a.port - b.port)) {
    for (let i = 0; i < size; i++) {
      const candidate = OUTBOUND_POD_PORTS.min + (((group.port % 10000) + i) % size);
      if (!taken.has(candidate)) {
        group.podPort = candidate;
        taken.add(candidate);
        break;
      }
    }
  }

  const recordedGatewayIP = mostVoted(ipVotes);
  const recordedDnsIP = mostVoted(dnsVotes);
  return {
    groups: [...groups.values()].sort((a, b) => a.port - b.port),
    conflicts,
    sourceIPs: [...sourceIPs].sort(),
    modes,
    ...(recordedGatewayIP ? { recordedGatewayIP } : {}),
    ...(recordedDnsIP ? { recordedDnsIP } : {}),
  };
}

/** Every host the managed pods were injected with as a destination, classified (once each). */
export function declaredTargets(pods: readonly V1Pod[], namespace: string, clusterDomain: string): HostTarget[] {
  const seen = new Map<string, HostTarget>();
  for (const pod of pods) {
    const status = parseStatus(pod.metadata?.annotations?.[POD_STATUS_ANNOTATION]);
    let dests: Destination[] = [];
    try {
      dests = status ? parseOutbound(status.outbound.join(',')) : [];
    } catch {
      continue; // reported by planOutbound
    }
    for (const d of dests) {
      const t = classifyHost(d.host, namespace, clusterDomain);
      seen.set(t.kind === 'service' ? `${t.namespace}/${t.service}` : t.host, t);
    }
  }
  return [...seen.values()];
}
const MESH_FROM = 'mesh-wide scope';

function mostVoted(votes: Map<string, number>): string | undefined {
  return [...votes.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]?.[0];
}
