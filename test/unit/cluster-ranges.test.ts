// The cluster's own ranges discovered from the API (issue 17): Nodes and ServiceCIDRs to CIDRs
// (src/core/cluster-ranges.ts), the batched watch over them (src/cluster/cluster-ranges.ts), and
// how they land in the gateway egress policy's except lists.
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterRangeWatch } from '../../src/cluster/cluster-ranges.js';
import type { ListResult, ListWatchSource, WatchHandle } from '../../src/cluster/reflector.js';
import { slimObject } from '../../src/cluster/slim.js';
import type { KubeObjectLike } from '../../src/cluster/store.js';
import { mergeRanges, nodeRanges, serviceCidrRanges, type NodeLike } from '../../src/core/cluster-ranges.js';
import { desiredNamespaceState } from '../../src/core/desired.js';
import { GATEWAY_EGRESS_POLICY } from '../../src/core/desired/egress.js';
import type { DesiredOptions } from '../../src/core/desired-types.js';
import { get, injectedPod, namespaceObject, spec } from './helpers/builders.js';

const node = (
  name: string,
  podCIDRs: string[],
  addresses: Array<[string, string]>,
  rv = '1',
): NodeLike & KubeObjectLike => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name, resourceVersion: rv },
  spec: { podCIDR: podCIDRs[0], podCIDRs },
  status: { addresses: addresses.map(([type, address]) => ({ type, address })) },
});

describe('nodeRanges / serviceCidrRanges / mergeRanges', () => {
  it('pod CIDRs as they are (canonical), InternalIP and ExternalIP as /32 or /128; names and garbage skipped', () => {
    const n = node(
      'win-1',
      ['10.244.7.9/24', 'fd00:10:244:7::/64'],
      [
        ['InternalIP', '10.1.0.4'],
        ['ExternalIP', '2001:db8::7'],
        ['Hostname', 'win-1'],
        ['InternalDNS', 'win-1.internal'],
        ['InternalIP', 'not-an-ip'],
      ],
    );
    expect(nodeRanges([n])).toEqual([
      { cidr: '10.244.7.0/24', source: 'node win-1 podCIDR' },
      { cidr: 'fd00:10:244:7::/64', source: 'node win-1 podCIDR' },
      { cidr: '10.1.0.4/32', source: 'node win-1 InternalIP' },
      { cidr: '2001:db8::7/128', source: 'node win-1 ExternalIP' },
    ]);
    // a node with no pod CIDR yet (before the node IPAM controller assigns one) gives its addresses only
    expect(
      nodeRanges([
        { metadata: { name: 'new' }, status: { addresses: [{ type: 'InternalIP', address: '::ffff:203.0.113.9' }] } },
      ]),
    ).toEqual([{ cidr: '203.0.113.9/32', source: 'node new InternalIP' }]);
    expect(
      serviceCidrRanges([
        { metadata: { name: 'kubernetes' }, spec: { cidrs: ['10.96.0.0/16', 'fd00:96::/108', 'bad'] } },
      ]),
    ).toEqual([
      { cidr: '10.96.0.0/16', source: 'ServiceCIDR kubernetes' },
      { cidr: 'fd00:96::/108', source: 'ServiceCIDR kubernetes' },
    ]);
  });

  it('mergeRanges: one entry per CIDR, the same list whatever the order the watch delivered them in', () => {
    const nodes = [
      node('a', ['203.0.113.0/25'], [['InternalIP', '198.51.100.1']]),
      node('b', ['203.0.113.128/25'], [['InternalIP', '198.51.100.1']]),
      node('c', ['10.244.0.0/24'], [['ExternalIP', '2001:db8::1']]),
    ];
    const want = mergeRanges(nodeRanges(nodes)).map((r) => r.cidr);
    expect(want).toEqual(['10.244.0.0/24', '198.51.100.1/32', '203.0.113.0/25', '203.0.113.128/25', '2001:db8::1/128']);
    fc.assert(
      fc.property(fc.shuffledSubarray(nodes, { minLength: 3, maxLength: 3 }), (shuffled) => {
        expect(mergeRanges(nodeRanges(shuffled)).map((r) => r.cidr)).toEqual(want);
      }),
    );
  });

  it('the slim Node keeps pod CIDRs and addresses only (no conditions, images, capacity)', () => {
    const full = {
      ...node('n', ['10.244.0.0/24'], [['InternalIP', '10.1.0.4']]),
      status: {
        addresses: [{ type: 'InternalIP', address: '10.1.0.4' }],
        images: [{ names: ['x'] }],
        conditions: [{ type: 'Ready' }],
      },
    };
    const slim = slimObject('node', full) as NodeLike & { status: Record<string, unknown> };
    expect(Object.keys(slim.status)).toEqual(['addresses']);
    expect(nodeRanges([slim])).toEqual(nodeRanges([full]));
  });
});

