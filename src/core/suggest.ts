// `wpgw suggest`: from wpgw-dns's query log (CoreDNS "log" plugin), the names each managed
// workload resolved that are neither declared in its wpgw.io/outbound nor covered by the
// mesh-wide scope, with the exact entry to paste. Pure: log text and objects in, suggestions out.
// DNS carries no port: an in-cluster Service's ports come from the Service; an external host's
// port cannot be known, so the entry assumes 443 with the app's own TLS (the usual https://) and
// says so.
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import { OUTBOUND_ANNOTATION, POD_STATUS_ANNOTATION } from '../names.js';
import type { NamespaceInput } from './desired-types.js';
import { namespaceMesh } from './desired/mesh.js';
import { entryFor } from './mesh-scope.js';
import { classifyHost, parseOutbound } from './outbound.js';
import { parseStatus } from './records.js';

export interface QueryLogEntry {
  client: string;
  type: string;
  /** Lowercased, without the trailing dot. */
  name: string;
  rcode: string;
}

// [INFO] 10.244.1.5:53211 - 4660 "A IN api.example.com. udp 44 false 512" NOERROR qr,rd,ra 60 0.0102s
const LOG_LINE = /\[INFO\] \[?([0-9a-f.:]+?)\]?:\d+ - \d+ "(\S+) IN (\S+?)\.? (?:udp|tcp) [^"]*" (\S+)/i;

/** The query lines of CoreDNS's default log format; other lines are ignored. */
export function parseQueryLog(text: string): QueryLogEntry[] {
  const out: QueryLogEntry[] = [];
  for (const line of text.split('\n')) {
    const m = LOG_LINE.exec(line);
    if (m)
      out.push({ client: m[1]!, type: m[2]!.toUpperCase(), name: m[3]!.toLowerCase(), rcode: m[4]!.toUpperCase() });
  }
  return out;
}

export interface Suggestion {
  name: string;
  /** The wpgw.io/outbound entries to add (several for a Service with several ports). */
  entries: string[];
  /** How many queries for the name the log holds from the workload's pods. */
  queries: number;
  /** Why this entry (e.g. the port is assumed). */
  why: string;
}

export interface WorkloadSuggestions {
  /** "Deployment/legacy", or "Pod/name" for a pod without a known owner. */
  workload: string;
  pods: string[];
  suggestions: Suggestion[];
}

/** The workload a pod belongs to: a ReplicaSet's Deployment (by pod-template-hash), else its owner. */
export function workloadOf(pod: V1Pod): string {
  const owner = pod.metadata?.ownerReferences?.find((r) => r.controller) ?? pod.metadata?.ownerReferences?.[0];
  if (!owner) return `Pod/${pod.metadata?.name ?? ''}`;
  const hash = pod.metadata?.labels?.['pod-template-hash'];
  if (owner.kind === 'ReplicaSet' && hash && owner.name.endsWith(`-${hash}`))
    return `Deployment/${owner.name.slice(0, -hash.length - 1)}`;
  return `${owner.kind}/${owner.name}`;
}

/**
 * Suggestions for the namespace of `input` (its managed pods, its Services and the cluster's,
 * as for the desired state) from the query log of its wpgw-dns pods.
 */
