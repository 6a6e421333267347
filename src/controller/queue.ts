// A client-go style work queue: a key is queued at most once, never processed by two workers at
// once (re-adds during processing run again afterwards), and failures retry with per-key
// exponential backoff.
import { backoffDelay } from '../cluster/backoff.js';
import { RETRY_DELAYS } from '../defaults.js';

export interface WorkQueueOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Called whenever the number of ready keys changes (for the queue depth gauge). */
  onDepth?: (depth: number) => void;
}

export class WorkQueue<K = string> {
  private readonly ready: K[] = [];
  private readonly dirty = new Set<K>();
  private readonly processing = new Set<K>();
  private readonly failures = new Map<K, number>();
  private readonly delayed = new Map<K, { at: number; timer: ReturnType<typeof setTimeout> }>();
  private readonly getters: Array<(k: K | undefined) => void> = [];
  private readonly idleWaiters: Array<() => void> = [];
  private closed = false;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;

  constructor(private readonly opts: WorkQueueOptions = {}) {
    this.baseDelayMs = opts.baseDelayMs ?? RETRY_DELAYS.baseMs;
    this.maxDelayMs = opts.maxDelayMs ?? RETRY_DELAYS.maxMs;
  }

  add(key: K): void {
    if (this.closed || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return; // done() re-queues it
    this.dispatch(key);
  }

  /** Hands a dirty key to a waiting worker, or queues it. */
  private dispatch(key: K): void {
    const getter = this.getters.shift();
    if (getter) {
      this.take(key);
      getter(key);
    } else {
      this.ready.push(key);
      this.depthChanged();
    }
  }

  /** Add after a delay; an earlier pending delay for the same key wins. */
  addAfter(key: K, delayMs: number): void {
    if (this.closed) return;
    if (delayMs <= 0) return this.add(key);
    const at = Date.now() + delayMs;
    const pending = this.delayed.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref?.();
    this.delayed.set(key, { at, timer });
  }

  /**
   * Moves a pending run of `key` to no sooner than `delayMs` from now: a delayed add due earlier, or
   * a re-add made while the key was being processed (which done() would otherwise run at once).
   * Call it while processing `key`, before done().
   */
  postpone(key: K, delayMs: number): void {
    if (this.closed) return;
    const at = Date.now() + delayMs;
    const pending = this.delayed.get(key);
    const rerun = this.processing.has(key) && this.dirty.has(key);
    if (!rerun && (!pending || pending.at >= at)) return;
    if (rerun) this.dirty.delete(key);
    if (pending) {
      clearTimeout(pending.timer);
      this.delayed.delete(key);
    }
    this.addAfter(key, delayMs);
  }

  /** Retry later with exponential backoff; returns the delay chosen. */
  addRateLimited(key: K): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = backoffDelay(n, this.baseDelayMs, this.maxDelayMs);
    this.addAfter(key, delay);
    return delay;
  }

  /** Reset the backoff of a key after it succeeded. */
  forget(key: K): void {
    this.failures.delete(key);
  }

  retries(key: K): number {
    return this.failures.get(key) ?? 0;
  }

  /** Next key to process, or undefined once shut down. Call done(key) when finished. */
  get(): Promise<K | undefined> {
    const key = this.ready.shift();
    if (key !== undefined) {
      this.take(key);
      this.depthChanged();
      return Promise.resolve(key);
    }
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.getters.push(resolve));
  }

  done(key: K): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.closed) this.dispatch(key);
    this.checkIdle();
  }

  /** Keys ready to be processed. */
  len(): number {
    return this.ready.length;
  }

  stats(): { ready: number; processing: number; delayed: number } {
    return { ready: this.ready.length, processing: this.processing.size, delayed: this.delayed.size };
  }

  /** Nothing ready and nothing in flight (delayed retries may be pending). */
  isIdle(): boolean {
    return this.ready.length === 0 && this.processing.size === 0;
  }

  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  shutdown(): void {
    this.closed = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    this.ready.length = 0;
    this.dirty.clear();
    for (const g of this.getters.splice(0)) g(undefined);
    this.depthChanged();
    this.checkIdle();
  }

  get isShutDown(): boolean {
    return this.closed;
  }

  private take(key: K): void {
    this.dirty.delete(key);
    this.processing.add(key);
  }

  private depthChanged(): void {
    this.opts.onDepth?.(this.ready.length);
  }

  private checkIdle(): void {
    if (!this.isIdle()) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
