// The controller's egress report: a ConfigMap `wpgw-egress-report` in each opted-in namespace with
// the external names it refused or could not resolve (per workload, with the address and range)
// and the cluster ranges in force. `wpgw status` reads it with the caller's own RBAC (`view` reads
// ConfigMaps). Not Events: the API server expires them (1 h by default) and the controller writes
// each only once, so a standing refusal would vanish from them; this is the current view, rewritten
// only when it changes and pruned with the rest on opt-out. Kept small and stable: discovered
// ranges inside ranges denied anyway are not listed (they change no policy).
import { EGRESS_ALLOW_ANNOTATION } from '../../names.js';
import { addressCidr, contains, parseCidr } from '../cidr.js';
import type { DiscoveredRange } from '../cluster-ranges.js';
import type { KubeObject } from '../desired-types.js';
import { meta } from './common.js';
import { ALWAYS_DENIED, type EgressRanges } from './egress.js';
import { FORBIDDEN_ADDRESS, type Refusal } from './pinning.js';

export const EGRESS_REPORT = 'wpgw-egress-report';
const REPORT_KEY = 'report.json';

/** How each discovery source stands ("watched", "off (...)", "unavailable (...)"). */
export interface RangeDiscovery {
  nodes: string;
  serviceCIDRs: string;
}

export interface EgressReport {
  clusterRanges: {
    /** --cluster-cidrs as given. */
    flags: string[];
    /** Discovered ranges that widen the denied set (outside the ranges denied anyway). */
    discovered: DiscoveredRange[];
    /** Some discovered ranges lie in ranges denied anyway (loopback, link-local, the private ones still denied here): not listed, they change nothing. */
    coveredAnyway: boolean;
    discovery: RangeDiscovery;
  };
  /** By workload (the declaring pod's owner, e.g. "Deployment/prober"). */
  refusals: Array<Omit<Refusal, 'pod'> & { workload: string; pod: string }>;
}

export interface EgressReportInput {
  namespace: string;
  flags: readonly string[];
  discovered: readonly DiscoveredRange[];
  discovery: RangeDiscovery;
  ranges: EgressRanges;
  refusals: readonly Refusal[];
  /** The pod's top owner as "Kind/name" (the controller's owner lookup). */
  ownerOf: (pod: string) => string;
}

export function egressReport(i: EgressReportInput): EgressReport {
  const anyway = [...ALWAYS_DENIED.map((c) => parseCidr(c)), ...i.ranges.privateDenied];
  const covered = (c: string) => anyway.some((p) => contains(p, parseCidr(c)));
  return {
    clusterRanges: {
      flags: [...i.flags],
      discovered: i.discovered.filter((d) => !covered(d.cidr)),
      coveredAnyway: i.discovered.some((d) => covered(d.cidr)),
      discovery: i.discovery,
    },
    refusals: i.refusals
      .map((r) => ({ ...r, workload: i.ownerOf(r.pod) }))
      .sort(
        (a, b) =>
          a.workload.localeCompare(b.workload) || a.host.localeCompare(b.host) || a.entry.localeCompare(b.entry),
      ),
  };
}

export function egressReportConfigMap(namespace: string, report: EgressReport): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: meta(EGRESS_REPORT, namespace, { kind: 'namespace' }),
    data: { [REPORT_KEY]: `${JSON.stringify(report, null, 2)}\n` },
  };
}

/** The report from the live ConfigMap; undefined when it is absent or not one this version wrote. */
export function readEgressReport(cm: { data?: Record<string, string> } | undefined): EgressReport | undefined {
  const text = cm?.data?.[REPORT_KEY];
  if (!text) return undefined;
  try {
    const r = JSON.parse(text) as EgressReport;
    return Array.isArray(r.refusals) && r.clusterRanges ? r : undefined;
  } catch {
    return undefined;
  }
}

/** `wpgw status` lines for one namespace's report. */
export function formatEgressReport(namespace: string, r: EgressReport): string[] {
  const lines: string[] = [];
  const c = r.clusterRanges;
  const discovered = c.discovered.map((d) => `${d.cidr} (${d.source})`);
  lines.push(
    `egress ranges: --cluster-cidrs ${c.flags.length > 0 ? c.flags.join(', ') : 'none'}; discovered: nodes ${c.discovery.nodes}, ServiceCIDRs ${c.discovery.serviceCIDRs}`,
  );
  if (discovered.length > 0)
    lines.push(`egress ranges: discovered, excepted from external egress: ${discovered.join(', ')}`);
  if (c.coveredAnyway)
    lines.push(
      `egress ranges: ${discovered.length > 0 ? 'the other' : 'the'} discovered ranges lie in ranges denied anyway (loopback, link-local, private)`,
    );
  for (const f of r.refusals) {
    if (f.reason === FORBIDDEN_ADDRESS) {
      const addrs = f.addresses.map((a) => `${a.address} (in ${a.range}, ${a.what})`).join(', ');
      const allowable = f.addresses.every((a) => a.allowable);
      const hint = allowable
        ? `if it is meant, add ${f.addresses.map((a) => addressCidr(a.address).text).join(', ')} to the Namespace annotation ${EGRESS_ALLOW_ANNOTATION} of ${namespace}`
        : `never allowed (link-local, loopback, metadata or the cluster's own range; ${EGRESS_ALLOW_ANNOTATION} cannot re-open it)`;
      lines.push(
        `refused:      ${f.workload} (pod ${f.pod}): "${f.entry}": ${f.host} resolves to ${addrs}; not routed; ${hint}`,
      );
    } else {
      lines.push(
        `unresolved:   ${f.workload} (pod ${f.pod}): "${f.entry}": ${f.host} did not resolve (${f.error ?? 'no addresses'}); no address to send it to until it does`,
      );
    }
  }
  return lines;
}
