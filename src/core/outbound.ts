// The `wpgw.io/outbound` grammar: the destinations a pod calls.
//
//   entry     = [ proto "://" ] host ":" port [ "+tls" [ ":" upstream ] ]
//   proto     = "http" (default) | "tls" | "tcp"
//   separator = one or more of "," whitespace newline
//
//   http://   the app speaks plain HTTP; the gateway routes by Host. In-mesh destinations get
//             Istio mTLS; "+tls" makes the gateway originate TLS to an external host (SNI and a
//             certificate name check), to port `upstream` (default 443).
//   tls://    the app speaks TLS itself; the gateway routes by SNI and passes the bytes through.
//   tcp://    opaque TCP; the gateway routes by port alone, so one tcp destination per port.
//
// Hosts: DNS names (lowercase letters, digits, "-", "."); "*." prefixed wildcards only in
// dnsConfig mode (a hosts file cannot hold a wildcard). IP literals are rejected: a pod that dials
// an IP cannot be redirected by name.
import { OUTBOUND_ANNOTATION } from '../names.js';

export type AppProtocol = 'http' | 'tls' | 'tcp';

export interface Destination {
  /** The entry as written, for error messages and Events. */
  readonly raw: string;
  readonly protocol: AppProtocol;
  /** Lowercased, without a trailing dot. */
  readonly host: string;
  /** The port the app dials. */
  readonly port: number;
  /** http only: the gateway originates TLS to the host. */
  readonly originateTls: boolean;
  /** The port the gateway sends to: `port`, or the "+tls" upstream (default 443). */
  readonly upstreamPort: number;
  readonly wildcard: boolean;
}

export class OutboundParseError extends Error {
  constructor(
    readonly entry: string,
    readonly reason: string,
  ) {
    super(`invalid ${OUTBOUND_ANNOTATION} entry "${truncate(entry)}": ${reason}`);
    this.name = 'OutboundParseError';
  }
}

const MAX_ENTRIES = 256;
const MAX_ANNOTATION_LENGTH = 16 * 1024;
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const ENTRY = /^(?:([a-z]+):\/\/)?([^:/\s]+):(\d{1,5})(?:\+(tls)(?::(\d{1,5}))?)?$/;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
// RFC 6761 reserves "localhost" and its subdomains; the rest are Debian/Windows hosts-file aliases.
const LOOPBACK_NAMES = new Set(['localhost', 'localhost.localdomain', 'ip6-localhost', 'ip6-loopback']);
// A whole valid name in one pass (labels cannot contain ".", so this cannot backtrack across
// labels); only a name that fails it goes through the per-label check that says what is wrong.
const VALID_HOST = /^(?:\*\.)?[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** Parses the annotation value; throws OutboundParseError naming the first bad entry. */
export function parseOutbound(value: string): Destination[] {
  if (value.length > MAX_ANNOTATION_LENGTH) {
    throw new OutboundParseError(value, `the annotation is longer than ${MAX_ANNOTATION_LENGTH} characters`);
  }
  const entries = value.split(/[\s,]+/).filter((e) => e.length > 0);
  if (entries.length > MAX_ENTRIES) {
    throw new OutboundParseError(entries[MAX_ENTRIES] ?? '', `more than ${MAX_ENTRIES} entries`);
  }
  const out: Destination[] = [];
  const byHostPort = new Map<string, Destination>();
  for (const raw of entries) {
    const d = parseEntry(raw);
    const key = `${d.host}:${d.port}`;
    const prev = byHostPort.get(key);
    if (prev) {
      if (sameDestination(prev, d)) continue; // an exact repeat is harmless
      throw new OutboundParseError(raw, `conflicts with "${prev.raw}": one host and port can be declared only once`);
    }
    byHostPort.set(key, d);
    out.push(d);
  }
  return out;
}

function parseEntry(raw: string): Destination {
  const m = ENTRY.exec(raw.toLowerCase());
  if (!m) {
    throw new OutboundParseError(
      raw,
      'expected [http://|tls://|tcp://]host:port[+tls[:port]], e.g. "orders.shop.svc.cluster.local:9080" or "example.com:80+tls"',
    );
  }
  const [, scheme, hostPart, portPart, tlsFlag, upstreamPart] = m;
  const protocol = toProtocol(raw, scheme);
  const host = hostPart!.endsWith('.') ? hostPart!.slice(0, -1) : hostPart!;
  validateHost(raw, host);
  const port = toPort(raw, portPart!);
  const originateTls = tlsFlag === 'tls';
  if (originateTls && protocol !== 'http') {
    throw new OutboundParseError(raw, '"+tls" (TLS origination by the gateway) applies to http destinations only');
  }
  const upstreamPort = originateTls ? (upstreamPart ? toPort(raw, upstreamPart) : 443) : port;
  const wildcard = host.startsWith('*.');
  if (wildcard && protocol === 'tcp') {
    throw new OutboundParseError(raw, 'a tcp destination is routed by port alone and cannot be a wildcard');
  }
  if (wildcard && originateTls) {
    throw new OutboundParseError(raw, 'TLS origination needs one concrete host name, not a wildcard');
  }
  return { raw, protocol, host, port, originateTls, upstreamPort, wildcard };
}

function toProtocol(raw: string, scheme: string | undefined): AppProtocol {
  if (scheme === undefined || scheme === 'http') return 'http';
  if (scheme === 'tls' || scheme === 'tcp') return scheme;
  if (scheme === 'https') {
    throw new OutboundParseError(
      raw,
      'unknown protocol "https": write "tls://host:port" if the app speaks TLS itself, or "host:port+tls" if the gateway should originate TLS',
    );
  }
  throw new OutboundParseError(raw, `unknown protocol "${scheme}" (use http, tls or tcp)`);
}

function toPort(raw: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw new OutboundParseError(raw, `port ${text} is outside 1-65535`);
  }
  return n;
}

