// The logger's stdout batching (src/telemetry/line-batcher.ts): lines arrive whole, in order, in
// few writes, through partial writes and a descriptor that refuses writes for a while.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LineBatcher } from '../../src/telemetry/line-batcher.js';
import { droppedLogLine, isoTimestamp } from '../../src/telemetry/logger.js';
import { parseLogLine } from './webhook-helpers.js';

const line = (i: number): string => `{"level":"info","i":${i},"msg":"admission ü"}\n`;

/** A descriptor stand-in: records what it takes; `refuse(n)` makes the next n calls fail. */
function sink(opts: { maxPerCall?: number } = {}) {
  const chunks: Buffer[] = [];
  let refusals = 0;
  let error = 'EAGAIN';
  return {
    calls: 0,
    chunks,
    text: () => Buffer.concat(chunks).toString('utf8'),
    refuse(n: number, code = 'EAGAIN') {
      refusals = n;
      error = code;
    },
    write(this: { calls: number }, _fd: number, buf: Buffer, offset: number, length: number): number {
      this.calls++;
      if (refusals > 0) {
        refusals--;
        throw Object.assign(new Error(error), { code: error });
      }
      const n = Math.min(length, opts.maxPerCall ?? length);
      chunks.push(Buffer.from(buf.subarray(offset, offset + n)));
      return n;
    },
  };
}

function batcher(s: ReturnType<typeof sink>, batchChars = 200, maxPendingBytes = 1 << 20): LineBatcher {
  return new LineBatcher({
    fd: 99,
    batchChars,
    maxPendingBytes,
    write: s.write.bind(s),
    droppedLine: (bytes) => `DROPPED ${bytes}\n`,
  });
}

describe('LineBatcher', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('holds lines until a batch is full, then writes them in one call, in order', () => {
    const s = sink();
    const b = batcher(s, 200);
    const lines = Array.from({ length: 20 }, (_, i) => line(i));
    let written = 0;
    for (const l of lines) {
      b.write(l);
      written += l.length;
      if (written < 200) expect(s.calls).toBe(0);
    }
    expect(s.calls).toBeGreaterThan(0);
    expect(s.calls).toBeLessThanOrEqual(Math.ceil(lines.join('').length / 200));
    b.flushSync();
    expect(s.text()).toBe(lines.join(''));
  });

  it('writes to a real file descriptor', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wpgw-lines-'));
    dirs.push(dir);
    const file = join(dir, 'out.log');
    const fd = openSync(file, 'w');
    const b = new LineBatcher({ fd, batchChars: 4096, maxPendingBytes: 1 << 20, droppedLine: (n) => `DROPPED ${n}\n` });
    const lines = Array.from({ length: 500 }, (_, i) => line(i));
    for (const l of lines) b.write(l);
    b.flushSync();
    closeSync(fd);
    expect(readFileSync(file, 'utf8')).toBe(lines.join(''));
  });

  it('finishes partial writes', () => {
    const s = sink({ maxPerCall: 7 });
    const b = batcher(s, 100);
    const lines = Array.from({ length: 30 }, (_, i) => line(i));
    for (const l of lines) b.write(l);
    b.flushSync();
    expect(s.text()).toBe(lines.join(''));
  });

  it('keeps what a refusing descriptor (EAGAIN) did not take and writes it first later', () => {
    const s = sink();
    const b = batcher(s, 100);
    s.refuse(3);
    const lines = Array.from({ length: 30 }, (_, i) => line(i));
    for (const l of lines) b.write(l);
    b.flushSync();
    expect(s.text()).toBe(lines.join(''));
    expect(b.droppedBytes).toBe(0);
  });

  it('drops the oldest whole lines beyond maxPendingBytes and says how many bytes went', () => {
    const s = sink();
    const b = batcher(s, 1, 300);
    const lines = Array.from({ length: 40 }, (_, i) => line(i));
    s.refuse(1000);
    for (const l of lines) b.write(l);
    const total = Buffer.byteLength(lines.join(''));
    const dropped = b.droppedBytes;
    expect(dropped).toBeGreaterThan(total - 300 - line(0).length * 2);
    s.refuse(0);
    b.flushSync();
    b.flushSync();
    const out = s.text();
    const kept = out.slice(0, out.indexOf('DROPPED'));
    // What is left is the newest lines, whole, in order, and the note counts the rest.
    expect(lines.join('').endsWith(kept)).toBe(true);
    expect(kept.startsWith('{"level"')).toBe(true);
    expect(Buffer.byteLength(kept)).toBeLessThanOrEqual(300);
    expect(out.slice(out.indexOf('DROPPED'))).toBe(`DROPPED ${total - Buffer.byteLength(kept)}\n`);
    expect(b.droppedBytes).toBe(0);
  });

  it('survives a closed descriptor (EPIPE) without throwing', () => {
    const s = sink();
    const b = batcher(s, 10);
    s.refuse(1, 'EPIPE');
    expect(() => b.write(line(1))).not.toThrow();
    expect(b.droppedBytes).toBe(Buffer.byteLength(line(1)));
    b.write(line(2));
    b.flushSync();
    expect(s.text()).toBe(`${line(2)}DROPPED ${Buffer.byteLength(line(1))}\n`);
  });

  it('keeps refused batches apart and in order while the descriptor stays full, dropping the oldest first', () => {
    const s = sink();
    const b = batcher(s, 100, 1000);
    s.refuse(1e6);
    const lines = Array.from({ length: 200 }, (_, i) => line(i));
    for (const l of lines) b.write(l);
    b.flushSync(); // still refused: the last lines join the queue too
    s.refuse(0);
    b.flushSync();
    b.flushSync();
    const out = s.text();
    const kept = out.slice(0, out.indexOf('DROPPED'));
    expect(kept.startsWith('{"level"')).toBe(true);
    expect(lines.join('').endsWith(kept)).toBe(true);
    expect(Buffer.byteLength(kept)).toBeLessThanOrEqual(1000);
    expect(Buffer.byteLength(kept)).toBeGreaterThan(1000 - 2 * line(0).length);
    expect(out.slice(out.indexOf('DROPPED'))).toBe(
      `DROPPED ${Buffer.byteLength(lines.join('')) - Buffer.byteLength(kept)}\n`,
    );
  });

  it("the logger's dropped-lines note is one of its own lines", () => {
    const note = droppedLogLine(
      1234,
      isoTimestamp(() => 1_795_000_000_123),
    );
    expect(note.endsWith('\n')).toBe(true);
    expect(parseLogLine(note.trimEnd())).toEqual({
      level: 'warn',
      time: '2026-11-18T11:06:40.123Z',
      msg: '1234 bytes of log lines were dropped: the log output did not take them',
    });
  });

  it('drainSync waits out a briefly full descriptor', () => {
    const s = sink();
    const b = batcher(s, 1 << 20);
    b.write(line(1));
    s.refuse(3);
    b.drainSync(5000);
    expect(s.text()).toBe(line(1));
  });
});
