// BatchWindows: a quiet namespace gets the short window, one that keeps changing the long one,
// and the first reconcile that writes nothing (or the busy period running out) makes it quiet.
import { describe, expect, it } from 'vitest';
import { BatchWindows } from '../../src/controller/batching.js';

const opts = { quietMs: 500, busyMs: 2500, busyForMs: 10_000 };

describe('BatchWindows', () => {
  it('uses the short window until a reconcile writes, then the long one', () => {
    const w = new BatchWindows(opts);
    expect(w.delayFor('shop', 0)).toBe(500);
    w.reconciled('shop', true, 1_000);
    expect(w.delayFor('shop', 1_001)).toBe(2500);
    expect(w.delayFor('depot', 1_001)).toBe(500); // per namespace
  });

  it('is quiet again after a reconcile that wrote nothing, or once the busy period is over', () => {
    const w = new BatchWindows(opts);
    w.reconciled('shop', true, 0);
    w.reconciled('shop', false, 3_000);
    expect(w.delayFor('shop', 3_001)).toBe(500);
    w.reconciled('shop', true, 5_000);
    expect(w.delayFor('shop', 14_999)).toBe(2500);
    expect(w.delayFor('shop', 15_000)).toBe(500);
  });

  it('forgets deleted namespaces', () => {
    const w = new BatchWindows(opts);
    w.reconciled('gone', true, 0);
    w.forget('gone');
    expect(w.delayFor('gone', 1)).toBe(500);
  });
});
