// The gateway's own egress (NetworkPolicy wpgw-gateway-egress, src/core/desired/egress.ts) in each
// mode, from pods the real admission core injected, and the CIDR arithmetic under it.
import fc from 'fast-check';
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { addressCidr, contains, parseCidr, CidrError } from '../../src/core/cidr.js';
import { desiredNamespaceState } from '../../src/core/desired.js';
import { egressRanges, forbiddenRange, GATEWAY_EGRESS_POLICY } from '../../src/core/desired/egress.js';
import type { DesiredOptions, DesiredState, NamespaceInput } from '../../src/core/desired-types.js';
import { get, injectedPod, namespaceObject, repointedService, service, spec } from './helpers/builders.js';

const OPTS: DesiredOptions = {
  clusterDomain: 'cluster.local',
  defaultGatewayReplicas: 2,
  corednsImage: 'registry.example/coredns:test',
};
type Rule = { to: Array<Record<string, any>>; ports?: Array<{ protocol: string; port: number | string }> };

function state(input: Partial<NamespaceInput>, opts: Partial<DesiredOptions> = {}): DesiredState {
  return desiredNamespaceState(
    {
      namespace: input.namespace ?? namespaceObject('shop'),
      pods: input.pods ?? [],
      services: input.services ?? [],
      clusterDnsIP: '10.96.0.10',
      ...input,
    },
    { ...OPTS, ...opts },
  );
}
const egressOf = (s: DesiredState): Rule[] => {
  const p = spec(get(s.objects, 'NetworkPolicy', GATEWAY_EGRESS_POLICY));
  expect(p.podSelector).toEqual({ matchLabels: { 'wpgw.io/gateway': 'shop' } });
  expect(p.policyTypes).toEqual(['Egress']);
  return p.egress as Rule[];
};
const ipRules = (rules: Rule[]) => rules.filter((r) => r.to.some((t) => t.ipBlock));
const pod = (outbound: string, o: { resolver?: 'dnsConfig'; name?: string } = {}): V1Pod =>
  injectedPod({
    name: o.name ?? 'legacy-abc',
    labels: { app: 'legacy' },
    outbound,
    ip: '10.244.64.10',
    ...(o.resolver ? { resolver: o.resolver } : {}),
  });

const DNS: Rule = {
  to: [
    {
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
      podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
    },
  ],
  ports: [
    { protocol: 'UDP', port: 53 },
    { protocol: 'TCP', port: 53 },
  ],
};
const ISTIOD: Rule = {
  to: [
    {
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'istio-system' } },
      podSelector: { matchLabels: { app: 'istiod' } },
    },
  ],
  ports: [{ protocol: 'TCP', port: 15012 }],
};
/** The internet rule's except lists with no allowlist and no cluster ranges. */
const V4_EXCEPT = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '168.63.129.16/32',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.168.0.0/16',
];
const V6_EXCEPT = ['::/128', '::1/128', 'fc00::/7', 'fe80::/10'];

const stock: V1Service = service('stock', 'sales', { app: 'stock' }, [{ name: 'http', port: 9080, targetPort: 8080 }]);
const named: V1Service = service('orders', 'sales', { app: 'orders' }, [
  { name: 'http', port: 9080, targetPort: 'web' as unknown as number },
]);

describe('gateway egress: always', () => {
  it('an empty namespace: only cluster DNS and istiod (no wpgw-dns, no ipBlock)', () => {
    for (const ns of [namespaceObject('shop'), namespaceObject('shop', { 'wpgw.io/resolver': 'dnsConfig' })]) {
      expect(egressOf(state({ namespace: ns }))).toEqual([DNS, ISTIOD]);
    }
  });

  it('istiod in the namespace the operator names', () => {
    expect(egressOf(state({}, { istioNamespace: 'aks-istio-system' }))[1]!.to[0]!.namespaceSelector).toEqual({
      matchLabels: { 'kubernetes.io/metadata.name': 'aks-istio-system' },
    });
  });

  it('inbound: the Windows pods behind each <name>-app Service, on their target ports', () => {
    const legacy = repointedService(
      service('legacy', 'shop', { app: 'legacy' }, [{ name: 'http', port: 8080, targetPort: 80 }]),
      { app: 'legacy' },
      { uid: 'u1' },
    );
    const rules = egressOf(state({ pods: [pod('example.com:80')], services: [legacy] }));
    expect(rules).toContainEqual({
      to: [{ podSelector: { matchLabels: { app: 'legacy' } } }],
      ports: [{ protocol: 'TCP', port: 80 }],
    });
  });
});