describe('discovered ranges in wpgw-gateway-egress', () => {
  const OPTS: DesiredOptions = { clusterDomain: 'cluster.local', defaultGatewayReplicas: 2, corednsImage: 'coredns' };
  const pod = injectedPod({
    name: 'legacy-abc',
    labels: { app: 'legacy' },
    outbound: 'example.com:443+tls',
    ip: '10.244.64.10',
  });
  const excepts = (clusterAddresses: string[], allow?: string) => {
    const s = desiredNamespaceState(
      {
        namespace: namespaceObject('shop', allow ? { 'wpgw.io/egress-allow-cidrs': allow } : {}),
        pods: [pod],
        services: [],
        clusterAddresses,
      },
      OPTS,
    );
    const rules = spec(get(s.objects, 'NetworkPolicy', GATEWAY_EGRESS_POLICY)).egress as Array<{
      to: Array<{ ipBlock?: { cidr: string; except?: string[] } }>;
    }>;
    return {
      blocks: rules.flatMap((r) => r.to.flatMap((t) => (t.ipBlock ? [t.ipBlock] : []))),
      conflicts: s.conflicts,
    };
  };

  it('a public pod CIDR and node addresses are excepted from the internet rule; private ones add nothing (already denied)', () => {
    const discovered = mergeRanges(
      nodeRanges([
        node(
          'n1',
          ['203.0.113.0/24'],
          [
            ['ExternalIP', '198.51.100.7'],
            ['InternalIP', '10.1.0.4'],
          ],
        ),
        node('n2', [], [['ExternalIP', '2001:db8::7']]),
      ]),
    ).map((r) => r.cidr);
    const { blocks } = excepts(discovered);
    const v4 = blocks.find((b) => b.cidr === '0.0.0.0/0')!;
    expect(v4.except).toEqual(expect.arrayContaining(['198.51.100.7/32', '203.0.113.0/24', '10.0.0.0/8']));
    expect(v4.except).not.toContain('10.1.0.4/32'); // inside 10/8: one entry, no churn per private node
    expect(blocks.find((b) => b.cidr === '::/0')!.except).toContain('2001:db8::7/128');
    // without them: neither public range is excepted
    expect(excepts([]).blocks.find((b) => b.cidr === '0.0.0.0/0')!.except).not.toContain('203.0.113.0/24');
  });

  it('a node inside a range the allowlist re-opens stays excepted there; an allowlist entry inside a discovered pod CIDR is refused', () => {
    const { blocks } = excepts(['10.50.3.4/32'], '10.50.0.0/16');
    expect(blocks.find((b) => b.cidr === '10.50.0.0/16')).toEqual({ cidr: '10.50.0.0/16', except: ['10.50.3.4/32'] });
    const refused = excepts(['10.244.1.0/24'], '10.244.1.5/32');
    expect(refused.conflicts.map((c) => c.reason)).toContain('EgressAllowRefused');
    expect(refused.blocks.some((b) => b.cidr === '10.244.1.5/32')).toBe(false);
  });
});

