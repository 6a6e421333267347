// The data-path suite's network names (test/datapath/network.ts): WPGW_NETNS_PREFIX must prefix
// every namespace a file makes, the node namespace included, or two checkouts running the same
// file share (and tear down) one node namespace.
import { afterEach, describe, expect, it } from 'vitest';
import { Network } from '../datapath/network.js';

const saved = process.env.WPGW_NETNS_PREFIX;
afterEach(() => {
  if (saved === undefined) delete process.env.WPGW_NETNS_PREFIX;
  else process.env.WPGW_NETNS_PREFIX = saved;
});

describe('data-path network names', () => {
  it('puts WPGW_NETNS_PREFIX before the node namespace too (regression: it was "wdp-node" in every checkout)', () => {
    process.env.WPGW_NETNS_PREFIX = 'b1';
    const n = new Network('wdp');
    expect(n.prefix).toBe('b1wdp');
    expect(n.node).toBe('b1wdp-node');
    process.env.WPGW_NETNS_PREFIX = 'c2';
    expect(new Network('wdp').node).toBe('c2wdp-node');
  });

  it('without a prefix keeps the file`s own names', () => {
    delete process.env.WPGW_NETNS_PREFIX;
    expect(new Network('wdp').node).toBe('wdp-node');
  });

  it('rejects a prefix that would not fit interface names', () => {
    process.env.WPGW_NETNS_PREFIX = 'abc';
    expect(() => new Network('wdp')).toThrow(/WPGW_NETNS_PREFIX=abc: at most 2 lowercase letters or digits/);
  });
});
