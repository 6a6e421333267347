// Where the gateway itself may connect (NetworkPolicy `wpgw-gateway-egress`): it is every Windows
// pod's only way out and has its own network position, so without this anyone who can write
// `wpgw.io/outbound` could make it connect where their own pods may not (a name resolving to the
// cloud metadata address, a node, the API server, another namespace's pods). One definition of
// what is forbidden, used by the NetworkPolicy and by the checks of resolved addresses.
import type { V1Service } from '@kubernetes/client-node';
import { EGRESS_ALLOW_ANNOTATION } from '../../names.js';
import { CidrError, compareCidr, contains, parseCidr, type Cidr } from '../cidr.js';
import type { Conflict, KubeObject } from '../desired-types.js';
import { gatewayLabels, meta } from './common.js';
import type { PortGroup } from './outbound-plan.js';
import { clusterDnsEgress, namespaceLabel } from './policy.js';

export const GATEWAY_EGRESS_POLICY = 'wpgw-gateway-egress';
/** istiod's xDS and CA port: the gateway's only connection to the control plane. */
export const ISTIOD_XDS_PORT = 15012;
export const DEFAULT_ISTIO_NAMESPACE = 'istio-system';

/** Istio's root namespace (mesh-wide policies): meshConfig.rootNamespace defaults to istiod's namespace. */
export function istioRootNamespace(o: { istioNamespace?: string; istioRootNamespace?: string }): string {
  return o.istioRootNamespace ?? o.istioNamespace ?? DEFAULT_ISTIO_NAMESPACE;
}

/**
 * Never reachable for an external destination, whatever the allowlist says: "this network" and
 * loopback (both reach the gateway's own Envoy admin and agent ports), link-local (169.254.169.254
 * is the metadata service of AWS, Azure, GCP, Oracle, DigitalOcean...), Azure's WireServer, Alibaba's
 * metadata address, AWS's IPv6 metadata address. (IPv4-mapped IPv6 answers are checked as the
 * IPv4 address they reach; NetworkPolicy refuses the mapped form, and such packets leave as IPv4.)
 */
export const ALWAYS_DENIED = [
  '0.0.0.0/8',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '168.63.129.16/32',
  '100.100.100.200/32',
  '::/128',
  '::1/128',
  'fe80::/10',
  'fd00:ec2::254/128',
] as const;

/**
 * Private ranges, denied by default because the cluster's pods, Services and nodes nearly always
 * live in them; the namespace annotation re-opens parts of them (a corporate network).
 */
export const PRIVATE_RANGES = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7'] as const;

export interface EgressRanges {
  /** Never reachable: ALWAYS_DENIED and the cluster's ranges (excepted from the allowlist too). */
  never: Cidr[];
  /** The private ranges the allowlist does not re-open as a whole. */
  privateDenied: Cidr[];
  /** The namespace's allowlist, as accepted. */
  allowed: Cidr[];
  conflicts: Conflict[];
}

/**
 * The ranges for one namespace: its allowlist annotation checked against what can never be
 * re-opened. A bad entry is reported (and ignored), never widens anything.
 */
export function egressRanges(
  namespace: string,
  annotation: string | undefined,
  clusterRanges: readonly string[],
): EgressRanges {
  const conflicts: Conflict[] = [];
  const never = outermost([...ALWAYS_DENIED.map((c) => parseCidr(c)), ...clusterRanges.map((c) => parseCidr(c))]);
  const allowed: Cidr[] = [];
  for (const text of (annotation ?? '').split(/[\s,]+/).filter(Boolean)) {
    let c: Cidr;
    try {
      c = parseCidr(text);
    } catch (e) {
      conflicts.push({
        subject: `Namespace/${namespace}`,
        reason: 'InvalidEgressAllow',
        message: `${EGRESS_ALLOW_ANNOTATION}: ${e instanceof CidrError ? e.message : String(e)}; ignored`,
      });
      continue;
    }
    const inside = never.find((n) => contains(n, c));
    if (inside) {
      conflicts.push({
        subject: `Namespace/${namespace}`,
        reason: 'EgressAllowRefused',
        message: `${EGRESS_ALLOW_ANNOTATION}: ${c.text} lies in ${inside.text} (${describeRange(inside)}), which the gateway never reaches for external destinations; ignored`,
      });
      continue;
    }
    allowed.push(c);
  }
  const privateDenied = PRIVATE_RANGES.map((c) => parseCidr(c)).filter((p) => !allowed.some((a) => contains(a, p)));
  return { never, privateDenied: outermost(privateDenied), allowed: outermost(allowed), conflicts };
}

/** The forbidden range an address (a /32 or /128) falls in, for resolved external names; undefined: allowed. */
export function forbiddenRange(ranges: EgressRanges, address: Cidr): Cidr | undefined {
  const never = ranges.never.find((d) => contains(d, address));
  if (never) return never;
  if (ranges.allowed.some((a) => contains(a, address))) return undefined;
  return ranges.privateDenied.find((d) => contains(d, address));
}

export function describeRange(c: Cidr): string {
  const known: Record<string, string> = {
    '0.0.0.0/8': '"this network", reaches the gateway itself',
    '127.0.0.0/8': 'loopback',
    '::1/128': 'loopback',
    '::/128': 'the unspecified address, reaches the gateway itself',
    '169.254.0.0/16': 'link-local, incl. the cloud metadata address 169.254.169.254',
    'fe80::/10': 'link-local',
    '168.63.129.16/32': "Azure's WireServer",
    '100.100.100.200/32': "Alibaba Cloud's metadata service",
    'fd00:ec2::254/128': "AWS's IPv6 metadata service",
  };
  if (known[c.text]) return known[c.text]!;
  return PRIVATE_RANGES.some((p) => parseCidr(p).text === c.text) ? 'a private range' : "the cluster's own range";
}

