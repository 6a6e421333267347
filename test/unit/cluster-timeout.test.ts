import { describe, expect, it } from 'vitest';
import { waitAtMost, withTimeout } from '../../src/cluster/timeout.js';

const never = new Promise<never>(() => {});

describe('withTimeout', () => {
  it("passes the promise's value or rejection through when it settles in time", async () => {
    await expect(withTimeout(Promise.resolve(7), 1_000)).resolves.toBe(7);
    await expect(withTimeout(Promise.reject(new Error('refused')), 1_000)).rejects.toThrow('refused');
  });

  it('rejects with the given error once the time is up', async () => {
    await expect(withTimeout(never, 10)).rejects.toThrow('no answer within 10 ms');
    const err = await withTimeout(never, 10, () => Object.assign(new Error('slow'), { code: 'ETIMEOUT' })).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ message: 'slow', code: 'ETIMEOUT' });
  });
});

describe('waitAtMost', () => {
  it('resolves when the promise settles, rejected or not, or when the time is up', async () => {
    await expect(waitAtMost(Promise.reject(new Error('x')), 1_000)).resolves.toBeUndefined();
    const t0 = performance.now();
    await expect(waitAtMost(never, 20)).resolves.toBeUndefined();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(15);
  });
});
