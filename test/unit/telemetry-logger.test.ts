// The logger's timestamp: the cached-second formatter must print exactly what toISOString does.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, isoTimestamp } from '../../src/telemetry/logger.js';
import { parseLogLine } from './webhook-helpers.js';

/** A stream that keeps what the logger writes. */
function collect(): { lines: string[]; sink: Writable } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, sink };
}

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
    const { lines, sink } = collect();
    const before = Date.now();
    createLogger({ destination: sink }).info('hello');
    const line = JSON.parse(lines[0]!) as { time: string; level: string; msg: string };
    expect(line).toMatchObject({ level: 'info', msg: 'hello' });
    expect(new Date(line.time).toISOString()).toBe(line.time);
    expect(Date.parse(line.time)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(line.time)).toBeLessThanOrEqual(Date.now());
  });
});

describe('log lines are unambiguous JSON', () => {
  it('the test helper refuses a line with a top-level key twice, and reads nested and escaped keys right', () => {
    expect(() => parseLogLine('{"level":"info","name":"wpgw","uid":"u","name":"web-0"}')).toThrow(/"name" twice/);
    expect(parseLogLine('{"a":{"name":1,"b":[{"name":2}]},"name":"x","q":"\\"name\\":"}')).toEqual({
      a: { name: 1, b: [{ name: 2 }] },
      name: 'x',
      q: '"name":',
    });
  });

  it('a line that logs an object name has one "name" key', () => {
    const { lines, sink } = collect();
    createLogger({ destination: sink }).info({ kind: 'Pod', namespace: 'apps', name: 'web-0' }, 'admission');
    expect(parseLogLine(lines[0]!)).toMatchObject({ level: 'info', name: 'web-0', msg: 'admission' });
  });
});
