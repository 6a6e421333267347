import { describe, expect, it } from 'vitest';
import { Limiter } from '../../src/cluster/limiter.js';

describe('Limiter', () => {
  it('runs at most max tasks at once, in arrival order, through failures, and finishes them all', async () => {
    const l = new Limiter(3);
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const gates: Array<() => void> = [];
    const tasks = Array.from({ length: 10 }, (_, i) =>
      l
        .run(async () => {
          started.push(i);
          running++;
          peak = Math.max(peak, running);
          await new Promise<void>((r) => gates.push(r));
          running--;
          if (i === 4) throw new Error('task 4 failed');
          return i;
        })
        .catch((e: Error) => e.message),
    );
    // release one task at a time; a newcomer queued meanwhile must not jump the line or exceed max
    const late = l.run(async () => 'late');
    for (let n = 0; n < 11; n++) {
      await new Promise((r) => setTimeout(r, 0));
      expect(running).toBeLessThanOrEqual(3);
      gates.shift()?.();
    }
    expect(await Promise.all(tasks)).toEqual([0, 1, 2, 3, 'task 4 failed', 5, 6, 7, 8, 9]);
    expect(await late).toBe('late');
    expect(peak).toBe(3);
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(l.load).toEqual({ active: 0, waiting: 0 });
  });

  it('refuses a max that is not a positive integer', () => {
    expect(() => new Limiter(0)).toThrow(/positive integer/);
  });
});
