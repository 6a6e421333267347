// Mesh-wide outbound (wpgw.io/mesh-outbound): which in-cluster Services a Windows pod reaches
// without listing them. The scope is written like the egress hosts of an Istio `Sidecar`
// ("./*", "<namespace>/*", "*/*"), and a namespace's own Sidecar (the one without a
// workloadSelector, as Istio picks it) narrows it further, so Windows pods see no more of the mesh
// than their sidecar-ful neighbours. Only HTTP (and gRPC) ports can be routed this way: the gateway
// tells them apart by Host; TCP and app-TLS ports on a shared port cannot be, so they are listed as
// "needs an entry" with the exact wpgw.io/outbound line.
import type { V1Service, V1ServicePort } from '@kubernetes/client-node';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, MESH_OUTBOUND_ANNOTATION, MESH_OUTBOUND_NONE } from '../names.js';
import { isHttpPort } from './desired/common.js';
import type { Destination } from './outbound.js';

/** One egress host in Istio's "namespace/dnsName" form. */
export interface ScopeEntry {
  /** ".", "*", "~" (nothing) or a namespace name. */
  readonly namespace: string;
  /** "*", "*.suffix" or one FQDN. */
  readonly host: string;
}

export class MeshScopeError extends Error {
  constructor(
    readonly entry: string,
    readonly reason: string,
  ) {
    super(
      `invalid ${MESH_OUTBOUND_ANNOTATION} entry "${entry.length > 120 ? `${entry.slice(0, 117)}...` : entry}": ${reason}`,
    );
    this.name = 'MeshScopeError';
  }
}

const MAX_SCOPE_ENTRIES = 64;
const NS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Parses the annotation: "./*" (this namespace), "<namespace>/*", "*\/*" (every namespace),
 * separated by commas or whitespace; "none" turns a namespace default off for one pod. Throws
 * MeshScopeError naming the first bad entry. Single Services are declared in wpgw.io/outbound.
 */
export function parseMeshScope(text: string): ScopeEntry[] {
  const entries = text.split(/[\s,]+/).filter((e) => e.length > 0);
  if (entries.length === 1 && entries[0] === MESH_OUTBOUND_NONE) return [];
  if (entries.length === 0)
    throw new MeshScopeError(text, `empty; write "./*", "<namespace>/*" or "*/*" (or "${MESH_OUTBOUND_NONE}")`);
  if (entries.length > MAX_SCOPE_ENTRIES)
    throw new MeshScopeError(entries[MAX_SCOPE_ENTRIES]!, `more than ${MAX_SCOPE_ENTRIES} entries`);
  const out: ScopeEntry[] = [];
  for (const raw of entries) {
    const m = /^([^/]+)\/(.+)$/.exec(raw);
    if (!m)
      throw new MeshScopeError(
        raw,
        'expected "<namespace>/*" like the egress hosts of an Istio Sidecar: "./*", "sales/*" or "*/*"',
      );
    const [, ns, host] = m as unknown as [string, string, string];
    if (host !== '*') {
      throw new MeshScopeError(
        raw,
        `only whole namespaces ("${ns}/*") are a scope; declare a single Service in wpgw.io/outbound`,
      );
    }
    if (ns !== '.' && ns !== '*' && !NS_LABEL.test(ns))
      throw new MeshScopeError(raw, `"${ns}" is not a namespace name`);
    if (!out.some((e) => e.namespace === ns)) out.push({ namespace: ns, host });
  }
  return out;
}

export function formatScope(e: ScopeEntry): string {
  return `${e.namespace}/${e.host}`;
}

/** The parts of an Istio Sidecar wpgw reads (no typed model in client-node). */
export interface Sidecar {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; creationTimestamp?: unknown };
  spec?: { workloadSelector?: { labels?: Record<string, string> }; egress?: Array<{ hosts?: unknown }> };
}

export interface SidecarScope {
  /** The Sidecar whose egress hosts apply ("Sidecar/<name>"). */
  name: string;
  entries: ScopeEntry[];
  /** Egress hosts that are not "namespace/dnsName" (ignored; Istio's validation rejects them too). */
  invalid: string[];
}

/**
 * The namespace-wide Sidecar, as Istio chooses it: one without a workloadSelector, the oldest if
 * there are several. Its egress listeners' hosts together are the scope (ports are not a scope
 * here: the gateway listens on every port the apps dial); without egress it does not restrict.
 */
