// The logger's timestamp: the cached-second formatter must print exactly what toISOString does.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, isoTimestamp } from '../../src/telemetry/logger.js';

describe('isoTimestamp', () => {
  it('matches Date#toISOString across millisecond, second, day and year boundaries', () => {
    const times = [
      0, 7, 99, 100, 999, 1000, 1001, 59_999, 60_000, 86_399_999, 86_400_000, 1_795_000_000_000, 1_798_761_599_999,
      1_798_761_600_000,
    ];
    for (let t = 1_795_000_000_000; t < 1_795_000_003_000; t += 37) times.push(t);
    let now = 0;
    const stamp = isoTimestamp(() => now);
    for (const t of times) {
      now = t;
      expect(stamp()).toBe(`,"time":"${new Date(t).toISOString()}"`);
    }
  });

  it('is what the webhook logger writes', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const before = Date.now();
    createLogger({ destination: sink }).info('hello');
    const line = JSON.parse(lines[0]!) as { time: string; level: string; msg: string };
    expect(line).toMatchObject({ level: 'info', msg: 'hello' });
    expect(new Date(line.time).toISOString()).toBe(line.time);
    expect(Date.parse(line.time)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(line.time)).toBeLessThanOrEqual(Date.now());
  });
});