describe('gateway egress: in-cluster destinations', () => {
  it('hostAliases and dnsConfig give the same policy: the destination pods by namespace, selector and target port; no internet', () => {
    const out = 'stock.sales.svc.cluster.local:9080';
    const a = egressOf(state({ pods: [pod(out)], destinationServices: [stock] }));
    const b = egressOf(state({ pods: [pod(out, { resolver: 'dnsConfig' })], destinationServices: [stock] }));
    expect(a).toEqual(b);
    expect(a).toEqual([
      DNS,
      ISTIOD,
      {
        to: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'sales' } },
            podSelector: { matchLabels: { app: 'stock' } },
          },
        ],
        ports: [{ protocol: 'TCP', port: 8080 }],
      },
    ]);
    expect(ipRules(a)).toEqual([]);
  });

  it('a named target port stays named (the policy resolves it on the destination pods)', () => {
    const rules = egressOf(state({ pods: [pod('orders.sales.svc:9080')], destinationServices: [named] }));
    expect(rules.at(-1)).toEqual({
      to: [
        {
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'sales' } },
          podSelector: { matchLabels: { app: 'orders' } },
        },
      ],
      ports: [{ protocol: 'TCP', port: 'web' }],
    });
  });

  it('a Service not (yet) known, or without a selector: its namespace on the dialled port only', () => {
    const selectorless: V1Service = { metadata: { name: 'db', namespace: 'data' }, spec: { ports: [{ port: 5432 }] } };
    const rules = egressOf(
      state({ pods: [pod('tcp://db.data.svc:5432, orders.sales.svc:9080')], destinationServices: [selectorless] }),
    );
    expect(rules.slice(2)).toEqual([
      {
        to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'data' } } }],
        ports: [{ protocol: 'TCP', port: 5432 }],
      },
      {
        to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'sales' } } }],
        ports: [{ protocol: 'TCP', port: 9080 }],
      },
    ]);
  });

  it('two destinations on one set of pods share one rule', () => {
    const two = service('stock', 'sales', { app: 'stock' }, [
      { name: 'http', port: 9080, targetPort: 8080 },
      { name: 'http-admin', port: 9081, targetPort: 8081 },
    ]);
    const rules = egressOf(
      state({ pods: [pod('stock.sales.svc:9080 stock.sales.svc:9081')], destinationServices: [two] }),
    );
    expect(rules.slice(2)).toEqual([
      {
        to: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'sales' } },
            podSelector: { matchLabels: { app: 'stock' } },
          },
        ],
        ports: [
          { protocol: 'TCP', port: 8080 },
          { protocol: 'TCP', port: 8081 },
        ],
      },
    ]);
  });
});

describe('gateway egress: external destinations', () => {
  it('the internet minus link-local, loopback, metadata and private ranges, on the upstream ports only', () => {
    const rules = egressOf(
      state({ pods: [pod('example.com:80+tls tls://api.example.net:8443 tcp://mq.example.org:5671')] }),
    );
    expect(ipRules(rules)).toEqual([
      {
        to: [{ ipBlock: { cidr: '0.0.0.0/0', except: V4_EXCEPT } }, { ipBlock: { cidr: '::/0', except: V6_EXCEPT } }],
        ports: [443, 5671, 8443].map((port) => ({ protocol: 'TCP', port })),
      },
    ]);
    // nested metadata addresses are covered by their outer range (Alibaba's in 100.64/10, AWS's v6 in fc00::/7)
    expect(V4_EXCEPT).not.toContain('100.100.100.200/32');
  });

  it('mixed: in-cluster pods and the internet; wildcards (dnsConfig) too', () => {
    const rules = egressOf(
      state({
        pods: [pod('stock.sales.svc:9080 *.zone.example:80', { resolver: 'dnsConfig' })],
        destinationServices: [stock],
      }),
    );
    expect(
      rules.map((r) =>
        r.to[0]!.ipBlock ? 'internet' : r.to[0]!.namespaceSelector?.matchLabels['kubernetes.io/metadata.name'],
      ),
    ).toEqual(['kube-system', 'istio-system', 'sales', 'internet']);
    expect(ipRules(rules)[0]!.ports).toEqual([{ protocol: 'TCP', port: 80 }]);
  });

  it("the cluster's own ranges (operator-set and discovered) are excepted, inside or outside the private ranges", () => {
    const rules = egressOf(
      state(
        { pods: [pod('example.com:80')], clusterAddresses: ['34.1.2.3'] },
        { clusterCIDRs: ['10.244.0.0/16', '203.0.113.0/24', 'fd10::/48', '2001:db8:1::/64'] },
      ),
    );
    const [v4, v6] = ipRules(rules)[0]!.to.map((t) => t.ipBlock.except as string[]);
    expect(v4).toContain('203.0.113.0/24');
    expect(v4).toContain('34.1.2.3/32');
    expect(v4).not.toContain('10.244.0.0/16'); // inside 10.0.0.0/8, already excepted
    expect(v6).toContain('2001:db8:1::/64');
    expect(v6).not.toContain('fd10::/48');
  });
});