export function namespaceSidecar(sidecars: readonly Sidecar[]): SidecarScope | undefined {
  const wide = sidecars
    .filter((s) => Object.keys(s.spec?.workloadSelector?.labels ?? {}).length === 0)
    .sort(
      (a, b) =>
        String(a.metadata?.creationTimestamp ?? '').localeCompare(String(b.metadata?.creationTimestamp ?? '')) ||
        (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''),
    );
  const chosen = wide[0];
  if (!chosen || !chosen.spec?.egress || chosen.spec.egress.length === 0) return undefined;
  const entries: ScopeEntry[] = [];
  const invalid: string[] = [];
  for (const listener of chosen.spec.egress) {
    for (const h of Array.isArray(listener.hosts) ? listener.hosts : []) {
      const m = typeof h === 'string' ? /^([^/]+)\/(.+)$/.exec(h) : null;
      if (!m) invalid.push(String(h));
      else entries.push({ namespace: m[1]!, host: m[2]!.toLowerCase() });
    }
  }
  return { name: `Sidecar/${chosen.metadata?.name ?? ''}`, entries, invalid };
}

/** Does one of the entries cover the Service `fqdn` in `serviceNs`, seen from `podNs`? */
export function covers(entries: readonly ScopeEntry[], podNs: string, serviceNs: string, fqdn: string): boolean {
  return entries.some((e) => {
    const nsOk = e.namespace === '*' || (e.namespace === '.' ? serviceNs === podNs : e.namespace === serviceNs);
    if (!nsOk) return false;
    if (e.host === '*') return true;
    if (e.host.startsWith('*.')) return fqdn.endsWith(e.host.slice(1));
    return fqdn === e.host;
  });
}

export interface MeshPlan {
  /** HTTP destinations of the Services in scope, as if declared (`<svc>.<ns>.svc.<domain>:<port>`). */
  destinations: Destination[];
  /** Ports in scope the gateway cannot route without a name: the exact wpgw.io/outbound entry each needs. */
  needsEntry: string[];
  /** Services in scope not routed at all, with why (headless). */
  skipped: string[];
  /** Services in scope. */
  services: number;
}

/** Istio's protocol selection says TLS: the app speaks TLS itself (tls://), otherwise opaque TCP. */
function isTlsPort(p: V1ServicePort): boolean {
  const proto = (p.appProtocol ?? (p.name ?? '').split('-')[0] ?? '').toLowerCase();
  return proto === 'https' || proto === 'tls';
}

/** The wpgw.io/outbound entry a port of a Service needs (also what `wpgw suggest` prints). */
export function entryFor(service: string, namespace: string, p: V1ServicePort): string {
  const host = `${service}.${namespace}.svc:${p.port}`;
  if (isHttpPort(p)) return host;
  return `${isTlsPort(p) ? 'tls' : 'tcp'}://${host}`;
}

/**
 * The Services `scope` (intersected with the namespace's Sidecar) covers for pods of `namespace`,
 * from every Service of the cluster. wpgw's own Services (the gateways, wpgw-dns, `<name>-app`)
 * are never destinations; ExternalName Services are not in the mesh; headless ones are reached by
 * pod address, which a gateway cannot route to by Host.
 */
export function planMesh(
  scope: readonly ScopeEntry[],
  sidecar: SidecarScope | undefined,
  services: readonly V1Service[],
  namespace: string,
  clusterDomain: string,
): MeshPlan {
  const plan: MeshPlan = { destinations: [], needsEntry: [], skipped: [], services: 0 };
  if (scope.length === 0) return plan;
  const sorted = [...services].sort((a, b) => key(a).localeCompare(key(b)));
  for (const svc of sorted) {
    const name = svc.metadata?.name ?? '';
    const ns = svc.metadata?.namespace ?? '';
    if (
      !name ||
      !ns ||
      svc.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE ||
      svc.spec?.type === 'ExternalName'
    )
      continue;
    const fqdn = `${name}.${ns}.svc.${clusterDomain}`;
    if (!covers(scope, namespace, ns, fqdn) || (sidecar && !covers(sidecar.entries, namespace, ns, fqdn))) continue;
    plan.services++;
    if (svc.spec?.clusterIP === 'None') {
      plan.skipped.push(`${name}.${ns} (headless: reached by pod address, not routable by Host through a gateway)`);
      continue;
    }
    for (const p of svc.spec?.ports ?? []) {
      if ((p.protocol ?? 'TCP') !== 'TCP') continue;
      if (!isHttpPort(p)) {
        plan.needsEntry.push(entryFor(name, ns, p));
        continue;
      }
      plan.destinations.push({
        raw: `${fqdn}:${p.port} (${MESH_OUTBOUND_ANNOTATION})`,
        protocol: 'http',
        host: fqdn,
        port: p.port,
        originateTls: false,
        upstreamPort: p.port,
        wildcard: false,
      });
    }
  }
  return plan;
}

function key(s: V1Service): string {
  return `${s.metadata?.namespace ?? ''}/${s.metadata?.name ?? ''}`;
}
