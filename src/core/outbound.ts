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
    super(`invalid ${'wpgw.io/outbound'} entry "${truncate(entry)}": ${reason}`);
    this.name = 'OutboundParseError';
  }
}

const MAX_ENTRIES = 256;
const MAX_ANNOTATION_LENGTH = 16 * 1024;
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const ENTRY = /^(?:([a-z]+):\/\/)?([^:/\s]+):(\d{1,5})(?:\+(tls)(?::(\d{1,5}))?)?$/;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
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
  return (
    a.protocol === b.protocol && a.originateTls === b.originateTls && a.upstreamPort === b.upstreamPort
  );
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
  | { kind: 'service'; service: string; namespace: string; fqdn: string }
  | { kind: 'external'; host: string };

/**
 * In-cluster names are a single label (a Service in the pod's namespace) or end in ".svc" or
 * ".svc.<clusterDomain>". Everything else is external: "orders.shop" could be a public domain
 * (".shop" is a TLD), so the short form must be written "orders.shop.svc".
 */
export function classifyHost(host: string, podNamespace: string, clusterDomain: string): HostTarget {
  if (host.startsWith('*.')) return { kind: 'external', host };
  if (!host.includes('.')) {
    return { kind: 'service', service: host, namespace: podNamespace, fqdn: `${host}.${podNamespace}.svc.${clusterDomain}` };
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
  const names = [`${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.${clusterDomain}`];
  if (namespace === podNamespace) names.unshift(service);
  return names;
}
