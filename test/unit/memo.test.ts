// BoundedMemo, and the outbound memo in pod mutation: replicas share a parsed annotation, but no
// admission can see or corrupt another's objects, and namespaces never share an expansion.
import { describe, expect, it } from 'vitest';
import { BoundedMemo } from '../../src/core/memo.js';
import { mutatePod, type PodLike } from '../../src/core/pod.js';
import { staticContext } from '../lib/admission.js';

describe('BoundedMemo', () => {
  it('computes once per key and evicts the least recently used beyond its capacity', () => {
    const memo = new BoundedMemo<string>(2);
    const calls: string[] = [];
    const get = (k: string) => memo.get(k, () => (calls.push(k), k.toUpperCase()));
    expect([get('a'), get('b'), get('a')]).toEqual(['A', 'B', 'A']);
    expect(calls).toEqual(['a', 'b']);
    get('c'); // evicts b: a was used more recently
    expect(memo.size).toBe(2);
    get('a');
    get('b');
    expect(calls).toEqual(['a', 'b', 'c', 'b']);
  });

  it('caches nothing when the computation throws, and rejects a useless capacity', () => {
    const memo = new BoundedMemo<number>(4);
    expect(() =>
      memo.get('x', () => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(memo.size).toBe(0);
    expect(memo.get('x', () => 1)).toBe(1);
    expect(() => new BoundedMemo(0)).toThrow(/positive integer/);
  });
});

describe('outbound memo in pod mutation', () => {
  const ctx = staticContext({ gatewayIPs: { shop: '10.96.0.50', depot: '10.96.0.60' }, dnsIP: undefined });
  const pod = (ns: string): PodLike => ({
    metadata: {
      name: 'legacy-1',
      namespace: ns,
      annotations: { 'wpgw.io/outbound': 'orders:9080, example.com:80+tls' },
    },
    spec: { nodeSelector: { 'kubernetes.io/os': 'windows' }, containers: [{ name: 'app', image: 'app' }] },
  });
  const names = (p: PodLike) => p.spec?.hostAliases?.at(-1)?.hostnames;

  it('hands every admission its own arrays', () => {
    const first = mutatePod({ pod: pod('shop'), namespace: 'shop', ctx });
    if (first.action !== 'mutate') throw new Error('expected mutate');
    names(first.pod)!.push('evil.example.com');
    const second = mutatePod({ pod: pod('shop'), namespace: 'shop', ctx });
    if (second.action !== 'mutate') throw new Error('expected mutate');
    expect(names(second.pod)).toEqual([
      'example.com',
      'orders',
      'orders.shop',
      'orders.shop.svc',
      'orders.shop.svc.cluster.local',
    ]);
  });

  it("expands the same text per namespace (a bare name is a Service of the pod's own namespace)", () => {
    mutatePod({ pod: pod('shop'), namespace: 'shop', ctx });
    const depot = mutatePod({ pod: pod('depot'), namespace: 'depot', ctx });
    if (depot.action !== 'mutate') throw new Error('expected mutate');
    expect(names(depot.pod)).toContain('orders.depot.svc.cluster.local');
    expect(names(depot.pod)).not.toContain('orders.shop.svc.cluster.local');
  });

  it('denies a bad annotation every time, not only the first', () => {
    const bad: PodLike = {
      ...pod('shop'),
      metadata: { name: 'x', annotations: { 'wpgw.io/outbound': 'https://example.com:443' } },
    };
    for (let i = 0; i < 2; i++) {
      const out = mutatePod({ pod: bad, namespace: 'shop', ctx });
      expect(out).toMatchObject({ action: 'deny', reason: 'invalid_outbound' });
      if (out.action === 'deny') expect(out.message).toMatch(/pod "x": .*unknown protocol "https"/);
    }
  });
});