function validateHost(raw: string, host: string): void {
  if (LOOPBACK_NAMES.has(host) || host.endsWith('.localhost')) {
    throw new OutboundParseError(
      raw,
      `"${host}" is a loopback name: it always resolves to the pod itself and cannot be redirected to the gateway`,
    );
  }
  if (IPV4.test(host)) {
    throw new OutboundParseError(raw, 'an IP address cannot be redirected by name; declare the DNS name the app dials');
  }
  if (host.length > 253) throw new OutboundParseError(raw, 'host name is longer than 253 characters');
  if (VALID_HOST.test(host)) return;
  const labels = host.split('.');
  labels.forEach((label, i) => {
    if (i === 0 && label === '*' && labels.length > 1) return;
    if (!LABEL.test(label)) {
      const hint = /[^\x00-\x7f]/.test(label) ? ' (write internationalized names in their xn-- form)' : '';
      throw new OutboundParseError(raw, `"${truncate(label)}" is not a valid DNS label${hint}`);
    }
  });
}

function sameDestination(a: Destination, b: Destination): boolean {
  return a.protocol === b.protocol && a.originateTls === b.originateTls && a.upstreamPort === b.upstreamPort;
}

function truncate(s: string): string {
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

/** The canonical text of a destination (stable, used in status annotations and object names). */
export function formatDestination(d: Destination): string {
  const scheme = d.protocol === 'http' ? '' : `${d.protocol}://`;
  const tls = d.originateTls ? (d.upstreamPort === 443 ? '+tls' : `+tls:${d.upstreamPort}`) : '';
  return `${scheme}${d.host}:${d.port}${tls}`;
}

// ---- where a host lives ----------------------------------------------------------------------

export type HostTarget =
  { kind: 'service'; service: string; namespace: string; fqdn: string } | { kind: 'external'; host: string };

/**
 * In-cluster names are a single label (a Service in the pod's namespace) or end in ".svc" or
 * ".svc.<clusterDomain>". Everything else is external: "orders.shop" could be a public domain
 * (".shop" is a TLD), so the short form must be written "orders.shop.svc".
 */
export function classifyHost(host: string, podNamespace: string, clusterDomain: string): HostTarget {
  if (host.startsWith('*.')) return { kind: 'external', host };
  if (!host.includes('.')) {
    return {
      kind: 'service',
      service: host,
      namespace: podNamespace,
      fqdn: `${host}.${podNamespace}.svc.${clusterDomain}`,
    };
  }
  const suffix = `.svc.${clusterDomain}`;
  let base: string | undefined;
  if (host.endsWith(suffix)) base = host.slice(0, -suffix.length);
  else if (host.endsWith('.svc')) base = host.slice(0, -'.svc'.length);
  // "<service>.<namespace>": exactly one dot, not at either end.
  const dot = base === undefined ? -1 : base.indexOf('.');
  if (base !== undefined && dot > 0 && dot < base.length - 1 && base.indexOf('.', dot + 1) < 0) {
    const service = base.slice(0, dot);
    const namespace = base.slice(dot + 1);
    return { kind: 'service', service, namespace, fqdn: `${service}.${namespace}.svc.${clusterDomain}` };
  }
  return { kind: 'external', host };
}

/**
 * The names an app may dial for a destination. For a Service: "orders.sales",
 * "orders.sales.svc", the FQDN, and the bare "orders" when it is in the pod's own namespace.
 */
export function dialNames(target: HostTarget, podNamespace: string, clusterDomain: string): string[] {
  if (target.kind === 'external') return [target.host];
  const { service, namespace } = target;
  const names = [
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.${clusterDomain}`,
  ];
  if (namespace === podNamespace) names.unshift(service);
  return names;
}

// ---- what can share the gateway ----------------------------------------------------------------

export type SharingConflictReason = 'PortProtocolConflict' | 'TcpPortConflict' | 'UpstreamProtocolConflict';

/** The ServiceEntry protocol an external destination needs on its upstream port. */
export function upstreamProtocol(d: Destination): 'TCP' | 'TLS' | 'HTTPS' | 'HTTP' {
  return d.protocol === 'tcp' ? 'TCP' : d.protocol === 'tls' ? 'TLS' : d.originateTls ? 'HTTPS' : 'HTTP';
}

/**
 * Why `d` cannot be routed beside `kept` (routed first), or undefined. The one definition of the
 * gateway's sharing rules, for one pod's annotation (admission) and a whole namespace (desired
 * state): one protocol family per dialled port (Istio cannot mix plaintext and TLS on one
 * listener), one tcp destination per port (tcp is routed by port alone), and one ServiceEntry
 * protocol per external host and upstream port (TLS origination and passthrough cannot share it).
 */
export function sharingConflict(
  kept: Destination,
  d: Destination,
  external: (d: Destination) => boolean,
): { reason: SharingConflictReason; message: string } | undefined {
  if (kept.port === d.port && kept.protocol !== d.protocol) {
    return {
      reason: 'PortProtocolConflict',
      message: `"${d.raw}" needs a ${d.protocol} listener on port ${d.port}, which "${kept.raw}" takes as ${kept.protocol}`,
    };
  }
  if (kept.port === d.port && d.protocol === 'tcp' && kept.host !== d.host) {
    return {
      reason: 'TcpPortConflict',
      message: `"${d.raw}" and "${kept.raw}" are both tcp on port ${d.port}; tcp is routed by port alone, so only "${kept.raw}" can be`,
    };
  }
  if (
    kept.host === d.host &&
    kept.upstreamPort === d.upstreamPort &&
    external(kept) &&
    external(d) &&
    upstreamProtocol(kept) !== upstreamProtocol(d)
  ) {
    return {
      reason: 'UpstreamProtocolConflict',
      message: `"${d.raw}" needs ${d.host}:${d.upstreamPort} as ${upstreamProtocol(d)}, but "${kept.raw}" needs it as ${upstreamProtocol(kept)}`,
    };
  }
  return undefined;
}

// ---- one pod's annotation as a whole -------------------------------------------------------------

/** Ports that nearly always carry TLS: plain HTTP declared to them is usually a mistake. */
const TLS_PORTS = new Set([443, 465, 636, 853, 993, 995, 5671, 6443, 8443, 8883, 9443]);
/** Public suffixes common enough that "name.<suffix>" is surely not "<service>.<namespace>". */
const COMMON_TLDS = new Set([
  'com',
  'net',
  'org',
  'io',
  'dev',
  'app',
  'co',
  'ai',
  'cloud',
  'edu',
  'gov',
  'info',
  'biz',
  'us',
  'uk',
  'de',
  'fr',
  'nl',
  'eu',
  'jp',
  'cn',
  'in',
  'au',
  'ca',
  'ch',
  'se',
  'no',
  'es',
  'it',
  'br',
  'ru',
]);

export interface DestinationReview {
  /** A reason the annotation cannot be honoured as written (deny), naming the entry. */
  error?: OutboundParseError;
  /** Entries that work but probably do not do what was meant (admission warnings). */
  advice: string[];
}

/**
 * Checks a pod's parsed destinations together, with the knowledge of where names live: names in
 * the cluster's Service domain that are not a Service, +tls to the mesh, and pairs of entries the
 * gateway cannot route side by side (deterministic: the first in annotation order would win, so the
 * pod is denied instead of one entry silently not working).
 */
export function reviewDestinations(
  destinations: readonly Destination[],
  podNamespace: string,
  clusterDomain: string,
): DestinationReview {
  const advice: string[] = [];
  const targets = new Map(destinations.map((d) => [d, classifyHost(d.host, podNamespace, clusterDomain)]));
  const external = (d: Destination) => targets.get(d)?.kind !== 'service';
  for (const d of destinations) {
    const target = targets.get(d)!;
    if (target.kind === 'external' && inServiceDomain(d.host, clusterDomain)) {
      return {
        advice,
        error: new OutboundParseError(
          d.raw,
          d.wildcard
            ? 'a wildcard cannot name cluster Services; declare each Service as <service>.<namespace>.svc'
            : `names under .svc are routed only as <service>.<namespace>[.svc[.${clusterDomain}]]; a per-pod name of a headless Service (pod.service.namespace.svc) cannot be routed through the gateway (Istio routes to Services); declare the Service instead`,
        ),
      };
    }
    if (target.kind === 'service' && d.originateTls) {
      return {
        advice,
        error: new OutboundParseError(
          d.raw,
          '+tls applies to external hosts; in-mesh destinations already get Istio mTLS from the gateway',
        ),
      };
    }
    const reserved = target.kind === 'external' ? reservedUpstreamPort(d) : undefined;
    if (reserved) return { advice, error: new OutboundParseError(d.raw, reserved) };
  }
  for (let i = 0; i < destinations.length; i++) {
    for (let j = 0; j < i; j++) {
      const conflict = sharingConflict(destinations[j]!, destinations[i]!, external);
      if (conflict) return { advice, error: new OutboundParseError(destinations[i]!.raw, conflict.message) };
    }
  }
  for (const d of destinations) {
    const target = targets.get(d)!;
    if (d.protocol === 'http' && !d.originateTls && TLS_PORTS.has(d.port)) {
      advice.push(
        `"${d.raw}" is plain HTTP to port ${d.port}, which usually carries TLS: if the app speaks TLS itself write "tls://${d.host}:${d.port}"; if the gateway should originate TLS, have the app call http://${d.host}:80 and write "${d.host}:80+tls"`,
      );
    }
    const labels = d.host.split('.');
    if (target.kind === 'external' && !d.wildcard && labels.length === 2 && !COMMON_TLDS.has(labels[1]!)) {
      advice.push(
        `"${d.raw}" is routed as the external name ${d.host}; if it is the Service ${labels[0]} in namespace ${labels[1]}, write "${labels[0]}.${labels[1]}.svc:${d.port}"`,
      );
    }
  }
  return { advice };
}

/**
 * Istio's own ports (15000-15090: Envoy admin, agent, health, stats, xDS...). An external
 * destination sent there could reach the gateway pod's own listeners through a name that resolves
 * to loopback, which no NetworkPolicy sees (pod-local traffic); refused whatever the name.
 */
export const ISTIO_RESERVED_PORTS = { min: 15000, max: 15090 } as const;

/** Why the gateway must not connect to this external destination's upstream port, or undefined. */
export function reservedUpstreamPort(d: Destination): string | undefined {
  if (d.upstreamPort < ISTIO_RESERVED_PORTS.min || d.upstreamPort > ISTIO_RESERVED_PORTS.max) return undefined;
  return `upstream port ${d.upstreamPort} is in Istio's reserved range ${ISTIO_RESERVED_PORTS.min}-${ISTIO_RESERVED_PORTS.max} (the gateway's own admin, agent and health ports): an external name resolving to loopback would reach them`;
}

function inServiceDomain(host: string, clusterDomain: string): boolean {
  return host.endsWith('.svc') || host.endsWith(`.svc.${clusterDomain}`) || host === `svc.${clusterDomain}`;
}
