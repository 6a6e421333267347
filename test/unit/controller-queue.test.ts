import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WorkQueue } from '../../src/controller/queue.js';

describe('WorkQueue', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('de-duplicates keys waiting to be processed', async () => {
    const depths: number[] = [];
    const q = new WorkQueue<string>({ onDepth: (d) => depths.push(d) });
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
    expect(q.len()).toBe(0);
    expect(depths.at(-1)).toBe(0);
    expect(Math.max(...depths)).toBe(2);
  });

  it('never hands one key to two workers; a re-add during processing runs once afterwards', async () => {
    const q = new WorkQueue<string>();
    q.add('a');
    const k = await q.get();
    q.add('a');
    q.add('a');
    expect(q.len()).toBe(0); // held back while "a" is processing
    let second: string | undefined;
    void q.get().then((x) => (second = x));
    await Promise.resolve();
    expect(second).toBeUndefined();
    q.done(k!);
    await Promise.resolve();
    expect(second).toBe('a');
    q.done('a');
    expect(q.isIdle()).toBe(true);
  });

  it('wakes a waiting getter on add', async () => {
    const q = new WorkQueue<string>();
    const p = q.get();
    q.add('x');
    expect(await p).toBe('x');
  });

  it('retries with exponential backoff per key and resets on forget', async () => {
    const q = new WorkQueue<string>({ baseDelayMs: 100, maxDelayMs: 1000 });
    const delays = [
      q.addRateLimited('a'),
      q.addRateLimited('a'),
      q.addRateLimited('a'),
      q.addRateLimited('a'),
      q.addRateLimited('a'),
    ];
    expect(delays).toEqual([100, 200, 400, 800, 1000]);
    expect(q.retries('a')).toBe(5);
    q.forget('a');
    expect(q.retries('a')).toBe(0);
    expect(q.addRateLimited('a')).toBe(100);
  });

  it('delayed adds fire after the delay; the earliest pending delay wins', async () => {
    const q = new WorkQueue<string>();
    q.addAfter('a', 1000);
    q.addAfter('a', 300);
    q.addAfter('a', 5000);
    expect(q.stats().delayed).toBe(1);
    await vi.advanceTimersByTimeAsync(299);
    expect(q.len()).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(q.len()).toBe(1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(q.len()).toBe(1); // not added twice
  });

  it('postpone moves an earlier delayed add later and leaves a later one alone', async () => {
    const q = new WorkQueue<string>();
    q.addAfter('a', 500);
    q.addAfter('b', 9000);
    q.postpone('a', 5000);
    q.postpone('b', 5000);
    q.postpone('c', 5000); // nothing pending: nothing added
    await vi.advanceTimersByTimeAsync(4999);
    expect(q.len()).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(q.len()).toBe(1);
    expect(await q.get()).toBe('a');
    await vi.advanceTimersByTimeAsync(4000);
    expect(q.len()).toBe(1);
    expect(await q.get()).toBe('b');
    expect(q.stats().delayed).toBe(0);
  });

  it('postpone turns a re-add made during processing into a delayed one', async () => {
    const q = new WorkQueue<string>();
    q.add('a');
    const key = await q.get();
    q.add('a'); // while processing: done() would run it again at once
    q.postpone('a', 2000);
    q.done(key!);
    expect(q.len()).toBe(0);
    expect(q.stats().delayed).toBe(1);
    await vi.advanceTimersByTimeAsync(2000);
    expect(q.len()).toBe(1);
  });

  it('shutdown releases waiting getters and drops pending work', async () => {
    const q = new WorkQueue<string>();
    const p = q.get();
    q.addAfter('late', 100);
    q.shutdown();
    expect(await p).toBeUndefined();
    await vi.advanceTimersByTimeAsync(200);
    expect(q.len()).toBe(0);
    q.add('x');
    expect(await q.get()).toBeUndefined();
  });

  it('whenIdle resolves once nothing is ready or in flight', async () => {
    const q = new WorkQueue<string>();
    q.add('a');
    let idle = false;
    void q.whenIdle().then(() => (idle = true));
    const k = await q.get();
    await Promise.resolve();
    expect(idle).toBe(false);
    q.done(k!);
    await Promise.resolve();
    expect(idle).toBe(true);
  });
});