export interface GatewayEgressInput {
  namespace: string;
  groups: readonly PortGroup[];
  /** The `<name>-app` Services the gateway sends inbound traffic to (this namespace's Windows pods). */
  appServices: readonly KubeObject[];
  /** Services the declared in-cluster destinations name (any namespace), as far as they exist. */
  services: readonly V1Service[];
  ranges: EgressRanges;
  istioNamespace: string;
}

type Peer = Record<string, unknown>;
type PolicyPort = { protocol: string; port: number | string };

/** The NetworkPolicy: DNS, istiod, the pods behind declared destinations, the internet minus the forbidden ranges. */
export function gatewayEgressPolicy(i: GatewayEgressInput): KubeObject {
  const egress: Record<string, unknown>[] = [
    clusterDnsEgress(),
    {
      to: [
        {
          namespaceSelector: { matchLabels: namespaceLabel(i.istioNamespace) },
          podSelector: { matchLabels: { app: 'istiod' } },
        },
      ],
      ports: [{ protocol: 'TCP', port: ISTIOD_XDS_PORT }],
    },
  ];
  // Pods behind each in-cluster destination, by namespace, selector and target port (after the
  // ClusterIP's translation, and Envoy dials endpoints directly anyway).
  const peers = new Map<string, { peer: Peer; ports: Map<string, PolicyPort> }>();
  const add = (peer: Peer, ports: PolicyPort[]) => {
    const key = JSON.stringify(peer);
    const entry = peers.get(key) ?? { peer, ports: new Map() };
    for (const p of ports) entry.ports.set(`${p.protocol}/${p.port}`, p);
    peers.set(key, entry);
  };
  for (const app of i.appServices) {
    const s = app.spec as {
      selector?: Record<string, string>;
      ports?: Array<{ targetPort?: number | string; port: number; protocol?: string }>;
    };
    add(
      { podSelector: { matchLabels: s.selector ?? {} } },
      (s.ports ?? []).map((p) => ({ protocol: p.protocol ?? 'TCP', port: p.targetPort ?? p.port })),
    );
  }
  // By namespace/name, the first listed winning (the namespace's own before other namespaces'):
  // with mesh-wide outbound there are as many routes as Services, so no scan per route.
  const byName = new Map<string, V1Service>();
  for (const s of i.services) {
    const k = `${s.metadata?.namespace}/${s.metadata?.name}`;
    if (!byName.has(k)) byName.set(k, s);
  }
  const externalPorts = new Set<number>();
  for (const route of i.groups.flatMap((g) => g.routes)) {
    if (route.target.kind === 'external') {
      externalPorts.add(route.routePort);
      continue;
    }
    if (route.viaAppService) continue; // a re-pointed neighbour: its `-app` Service above
    const { namespace, service } = route.target;
    const svc = byName.get(`${namespace}/${service}`);
    const selector = svc?.spec?.type !== 'ExternalName' ? svc?.spec?.selector : undefined;
    const port = svc?.spec?.ports?.find((p) => p.port === route.routePort);
    const nsPeer = { namespaceSelector: { matchLabels: namespaceLabel(namespace) } };
    // Unknown Service or no selector (manual endpoints): its namespace on the dialled port, no wider.
    if (selector && Object.keys(selector).length > 0 && port)
      add({ ...nsPeer, podSelector: { matchLabels: selector } }, [
        { protocol: port.protocol ?? 'TCP', port: port.targetPort ?? port.port },
      ]);
    else add(nsPeer, [{ protocol: port?.protocol ?? 'TCP', port: route.routePort }]);
  }
  for (const { peer, ports } of [...peers.values()]) {
    if (ports.size > 0) egress.push({ to: [peer], ports: [...ports.values()] });
  }
  if (externalPorts.size > 0) {
    const ports = [...externalPorts].sort((a, b) => a - b).map((port) => ({ protocol: 'TCP', port }));
    const internetExcept = outermost([...i.ranges.never, ...i.ranges.privateDenied]);
    egress.push({ to: (['0.0.0.0/0', '::/0'] as const).map((c) => ipBlock(parseCidr(c), internetExcept)), ports });
    if (i.ranges.allowed.length > 0)
      egress.push({ to: i.ranges.allowed.map((c) => ipBlock(c, i.ranges.never)), ports });
  }
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: meta(GATEWAY_EGRESS_POLICY, i.namespace, { kind: 'namespace' }),
    spec: { podSelector: { matchLabels: gatewayLabels(i.namespace) }, policyTypes: ['Egress'], egress },
  };
}

/** `cidr` minus the denied ranges inside it (NetworkPolicy's except must lie strictly within cidr). */
function ipBlock(cidr: Cidr, denied: readonly Cidr[]): Record<string, unknown> {
  const except = denied
    .filter((d) => d.family === cidr.family && d.prefix > cidr.prefix && contains(cidr, d))
    .map((d) => d.text);
  return { ipBlock: { cidr: cidr.text, ...(except.length > 0 ? { except } : {}) } };
}

/** Drops ranges inside another of the list; sorted by family, then address. */
function outermost(ranges: readonly Cidr[]): Cidr[] {
  const out = ranges.filter(
    (r, i) => !ranges.some((o, j) => j !== i && contains(o, r) && (o.prefix < r.prefix || j < i)),
  );
  return out.sort(compareCidr);
}
