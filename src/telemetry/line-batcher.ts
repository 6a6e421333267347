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
  /** The line that reports dropped bytes once writes succeed again (in the logger's format). */
  droppedLine: (bytes: number) => string;
}

export class LineBatcher {
  readonly #fd: number;
  readonly #batchChars: number;
  readonly #maxPending: number;
  readonly #write: (fd: number, buffer: Buffer, offset: number, length: number) => number;
  readonly #droppedLine: (bytes: number) => string;
  #lines: string[] = [];
  #chars = 0;
  /**
   * Batches the descriptor has not taken yet (it refused them: EAGAIN), oldest first, each whole
   * lines except where a write stopped part-way into the first; written before anything newer. A
   * queue, not one growing Buffer: while stdout is stuck, each new batch is not a copy of all the
   * waiting ones.
   */
  readonly #pending: Buffer[] = [];
  #pendingBytes = 0;
  #dropped = 0;

  constructor(opts: LineBatcherOptions) {
    this.#fd = opts.fd;
    this.#batchChars = opts.batchChars;
    this.#maxPending = opts.maxPendingBytes;
    this.#write = opts.write ?? writeSync;
    this.#droppedLine = opts.droppedLine;
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
      this.#pending.push(batch);
      this.#pendingBytes += batch.length;
    }
    while (this.#pending.length > 0) {
      const buf = this.#pending[0]!;
      let offset = 0;
      try {
        while (offset < buf.length) offset += this.#write(this.#fd, buf, offset, buf.length - offset);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') {
          // The descriptor is gone (EPIPE, EBADF): nothing later can be written either.
          this.#dropped += this.#pendingBytes - offset;
          this.#pending.length = 0;
          this.#pendingBytes = 0;
          return;
        }
        this.#pending[0] = buf.subarray(offset);
        this.#pendingBytes -= offset;
        this.#dropOldestBeyondMax();
        return;
      }
      this.#pending.shift();
      this.#pendingBytes -= buf.length;
    }
    if (this.#dropped > 0) {
      const note = this.#droppedLine(this.#dropped);
      this.#dropped = 0;
      this.#lines.push(note);
      this.#chars += note.length;
    }
  }

  // Drops whole lines from the front (the oldest), so what is kept still starts with a line; the
  // first byte waiting may be mid-line (a partial write), and that line goes too.
  #dropOldestBeyondMax(): void {
    while (this.#pendingBytes > this.#maxPending) {
      const head = this.#pending[0]!;
      const over = this.#pendingBytes - this.#maxPending;
      const cut = over >= head.length ? head.length : head.indexOf(0x0a, over - 1) + 1 || head.length;
      this.#dropped += cut;
      this.#pendingBytes -= cut;
      if (cut === head.length) this.#pending.shift();
      else this.#pending[0] = head.subarray(cut);
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
    while (this.#pending.length > 0 && Date.now() < until) {
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