export function suggestEntries(
  input: NamespaceInput,
  log: readonly QueryLogEntry[],
  clusterDomain: string,
): WorkloadSuggestions[] {
  const namespace = input.namespace.metadata?.name ?? '';
  const mesh = namespaceMesh(input, namespace, clusterDomain);
  const covered = new Set(mesh.plan.destinations.map((d) => d.host));
  const needsEntry = new Set(mesh.plan.needsEntry);
  const services = new Map(
    (input.clusterServices ?? input.services).map((s) => [`${s.metadata?.name}.${s.metadata?.namespace}`, s]),
  );
  const byIP = new Map<string, V1Pod>();
  for (const pod of input.pods) {
    for (const ip of pod.status?.podIPs?.map((p) => p.ip) ?? (pod.status?.podIP ? [pod.status.podIP] : []))
      byIP.set(ip, pod);
  }
  // Per workload: name -> query count (answered names only: a search-path expansion that does not
  // exist comes back NXDOMAIN and is no destination).
  const asked = new Map<string, { pods: Set<string>; declared: Set<string>; names: Map<string, number> }>();
  for (const q of log) {
    if (q.type !== 'A' && q.type !== 'AAAA') continue;
    if (q.rcode !== 'NOERROR') continue;
    const pod = byIP.get(q.client);
    if (!pod) continue;
    const workload = workloadOf(pod);
    let w = asked.get(workload);
    if (!w) {
      w = { pods: new Set(), declared: declaredHosts(pod, namespace, clusterDomain), names: new Map() };
      asked.set(workload, w);
    }
    w.pods.add(pod.metadata?.name ?? '');
    w.names.set(q.name, (w.names.get(q.name) ?? 0) + 1);
  }
  const out: WorkloadSuggestions[] = [];
  for (const [workload, w] of [...asked.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
    const suggestions: Suggestion[] = [];
    const seen = new Set<string>();
    for (const [name, queries] of [...w.names.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
      // "orders.sales" / "orders.sales.svc" queried as absolute names are Services too.
      const known = services.has(name) || services.has(name.replace(/\.svc$/, ''));
      const target = classifyHost(known && !name.endsWith('.svc') ? `${name}.svc` : name, namespace, clusterDomain);
      const key = target.kind === 'service' ? target.fqdn : name;
      if (
        seen.has(key) ||
        w.declared.has(key) ||
        [...w.declared].some((d) => d.startsWith('*.') && key.endsWith(d.slice(1)))
      )
        continue;
      seen.add(key);
      if (target.kind === 'service') {
        const svc = services.get(`${target.service}.${target.namespace}`);
        if (!svc) continue; // a pod's own DNS name, or a Service since deleted
        const entries = uncovered(svc, target.service, target.namespace, covered.has(target.fqdn));
        const inScope = entries.every((e) => needsEntry.has(e));
        if (entries.length > 0)
          suggestions.push({
            name: target.fqdn,
            entries,
            queries,
            why: inScope
              ? 'in the mesh-wide scope, but TCP or app-TLS: not routable without an entry'
              : 'in-cluster Service, ports from the Service',
          });
      } else if (!name.endsWith(`.${clusterDomain}`) && name.includes('.')) {
        suggestions.push({
          name,
          entries: [`tls://${name}:443`],
          queries,
          why: "external: DNS carries no port, 443 with the app's own TLS (https://) assumed; for plain HTTP write name:80, or name:80+tls to have the gateway originate TLS",
        });
      }
    }
    if (suggestions.length > 0) out.push({ workload, pods: [...w.pods].sort(), suggestions });
  }
  return out;
}

/** The entries a Service needs: every TCP port, but only the non-HTTP ones when mesh-wide covers it. */
function uncovered(svc: V1Service, name: string, namespace: string, meshCovered: boolean): string[] {
  return (svc.spec?.ports ?? [])
    .filter((p) => (p.protocol ?? 'TCP') === 'TCP')
    .map((p) => entryFor(name, namespace, p))
    .filter((e) => !meshCovered || e.includes('://'));
}

/** Hosts (Service FQDNs, external names) a pod declared, by what it was injected with (else its annotation). */
function declaredHosts(pod: V1Pod, namespace: string, clusterDomain: string): Set<string> {
  const status = parseStatus(pod.metadata?.annotations?.[POD_STATUS_ANNOTATION]);
  const text = status ? status.outbound.join(',') : (pod.metadata?.annotations?.[OUTBOUND_ANNOTATION] ?? '');
  const out = new Set<string>();
  try {
    for (const d of parseOutbound(text)) {
      const t = classifyHost(d.host, namespace, clusterDomain);
      out.add(t.kind === 'service' ? t.fqdn : d.host);
    }
  } catch {
    // an annotation the webhook would deny: nothing counts as declared
  }
  return out;
}

/** The text `wpgw suggest` prints for one namespace. */
export function formatSuggestions(namespace: string, workloads: readonly WorkloadSuggestions[]): string {
  if (workloads.length === 0)
    return `Namespace ${namespace}: nothing to suggest (every name its pods resolved is declared or covered)\n`;
  const lines = [`Namespace ${namespace}:`];
  for (const w of workloads) {
    lines.push(`  ${w.workload} (pods ${w.pods.join(', ')}): add to ${OUTBOUND_ANNOTATION} of its pod template`);
    for (const s of w.suggestions) {
      for (const e of s.entries) lines.push(`    ${e}`);
      lines.push(`      # ${s.name}: ${s.queries} quer${s.queries === 1 ? 'y' : 'ies'}; ${s.why}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
