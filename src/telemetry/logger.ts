// pino JSON logs: one object per line, ISO timestamps and level names (not numbers) so log
// pipelines can filter without a pino-specific mapping.

import { type DestinationStream, type Logger, pino } from 'pino';
import { LineBatcher } from './line-batcher.js';

export type { Logger };

export interface LoggerOptions {
  level?: string;
  /** Defaults to stdout; tests pass a stream to capture lines. */
  destination?: DestinationStream;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const options = {
    // No pino `name`: lines carry the object's `name` (the admission line, the controller's), and a
    // second "name" key made those lines ambiguous JSON (parsers keep one or the other, or refuse).
    level: opts.level ?? 'info',
    timestamp: isoTimestamp(),
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return pino(options, opts.destination ?? bufferedStdout());
}

/** Lines are written in batches of this many characters, or after FLUSH_MS, whichever comes first. */
const BATCH_CHARS = 4096;
const FLUSH_MS = 200;
/** What is kept while stdout refuses writes (a full pipe) before the oldest lines are dropped. */
const MAX_PENDING_BYTES = 8 * 1024 * 1024;
/** How long the exit waits for a full stdout to take the last lines. */
const EXIT_DRAIN_MS = 1000;

/**
 * stdout, written in batches: one write(2) per ~4 KiB instead of one per admission line (a
 * measurable share of a small admission's CPU, bench/README.md). A line waits at most 200 ms;
 * everything is flushed when the process exits (also after a fatal error). A SIGKILL can lose
 * the last 200 ms of lines.
 */
function bufferedStdout(): DestinationStream {
  const stamp = isoTimestamp();
  const out = new LineBatcher({
    fd: 1,
    batchChars: BATCH_CHARS,
    maxPendingBytes: MAX_PENDING_BYTES,
    droppedLine: (bytes) => droppedLogLine(bytes, stamp),
  });
  setInterval(() => out.flushSync(), FLUSH_MS).unref();
  process.once('exit', () => out.drainSync(EXIT_DRAIN_MS));
  return out;
}

/**
 * The line the batcher writes after it had to drop lines: the same shape as the logger's (level
 * label, time), written by the batcher itself because the logger cannot log from inside its own
 * destination.
 */
export function droppedLogLine(bytes: number, stamp: () => string): string {
  return `{"level":"warn"${stamp()},"msg":"${bytes} bytes of log lines were dropped: the log output did not take them"}\n`;
}

/**
 * pino's isoTime formats a Date per line; under admission load that was a tenth of the logging
 * cost. The text up to the second changes once a second, so it is formatted once and the
 * milliseconds appended: the same `"time":"2026-11-22T02:51:28.123Z"` as isoTime.
 */
export function isoTimestamp(clock: () => number = Date.now): () => string {
  let second = Number.NaN;
  let prefix = '';
  return () => {
    const now = clock();
    const s = Math.floor(now / 1000);
    if (s !== second) {
      second = s;
      prefix = new Date(s * 1000).toISOString().slice(0, -4); // "2026-11-22T02:51:28."
    }
    const ms = now - s * 1000;
    return `,"time":"${prefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z"`;
  };
}