describe('gateway egress: the namespace allowlist (wpgw.io/egress-allow-cidrs)', () => {
  const ns = (v: string) => namespaceObject('shop', { 'wpgw.io/egress-allow-cidrs': v });

  it('re-opens a private range on the external ports, still without the cluster ranges inside it', () => {
    const s = state(
      { namespace: ns('10.20.0.0/16, 192.168.7.0/24'), pods: [pod('erp.corp.example:443+tls')] },
      { clusterCIDRs: ['10.20.128.0/17'] },
    );
    expect(s.conflicts).toEqual([]);
    const [internet, allow] = ipRules(egressOf(s));
    expect(internet!.to[0]!.ipBlock.except).toContain('10.0.0.0/8');
    expect(allow).toEqual({
      to: [{ ipBlock: { cidr: '10.20.0.0/16', except: ['10.20.128.0/17'] } }, { ipBlock: { cidr: '192.168.7.0/24' } }],
      ports: [{ protocol: 'TCP', port: 443 }],
    });
  });

  it('a whole private range re-opened leaves the internet rule without it', () => {
    const [internet, allow] = ipRules(
      egressOf(state({ namespace: ns('172.16.0.0/12'), pods: [pod('erp.corp.example:80')] })),
    );
    expect(internet!.to[0]!.ipBlock.except).not.toContain('172.16.0.0/12');
    expect(allow!.to).toEqual([{ ipBlock: { cidr: '172.16.0.0/12' } }]);
  });

  it('never re-opens metadata, link-local, loopback or the cluster; bad text is named; nothing is widened', () => {
    const s = state(
      {
        namespace: ns(
          '169.254.169.254/32 127.0.0.1 10.244.3.0/24 fe80::1 not-a-cidr 10.0.0.0/33 ::ffff:169.254.169.254',
        ),
        pods: [pod('example.com:80')],
      },
      { clusterCIDRs: ['10.244.0.0/16'] },
    );
    expect(s.conflicts.map((c) => c.reason)).toEqual([
      'EgressAllowRefused',
      'EgressAllowRefused',
      'EgressAllowRefused',
      'EgressAllowRefused',
      'InvalidEgressAllow',
      'InvalidEgressAllow',
      'InvalidEgressAllow',
    ]);
    expect(s.conflicts[6]!.message).toBe(
      'wpgw.io/egress-allow-cidrs: "::ffff:169.254.169.254" is an IPv4-mapped IPv6 address: write it as IPv4; ignored',
    );
    expect(s.conflicts[0]!.message).toBe(
      'wpgw.io/egress-allow-cidrs: 169.254.169.254/32 lies in 169.254.0.0/16 (link-local, incl. the cloud metadata address 169.254.169.254), which the gateway never reaches for external destinations; ignored',
    );
    expect(s.conflicts[2]!.message).toContain("10.244.0.0/16 (the cluster's own range)");
    expect(s.conflicts.every((c) => c.subject === 'Namespace/shop')).toBe(true);
    expect(ipRules(egressOf(s))).toHaveLength(1);
  });

  it('a range around a forbidden one is accepted with the forbidden part excepted', () => {
    const [, allow] = ipRules(
      egressOf(state({ namespace: ns('168.63.0.0/16 fd00::/8'), pods: [pod('example.com:80')] })),
    );
    expect(allow!.to).toEqual([
      { ipBlock: { cidr: '168.63.0.0/16', except: ['168.63.129.16/32'] } },
      { ipBlock: { cidr: 'fd00::/8', except: ['fd00:ec2::254/128'] } },
    ]);
  });

  it('IPv6: a ULA corporate range re-opened beside IPv4', () => {
    const [internet, allow] = ipRules(
      egressOf(
        state(
          { namespace: ns('fd12:3456::/32'), pods: [pod('erp.corp.example:80')] },
          { clusterCIDRs: ['fd12:3456:1::/48'] },
        ),
      ),
    );
    expect(internet!.to[1]!.ipBlock.except).toContain('fc00::/7');
    expect(allow!.to).toEqual([{ ipBlock: { cidr: 'fd12:3456::/32', except: ['fd12:3456:1::/48'] } }]);
  });
});

