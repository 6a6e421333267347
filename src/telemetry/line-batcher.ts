// Log lines to a file descriptor in batches: one write(2) per ~4 KiB instead of one per line.
//
// Why not pino.destination({ minLength }): sonic-boom measures the byte length of the text it holds
// on every write (Buffer.byteLength of a growing concatenation, which flattens it), so each line
// copies everything buffered before it: ~2.8 KB of garbage per admission line and half the cost of
// logging it (bench/README.md). Here a line is pushed on an array and the batch joined once.

import { writeSync } from 'node:fs';

export interface LineBatcherOptions {
  fd: number;
  /** Write once this many characters are waiting. */
  batchChars: number;
  /**
   * Bytes kept while the descriptor refuses writes (a full non-blocking pipe: EAGAIN). Beyond it
   * the oldest waiting bytes are dropped and counted, so a stuck log reader cannot grow the heap.
   */
  maxPendingBytes: number;
  /** fs.writeSync's shape; tests pass a descriptor that refuses or takes part of a write. */
  write?: (fd: number, buffer: Buffer, offset: number, length: number) => number;
  /** The line that reports dropped bytes once writes succeed again (default: a JSON warn line). */
  droppedLine?: (bytes: number) => string;
}

export class LineBatcher {
  readonly #fd: number;
  readonly #batchChars: number;
  readonly #maxPending: number;
  readonly #write: (fd: number, buffer: Buffer, offset: number, length: number) => number;
  readonly #droppedLine: (bytes: number) => string;
  #lines: string[] = [];
  #chars = 0;
  /** Bytes of earlier batches the descriptor has not taken yet; written before anything newer. */
  #pending: Buffer | undefined;
  #dropped = 0;

  constructor(opts: LineBatcherOptions) {
    this.#fd = opts.fd;
    this.#batchChars = opts.batchChars;
    this.#maxPending = opts.maxPendingBytes;
    this.#write = opts.write ?? writeSync;
    this.#droppedLine =
      opts.droppedLine ??
      ((bytes) =>
        `${JSON.stringify({ level: 'warn', time: new Date().toISOString(), msg: `${bytes} bytes of log lines were dropped: the log output did not take them` })}\n`);
  }

  /** pino's destination contract: take one serialized line (with its newline). */
  write(line: string): boolean {
    this.#lines.push(line);
    this.#chars += line.length;
    if (this.#chars >= this.#batchChars) this.flushSync();
    return true;
  }

  /** Bytes dropped so far because the descriptor refused them for too long. */
  get droppedBytes(): number {
    return this.#dropped;
  }

  /** Writes everything waiting now; what the descriptor refuses waits for the next call. */
  flushSync(): void {
    if (this.#lines.length > 0) {
      const batch = Buffer.from(this.#lines.length === 1 ? this.#lines[0]! : this.#lines.join(''), 'utf8');
      this.#lines = [];
      this.#chars = 0;
      this.#pending = this.#pending ? Buffer.concat([this.#pending, batch]) : batch;
    }
    const buf = this.#pending;
    if (!buf) return;
    let offset = 0;
    try {
      while (offset < buf.length) offset += this.#write(this.#fd, buf, offset, buf.length - offset);
      this.#pending = undefined;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EAGAIN') {
        // The descriptor is gone (EPIPE, EBADF): nothing later can be written either.
        this.#dropped += buf.length - offset;
        this.#pending = undefined;
        return;
      }
      const rest = buf.subarray(offset);
      if (rest.length <= this.#maxPending) {
        this.#pending = rest;
        return;
      }
      // Drop whole lines from the front (the oldest), so what is kept still starts with a line;
      // the first byte of rest may be mid-line (a partial write), and that line goes too.
      const cut = rest.indexOf(0x0a, rest.length - this.#maxPending - 1) + 1;
      const kept = cut === 0 ? rest.subarray(rest.length) : rest.subarray(cut);
      this.#dropped += rest.length - kept.length;
      this.#pending = kept.length > 0 ? kept : undefined;
      return;
    }
    if (this.#dropped > 0) {
      const note = this.#droppedLine(this.#dropped);
      this.#dropped = 0;
      this.#lines.push(note);
      this.#chars += note.length;
    }
  }

  /**
   * At exit: flush, and while the descriptor refuses writes, retry for up to `withinMs` (the last
   * lines before a fatal exit are the ones worth waiting for).
   */
  drainSync(withinMs: number): void {
    const until = Date.now() + withinMs;
    this.flushSync();
    const pause = new Int32Array(new SharedArrayBuffer(4));
    while (this.#pending && Date.now() < until) {
      Atomics.wait(pause, 0, 0, 10);
      this.flushSync();
    }
  }

  /** pino's logger.flush(cb). */
  flush(cb?: (err?: Error) => void): void {
    this.flushSync();
    cb?.();
  }
}
