// External names the gateway would resolve itself (ServiceEntry resolution DNS) are resolved by
// the controller instead, checked against the egress ranges, and pinned (resolution STATIC with
// the checked addresses as endpoints). The gateway then never resolves them: a name that resolves
// to the metadata address, a node, loopback or a private range is refused whatever the CNI
// enforces, and no later DNS answer (rebinding) can change where the gateway connects.
// Wildcards (DYNAMIC_DNS, dnsConfig mode) are resolved by Envoy per request and cannot be pinned:
// the egress NetworkPolicy and the reserved-port rule are what limit them (docs/security.md).
import { isIP } from 'node:net';
import { addressCidr } from '../cidr.js';
import type { Conflict } from '../desired-types.js';
import { describeRange, forbiddenRange, type EgressRanges } from './egress.js';
import type { PortGroup } from './outbound-plan.js';

/** What the controller's resolver found for one name: its addresses, or why there are none. */
export interface Resolution {
  addresses: string[];
  error?: string;
}

/** A refused or unresolved external name, structured for the controller's status report (egress-report.ts). */
export interface Refusal {
  /** The pod declaring it (the controller reports it on the pod's owner). */
  pod: string;
  reason: typeof FORBIDDEN_ADDRESS | typeof UNRESOLVED_NAME;
  /** The wpgw.io/outbound entry as written. */
  entry: string;
  host: string;
  /** ForbiddenAddress: each forbidden answer, its range, and whether the namespace's allowlist may re-open it. */
  addresses: Array<{ address: string; range: string; what: string; allowable: boolean }>;
  /** ExternalNameUnresolved: the resolver's error. */
  error?: string;
}

export interface PinResult {
  groups: PortGroup[];
  refusals: Refusal[];
  /** Host -> the checked addresses its ServiceEntry is pinned to (empty: unresolved, fail closed). */
  pins: Map<string, string[]>;
  conflicts: Conflict[];
}

export const FORBIDDEN_ADDRESS = 'ForbiddenAddress';
export const UNRESOLVED_NAME = 'ExternalNameUnresolved';

/**
 * `resolved` undefined (offline render): nothing pinned, the ServiceEntries keep resolution DNS.
 * Otherwise every concrete external host is pinned to its addresses, or refused: a route whose
 * name has any forbidden answer is not routed at all (the name is under someone else's control).
 */
export function pinExternalNames(
  groups: readonly PortGroup[],
  resolved: Readonly<Record<string, Resolution>> | undefined,
  ranges: EgressRanges,
): PinResult {
  const pins = new Map<string, string[]>();
  const conflicts: Conflict[] = [];
  const refusals: Refusal[] = [];
  if (!resolved) return { groups: [...groups], pins, conflicts, refusals };
  const refused = new Set<string>();
  const reported = new Set<string>();
  const report = (c: Conflict) => {
    const key = `${c.subject}|${c.reason}|${c.message}`;
    if (!reported.has(key)) conflicts.push(c);
    reported.add(key);
  };
  for (const route of groups.flatMap((g) => g.routes)) {
    if (route.target.kind !== 'external' || route.dest.wildcard) continue;
    const host = route.dest.host;
    const r = resolved[host] ?? { addresses: [], error: 'not resolved yet' };
    const addresses = [...new Set(r.addresses.filter((a) => isIP(a) !== 0))].sort();
    const bad = addresses.map((a) => ({ a, range: forbiddenRange(ranges, addressCidr(a)) })).filter((x) => x.range);
    if (bad.length > 0) {
      refused.add(host);
      refusals.push({
        pod: route.from,
        reason: FORBIDDEN_ADDRESS,
        entry: route.dest.raw,
        host,
        addresses: bad.map((b) => ({
          address: b.a,
          range: b.range!.text,
          what: describeRange(b.range!),
          allowable: !ranges.never.includes(b.range!),
        })),
      });
      report({
        subject: `Pod/${route.from}`,
        reason: FORBIDDEN_ADDRESS,
        message: `"${route.dest.raw}": ${host} resolves to ${bad.map((b) => `${b.a} (in ${b.range!.text}, ${describeRange(b.range!)})`).join(', ')}, which the gateway never connects to for an external destination; not routed`,
      });
      continue;
    }
    if (addresses.length === 0) {
      refusals.push({
        pod: route.from,
        reason: UNRESOLVED_NAME,
        entry: route.dest.raw,
        host,
        addresses: [],
        error: r.error ?? 'no addresses',
      });
      report({
        subject: `Pod/${route.from}`,
        reason: UNRESOLVED_NAME,
        message: `"${route.dest.raw}": ${host} did not resolve (${r.error ?? 'no addresses'}); the gateway has no address to send it to until it does`,
      });
    }
    pins.set(host, addresses);
  }
  const kept = groups
    .map((g) => ({ ...g, routes: g.routes.filter((r) => r.target.kind !== 'external' || !refused.has(r.dest.host)) }))
    .filter((g) => g.routes.length > 0);
  for (const host of refused) pins.delete(host);
  return { groups: kept, pins, conflicts, refusals };
}