describe('resolved addresses against the same ranges', () => {
  const ranges = egressRanges('shop', '10.20.0.0/16', ['10.20.128.0/17', '203.0.113.0/24']);
  const verdict = (ip: string) => forbiddenRange(ranges, addressCidr(ip))?.text;

  it('forbids metadata, loopback, link-local, private and cluster addresses; allows public and re-opened ones', () => {
    expect(verdict('169.254.169.254')).toBe('169.254.0.0/16');
    expect(verdict('127.0.0.1')).toBe('127.0.0.0/8');
    expect(verdict('0.0.0.0')).toBe('0.0.0.0/8');
    expect(verdict('168.63.129.16')).toBe('168.63.129.16/32');
    expect(verdict('100.100.100.200')).toBe('100.100.100.200/32'); // the never-re-opened range, before the private one
    expect(verdict('fd00:ec2::254')).toBe('fd00:ec2::254/128');
    expect(verdict('::1')).toBe('::1/128');
    expect(verdict('::ffff:169.254.169.254')).toBe('169.254.0.0/16'); // IPv4-mapped: the IPv4 address it reaches
    expect(verdict('::ffff:a9fe:a9fe')).toBe('169.254.0.0/16');
    expect(verdict('::ffff:93.184.216.34')).toBeUndefined();
    expect(verdict('fe80::1')).toBe('fe80::/10');
    expect(verdict('10.1.2.3')).toBe('10.0.0.0/8');
    expect(verdict('10.20.200.1')).toBe('10.20.128.0/17'); // cluster range inside the allowlist
    expect(verdict('203.0.113.9')).toBe('203.0.113.0/24');
    expect(verdict('10.20.1.1')).toBeUndefined();
    expect(verdict('93.184.216.34')).toBeUndefined();
    expect(verdict('2606:2800:220:1::1')).toBeUndefined();
  });
});