class FakeSource implements ListWatchSource<KubeObjectLike> {
  items: KubeObjectLike[] = [];
  lists = 0;
  listError?: unknown;
  onEvent?: (type: string, obj: unknown) => void;
  async list(): Promise<ListResult<KubeObjectLike>> {
    this.lists++;
    if (this.listError) throw this.listError;
    return { items: structuredClone(this.items), resourceVersion: '10' };
  }
  async watch(_rv: string, onEvent: (type: string, obj: unknown) => void): Promise<WatchHandle> {
    this.onEvent = onEvent;
    return { abort: () => undefined };
  }
}

describe('ClusterRangeWatch', () => {
  const watches: ClusterRangeWatch[] = [];
  afterEach(async () => {
    await Promise.all(watches.splice(0).map((w) => w.stop()));
  });
  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(cond()).toBe(true);
  };

  it('lists Nodes and ServiceCIDRs, then reports one change per batch of churn and none for heartbeats', async () => {
    const nodes = new FakeSource();
    const cidrs = new FakeSource();
    nodes.items = [node('n1', ['203.0.113.0/24'], [['InternalIP', '10.1.0.4']])];
    cidrs.items = [
      {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'ServiceCIDR',
        metadata: { name: 'kubernetes', resourceVersion: '1' },
        spec: { cidrs: ['10.96.0.0/16'] },
      } as KubeObjectLike,
    ];
    const w = new ClusterRangeWatch({ nodes: true, batchMs: 50, sourceFactory: (k) => (k === 'Node' ? nodes : cidrs) });
    watches.push(w);
    const changes: string[][] = [];
    w.onChange((r) => changes.push(r.map((x) => x.cidr)));
    w.start();
    await until(() => w.ready());
    expect(w.ranges()).toEqual([
      { cidr: '10.1.0.4/32', source: 'node n1 InternalIP' },
      { cidr: '10.96.0.0/16', source: 'ServiceCIDR kubernetes' },
      { cidr: '203.0.113.0/24', source: 'node n1 podCIDR' },
    ]);
    expect(w.discovery()).toEqual({ nodes: 'watched', serviceCIDRs: 'watched' });
    expect(changes).toEqual([]); // the first set is no change: reconciles wait for ready()
    await until(() => nodes.onEvent !== undefined);
    // heartbeats: new resourceVersions, same ranges
    for (let rv = 2; rv < 6; rv++)
      nodes.onEvent!('MODIFIED', node('n1', ['203.0.113.0/24'], [['InternalIP', '10.1.0.4']], String(rv)));
    await new Promise((r) => setTimeout(r, 150));
    expect(changes).toEqual([]);
    // three nodes join in a burst: one change
    for (const [i, c] of ['198.51.100.0/26', '198.51.100.64/26', '198.51.100.128/26'].entries())
      nodes.onEvent!('ADDED', node(`n${i + 2}`, [c], [], '10'));
    await until(() => changes.length === 1);
    expect(changes[0]).toEqual([
      '10.1.0.4/32',
      '10.96.0.0/16',
      '198.51.100.0/26',
      '198.51.100.64/26',
      '198.51.100.128/26',
      '203.0.113.0/24',
    ]);
    nodes.onEvent!('DELETED', node('n1', ['203.0.113.0/24'], [['InternalIP', '10.1.0.4']], '11'));
    await until(() => changes.length === 2);
    expect(changes[1]).not.toContain('203.0.113.0/24');
    await new Promise((r) => setTimeout(r, 150));
    expect(changes).toHaveLength(2);
  });

  it('--discover-node-ranges=false watches no Nodes; ServiceCIDRs not served (404) or forbidden (403) are empty and said', async () => {
    const nodes = new FakeSource();
    const cidrs = new FakeSource();
    cidrs.listError = Object.assign(new Error('forbidden'), { code: 403 });
    const w = new ClusterRangeWatch({
      nodes: false,
      batchMs: 50,
      sourceFactory: (k) => (k === 'Node' ? nodes : cidrs),
    });
    watches.push(w);
    w.start();
    await until(() => w.ready());
    expect(nodes.lists).toBe(0);
    expect(w.ranges()).toEqual([]);
    expect(w.discovery()).toEqual({
      nodes: 'off (--discover-node-ranges=false)',
      serviceCIDRs: 'unavailable (not served, or forbidden): see the controller log',
    });
  });
});
