// The cluster's own ranges as the API offers them (issue 17): Nodes' pod CIDRs and addresses,
// ServiceCIDR objects. The gateways never reach them for external destinations (egress.ts).
// Pure: the controller's watches (src/cluster/cluster-ranges.ts) feed it.
import { addressCidr, compareCidr, parseCidr, type Cidr } from './cidr.js';

/** The parts of a Node read here (what the slim cache keeps). */
export interface NodeLike {
  metadata?: { name?: string };
  spec?: { podCIDR?: string; podCIDRs?: string[] };
  status?: { addresses?: Array<{ type?: string; address?: string }> };
}

/** The parts of a networking.k8s.io/v1 ServiceCIDR read here. */
export interface ServiceCIDRLike {
  metadata?: { name?: string };
  spec?: { cidrs?: string[] };
}

/** One discovered range and where it came from (for `wpgw status` and logs). */
export interface DiscoveredRange {
  cidr: string;
  /** e.g. "node linux-1 podCIDR", "node linux-1 InternalIP", "ServiceCIDR kubernetes". */
  source: string;
}

/** Node address types that are addresses of the node itself (Hostname and InternalDNS are names). */
const ADDRESS_TYPES = new Set(['InternalIP', 'ExternalIP']);

/** Pod CIDRs as they are; InternalIP/ExternalIP as a /32 or /128. Entries that do not parse are skipped. */
export function nodeRanges(nodes: readonly NodeLike[]): DiscoveredRange[] {
  const out: DiscoveredRange[] = [];
  for (const n of nodes) {
    const name = n.metadata?.name ?? '';
    for (const c of new Set([...(n.spec?.podCIDRs ?? []), ...(n.spec?.podCIDR ? [n.spec.podCIDR] : [])])) {
      const cidr = tryParse(() => parseCidr(c));
      if (cidr) out.push({ cidr: cidr.text, source: `node ${name} podCIDR` });
    }
    for (const a of n.status?.addresses ?? []) {
      if (!a.type || !ADDRESS_TYPES.has(a.type) || !a.address) continue;
      const cidr = tryParse(() => addressCidr(a.address!));
      if (cidr) out.push({ cidr: cidr.text, source: `node ${name} ${a.type}` });
    }
  }
  return out;
}

/** The Service ranges the API server allocates ClusterIPs from (k8s 1.33+). */
export function serviceCidrRanges(objs: readonly ServiceCIDRLike[]): DiscoveredRange[] {
  return objs.flatMap((o) =>
    (o.spec?.cidrs ?? []).flatMap((c) => {
      const cidr = tryParse(() => parseCidr(c));
      return cidr ? [{ cidr: cidr.text, source: `ServiceCIDR ${o.metadata?.name ?? ''}` }] : [];
    }),
  );
}

/**
 * One entry per CIDR (the first source named wins), sorted by family, address, prefix: the same
 * set in any watch order gives the same list, so node churn that changes nothing writes nothing.
 */
export function mergeRanges(...lists: ReadonlyArray<readonly DiscoveredRange[]>): DiscoveredRange[] {
  const byCidr = new Map<string, { r: DiscoveredRange; c: Cidr }>();
  for (const r of lists.flat()) if (!byCidr.has(r.cidr)) byCidr.set(r.cidr, { r, c: parseCidr(r.cidr) });
  return [...byCidr.values()].sort((a, b) => compareCidr(a.c, b.c)).map((x) => x.r);
}

function tryParse(f: () => Cidr): Cidr | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}