describe('cidr', () => {
  it('parses to canonical text and rejects what is not a CIDR', () => {
    expect(parseCidr('10.1.2.3/8').text).toBe('10.0.0.0/8');
    expect(parseCidr('192.0.2.1').text).toBe('192.0.2.1/32');
    expect(parseCidr('FD00:EC2:0:0:0:0:0:254').text).toBe('fd00:ec2::254/128');
    expect(parseCidr('2001:db8:0:0:1:0:0:1/128').text).toBe('2001:db8::1:0:0:1/128');
    expect(() => parseCidr('::ffff:169.254.169.254')).toThrow('is an IPv4-mapped IPv6 address: write it as IPv4');
    expect(addressCidr('::ffff:169.254.169.254').text).toBe('169.254.169.254/32');
    expect(parseCidr('::/0').text).toBe('::/0');
    for (const bad of [
      '',
      '10.0.0.0/',
      '10.0.0.0/33',
      '::/129',
      '10.0.0.0/8/8',
      'example.com',
      '10.0.0.256',
      '10.0.0.0/-1',
      '10.0.0.0/ 8',
    ]) {
      expect(() => parseCidr(bad), bad).toThrow(CidrError);
    }
  });

  it('containment: a prefix contains every longer prefix with the same leading bits', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 32 }), (ip, a, b) => {
        const [outer, inner] = [Math.min(a, b), Math.max(a, b)];
        expect(contains(parseCidr(`${ip}/${outer}`), parseCidr(`${ip}/${inner}`))).toBe(true);
        expect(contains(parseCidr(`${ip}/${inner}`), parseCidr(`${ip}/${outer}`))).toBe(inner === outer);
      }),
    );
  });

  it('every except the policy writes lies strictly inside its cidr, whatever allowlist and cluster ranges', () => {
    const v4 = fc.tuple(fc.ipV4(), fc.integer({ min: 1, max: 32 })).map(([ip, p]) => `${ip}/${p}`);
    const v6 = fc
      .tuple(fc.ipV6(), fc.integer({ min: 1, max: 128 }))
      .map(([ip, p]) => `${ip}/${p}`)
      .filter((c) => !/^::ffff:/i.test(parseCidr(c.replace(/\/\d+$/, '/128')).text)); // operator ranges are validated: no IPv4-mapped
    fc.assert(
      fc.property(
        fc.array(fc.oneof(v4, v6), { maxLength: 5 }),
        fc.array(fc.oneof(v4, v6), { maxLength: 4 }),
        (allow, cluster) => {
          const s = state(
            {
              namespace: namespaceObject('shop', { 'wpgw.io/egress-allow-cidrs': allow.join(',') }),
              pods: [pod('example.com:80')],
            },
            { clusterCIDRs: cluster },
          );
          for (const rule of ipRules(egressOf(s))) {
            for (const { ipBlock } of rule.to) {
              const cidr = parseCidr(ipBlock.cidr);
              for (const e of (ipBlock.except ?? []) as string[]) {
                const c = parseCidr(e);
                expect(contains(cidr, c) && c.prefix > cidr.prefix, `${e} in ${ipBlock.cidr}`).toBe(true);
              }
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('controller input for the egress policy (src/controller/input.ts)', () => {
  it("adds the declared Services of other namespaces and the kubernetes Service's address from the cache", async () => {
    const { buildNamespaceInput } = await import('../../src/controller/input.js');
    const windows = pod('stock.sales.svc:9080 orders.sales.svc:9080 local:80 example.com:80');
    const kubernetes: V1Service = {
      metadata: { name: 'kubernetes', namespace: 'default' },
      spec: { clusterIP: '10.96.0.1', ports: [{ port: 443 }] },
    };
    const all = [stock, kubernetes, service('local', 'shop', { app: 'local' }, [{ port: 80 }])];
    const view = {
      managedPods: (ns: string) => (ns === 'shop' ? [windows] : []),
      services: (ns: string) => all.filter((s) => s.metadata?.namespace === ns),
      service: (ns: string, name: string) => all.find((s) => s.metadata?.namespace === ns && s.metadata?.name === name),
      ingresses: () => [],
      workload: () => undefined,
      istioObjects: () => ({ virtualServices: [], destinationRules: [] }),
      allRouting: () => ({ virtualServices: [], destinationRules: [] }),
    };
    const input = buildNamespaceInput(view as never, namespaceObject('shop'));
    expect(input.destinationServices).toEqual([stock]); // orders does not exist (yet); local is in input.services
    expect(input.clusterAddresses).toEqual(['10.96.0.1']);
    // never re-opened, even by an allowlist of all of 10/8
    expect(
      forbiddenRange(egressRanges('shop', '10.0.0.0/8', input.clusterAddresses!), parseCidr('10.96.0.1'))?.text,
    ).toBe('10.96.0.1/32');
    expect(egressOf(desiredNamespaceState(input, OPTS))).toContainEqual({
      to: [
        {
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'sales' } },
          podSelector: { matchLabels: { app: 'stock' } },
        },
      ],
      ports: [{ protocol: 'TCP', port: 8080 }],
    });
  });
});

describe("Istio's reserved ports as external upstream ports (loopback, which NetworkPolicy cannot see)", () => {
  it('are denied at admission and not routed for pods admitted before', async () => {
    const { reviewDestinations, parseOutbound } = await import('../../src/core/outbound.js');
    for (const [entry, port] of [
      ['evil.example:15000', 15000],
      ['evil.example:80+tls:15021', 15021],
      ['tls://evil.example:15090', 15090],
    ] as const) {
      const r = reviewDestinations(parseOutbound(entry), 'shop', 'cluster.local');
      expect(r.error?.message, entry).toBe(
        `invalid wpgw.io/outbound entry "${entry}": upstream port ${port} is in Istio's reserved range 15000-15090 (the gateway's own admin, agent and health ports): an external name resolving to loopback would reach them`,
      );
    }
    // in-mesh destinations are routed to Service endpoints, not by name: allowed; 15091 and 14999 too
    for (const entry of ['istiod.istio-system.svc:15014', 'example.com:15091', 'example.com:14999'])
      expect(reviewDestinations(parseOutbound(entry), 'shop', 'cluster.local').error, entry).toBeUndefined();
    // a status annotation recorded before the rule: a conflict, no route, no ServiceEntry
    const old = pod('example.com:80');
    const status = JSON.parse(old.metadata!.annotations!['wpgw.io/status']!);
    old.metadata!.annotations!['wpgw.io/status'] = JSON.stringify({
      ...status,
      outbound: ['example.com:15000', 'example.org:80'],
    });
    const s = state({ pods: [old] });
    expect(s.conflicts.map((c) => [c.subject, c.reason])).toEqual([['Pod/legacy-abc', 'ReservedUpstreamPort']]);
    expect(s.objects.filter((o) => o.kind === 'ServiceEntry').map((o) => o.metadata.name)).toEqual([
      'wpgw-ext-example.org',
    ]);
  });
});
