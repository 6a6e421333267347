// A resilient list+watch cache for one resource. client-node's informer stops for good on any
// error other than 410 and never relists, and a silently stalled watch leaves the cache stale
// forever; this loop restarts with capped exponential backoff and relists periodically, emitting
// add/update/delete for whatever the relist shows changed (so missed events are repaired).
import type { Logger } from 'pino';
import { pino } from 'pino';
import { Backoff, type BackoffOptions } from './backoff.js';
import { errorMessage, errorStatus } from './client.js';
import { NamespacedStore, type KubeObjectLike } from './store.js';
import { RELIST_INTERVAL_MS } from '../defaults.js';

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

export interface WatchHandle {
  abort(): void;
}

export interface ListOptions<T> {
  /** One namespace instead of the whole cluster (a backfill when a namespace starts to matter). */
  namespace?: string;
  /** Applied to every item as early as the source can (per page), dropping those it maps to undefined. */
  transform?: (obj: T) => T | undefined;
}

/** Where a reflector gets its data: the API server (kube-source.ts) or a fake in tests. */
export interface ListWatchSource<T> {
  list(opts?: ListOptions<T>): Promise<ListResult<T>>;
  /** Watch from `resourceVersion`; `onDone` is called once when the stream ends for any reason. */
  watch(
    resourceVersion: string,
    onEvent: (type: string, obj: unknown) => void,
    onDone: (err?: unknown) => void,
  ): Promise<WatchHandle>;
}

export type ChangeType = 'add' | 'update' | 'delete';
export type ChangeHandler<T> = (type: ChangeType, obj: T, old: T | undefined) => void;

export interface ReflectorOptions<T = KubeObjectLike> {
  /** For logs and stats, e.g. "pods(wpgw.io/managed)". */
  name: string;
  /** Full relist period; 0 disables. Default 5 minutes. */
  relistIntervalMs?: number;
  backoff?: Partial<BackoffOptions>;
  logger?: Logger;
  /** Explains a 404 on list, e.g. "the Istio CRDs are not installed". */
  missingHint?: string;
  /** The resource is an optional integration: a 404 is logged at info, not error. */
  optional?: boolean;
  /** A watch that ends sooner than this without any event counts as a failure (avoids hot loops). */
  minWatchMs?: number;
  /**
   * What the store keeps of an object (slim.ts), or undefined to keep nothing of it (a namespace
   * wpgw does not work in). Applied to list items and watch events; must be idempotent.
   */
  transform?: (obj: T) => T | undefined;
}

export interface ReflectorStats {
  name: string;
  synced: boolean;
  /** The resource does not exist on the server (e.g. CRD not installed). */
  missing: boolean;
  objects: number;
  events: Record<ChangeType, number>;
  lists: number;
  watches: number;
  errors: number;
  lastError?: string;
}

type WatchOutcome =
  | { kind: 'closed'; quick: boolean }
  | { kind: 'expired' }
  | { kind: 'notFound' }
  | { kind: 'error'; err: unknown }
  | { kind: 'interrupted' };

function key(obj: KubeObjectLike): string {
  return `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}

/**
 * Is `rv` newer than `old`? resourceVersions are comparable integers on current API servers
 * (KEP-5504); where either is not one, any difference counts as newer (the old behaviour).
 */
export function isNewerVersion(rv: string | undefined, old: string | undefined): boolean {
  if (rv === old) return false;
  if (!rv || !old || !/^[0-9]+$/.test(rv) || !/^[0-9]+$/.test(old)) return true;
  return rv.length !== old.length ? rv.length > old.length : rv > old;
}

function isTimeout(err: unknown): boolean {
  return !!err && typeof err === 'object' && (err as { name?: unknown }).name === 'TimeoutError';
}

export class Reflector<T extends KubeObjectLike> {
  readonly store = new NamespacedStore<T>();
  private readonly handlers: ChangeHandler<T>[] = [];
  private readonly backoff: Backoff;
  private readonly maxBackoffMs: number;
  private readonly relistIntervalMs: number;
  private readonly minWatchMs: number;
  private readonly log: Logger;

  private rv = '';
  private running = false;
  private stopped = false;
  private relistRequested = false;
  private lastListAt = 0;
  private loopPromise: Promise<void> | undefined;
  private interrupt: (() => void) | undefined;
  private isSynced = false;
  private syncWaiters: Array<() => void> = [];
  /** Namespaces being backfilled: name -> resourceVersion of deletions seen meanwhile. */
  private readonly backfills = new Map<string, Map<string, string>>();
  /** Orders lists and backfills: a relist must not drop what a backfill begun after it found. */
  private epoch = 0;
  private readonly backfilledAt = new Map<string, number>();
  private counters: Omit<ReflectorStats, 'name' | 'synced' | 'objects'> = {
    missing: false,
    events: { add: 0, update: 0, delete: 0 },
    lists: 0,
    watches: 0,
    errors: 0,
  };

  constructor(
    private readonly source: ListWatchSource<T>,
    private readonly opts: ReflectorOptions<T>,
  ) {
    this.maxBackoffMs = opts.backoff?.maxMs ?? 30_000;
    this.backoff = new Backoff({ initialMs: 1000, jitter: 0.2, ...opts.backoff, maxMs: this.maxBackoffMs });
    this.relistIntervalMs = opts.relistIntervalMs ?? RELIST_INTERVAL_MS;
    this.minWatchMs = opts.minWatchMs ?? 1000;
    this.log = (opts.logger ?? pino({ level: 'silent' })).child({ resource: opts.name });
  }

  get name(): string {
    return this.opts.name;
  }

  on(handler: ChangeHandler<T>): void {
    this.handlers.push(handler);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopped = false;
    this.loopPromise = this.loop().finally(() => {
      this.running = false;
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.interrupt?.();
    await this.loopPromise;
  }

  /** Relist now instead of at the next period (e.g. after leadership changes). */
  relistNow(): void {
    this.relistRequested = true;
    this.interrupt?.();
  }

  /** True once the first list has landed (or the resource was found missing, i.e. empty). */
  synced(): boolean {
    return this.isSynced;
  }

  waitForSync(): Promise<void> {
    if (this.isSynced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  missing(): boolean {
    return this.counters.missing;
  }

  stats(): ReflectorStats {
    return {
      name: this.opts.name,
      synced: this.isSynced,
      objects: this.store.size,
      ...this.counters,
      events: { ...this.counters.events },
    };
  }

  private async loop(): Promise<void> {
    let needList = true;
    while (!this.stopped) {
      if (needList || this.relistRequested) {
        this.relistRequested = false;
        const r = await this.relist();
        if (this.stopped) break;
        if (r === 'error') {
          await this.sleep(this.backoff.next());
          continue;
        }
        if (r === 'missing') {
          // A CRD may be installed later: keep looking, slowly.
          await this.sleep(this.maxBackoffMs);
          continue;
        }
        needList = false;
      }
      const out = await this.watchOnce();
      if (this.stopped) break;
      switch (out.kind) {
        case 'closed':
          // Normal end (server timeout, client inactivity timeout): resume from the last version.
          if (out.quick) await this.sleep(this.backoff.next());
          break;
        case 'expired':
        case 'notFound':
          needList = true;
          break;
        case 'error':
          this.recordError('watch', out.err);
          await this.sleep(this.backoff.next());
          break;
        case 'interrupted':
          break;
      }
    }
  }

  private async relist(): Promise<'ok' | 'missing' | 'error'> {
    this.counters.lists++;
    const epoch = ++this.epoch;
    let res: ListResult<T>;
    try {
      res = await this.source.list({ transform: this.opts.transform });
    } catch (err) {
      if (this.stopped) return 'error';
      // An optional integration the RBAC does not grant (manifests older than the binary) must
      // not keep the process from becoming ready: treat it like an absent CRD, and say why.
      const status = errorStatus(err);
      if (status === 404 || (status === 403 && this.opts.optional)) {
        this.markMissing(
          status === 403 ? 'forbidden (403): grant list and watch on it (manifests/rbac-*.yaml)' : undefined,
        );
        return 'missing';
      }
      this.recordError('list', err);
      return 'error';
    }
    if (this.stopped) return 'ok';
    if (this.counters.missing) {
      this.counters.missing = false;
      this.log.info('resource is now served by the API server');
    }
    this.replace(this.kept(res.items), epoch);
    for (const [ns, at] of this.backfilledAt) if (at < epoch) this.backfilledAt.delete(ns);
    this.rv = res.resourceVersion;
    this.lastListAt = Date.now();
    this.backoff.reset();
    this.markSynced();
    return 'ok';
  }

  private kept(items: T[]): T[] {
    const t = this.opts.transform;
    if (!t) return items;
    const out: T[] = [];
    for (const item of items) {
      const k = t(item);
      if (k) out.push(k);
    }
    return out;
  }

  /**
   * List one namespace and merge it in (newer resourceVersion wins; deletions the watch reported
   * meanwhile win over the list): its objects were dropped while it did not matter. The running
   * watch delivers what changes after. Retries with backoff; resolves once merged or stopped.
   */
  async backfill(namespace: string): Promise<void> {
    const tombstones = new Map<string, string>();
    this.backfills.set(namespace, tombstones);
    this.backfilledAt.set(namespace, ++this.epoch);
    const retry = new Backoff({ initialMs: 200, maxMs: this.maxBackoffMs, jitter: 0.2 });
    try {
      for (let attempt = 0; !this.stopped; attempt++) {
        try {
          const res = await this.source.list({ namespace, transform: this.opts.transform });
          if (this.stopped) return;
          this.counters.lists++;
          for (const item of this.kept(res.items)) {
            if ((item.metadata?.namespace ?? '') !== namespace) continue;
            const name = item.metadata?.name ?? '';
            const rv = item.metadata?.resourceVersion;
            const deletedAt = tombstones.get(name);
            if (deletedAt !== undefined && !isNewerVersion(rv, deletedAt)) continue;
            const old = this.store.get(namespace, name);
            if (old && !isNewerVersion(rv, old.metadata?.resourceVersion)) continue;
            this.store.set(item);
            this.emit(old ? 'update' : 'add', item, old);
          }
          return;
        } catch (err) {
          const status = errorStatus(err);
          if (status === 404 || this.counters.missing) return; // the kind is not served: nothing to fill
          this.recordError(`backfill of namespace ${namespace}`, err);
          await new Promise((r) => setTimeout(r, retry.next()));
        }
      }
    } finally {
      if (this.backfills.get(namespace) === tombstones) this.backfills.delete(namespace);
    }
  }

  private markMissing(why?: string): void {
    if (!this.counters.missing) {
      this.counters.missing = true;
      (this.opts.optional && !why ? this.log.info.bind(this.log) : this.log.error.bind(this.log))(
        { hint: this.opts.missingHint },
        `resource ${this.opts.name} is ${why ?? 'not served by the API server (404)'}; treating it as empty and re-checking every ${Math.round(this.maxBackoffMs / 1000)}s`,
      );
    }
    this.replace([]);
    this.rv = '';
    this.markSynced();
  }

  private markSynced(): void {
    if (this.isSynced) return;
    this.isSynced = true;
    const waiters = this.syncWaiters;
    this.syncWaiters = [];
    for (const w of waiters) w();
  }

  private recordError(phase: string, err: unknown): void {
    this.counters.errors++;
    this.counters.lastError = `${phase}: ${errorMessage(err)}`;
    const code = errorStatus(err);
    const hint = code === 401 || code === 403 ? 'check the RBAC of the service account' : undefined;
    this.log.warn({ err: errorMessage(err), code, hint }, `${phase} failed; retrying with backoff`);
  }

  /**
   * Replace the whole store with a fresh list, emitting only the differences. Objects of a
   * namespace whose backfill began after this list (`epoch`) stay: the list may have been
   * filtered before that namespace mattered.
   */
  private replace(items: T[], epoch = Number.POSITIVE_INFINITY): void {
    const seen = new Set<string>();
    const filledSince = (o: T): boolean => (this.backfilledAt.get(o.metadata?.namespace ?? '') ?? 0) > epoch;
    for (const item of items) {
      seen.add(key(item));
      const old = this.store.get(item.metadata?.namespace, item.metadata?.name ?? '');
      const rv = item.metadata?.resourceVersion;
      if (!old) {
        this.store.set(item);
        this.emit('add', item, undefined);
      } else if (
        filledSince(old) ? isNewerVersion(rv, old.metadata?.resourceVersion) : rv !== old.metadata?.resourceVersion
      ) {
        this.store.set(item);
        this.emit('update', item, old);
      }
    }
    for (const old of this.store.all()) {
      if (!seen.has(key(old)) && !filledSince(old)) {
        this.store.delete(old.metadata?.namespace, old.metadata?.name ?? '');
        this.emit('delete', old, old);
      }
    }
  }

  private applyWatchEvent(type: string, raw: T): void {
    const ns = raw.metadata?.namespace;
    const name = raw.metadata?.name ?? '';
    const rv = raw.metadata?.resourceVersion;
    if (type === 'ADDED' || type === 'MODIFIED') {
      const obj = this.opts.transform ? this.opts.transform(raw) : raw;
      const old = this.store.get(ns, name);
      if (!obj) {
        // Left the cached view (e.g. lost the label that kept it): gone, as far as readers know.
        if (old) {
          this.store.delete(ns, name);
          this.emit('delete', old, old);
        }
      } else if (!old || isNewerVersion(rv, old.metadata?.resourceVersion)) {
        this.store.set(obj);
        this.emit(old ? 'update' : 'add', obj, old);
      }
    } else if (type === 'DELETED') {
      if (rv) this.backfills.get(ns ?? '')?.set(name, rv);
      const old = this.store.delete(ns, name);
      if (old) this.emit('delete', this.opts.transform ? (this.opts.transform(raw) ?? old) : raw, old);
    }
    if (rv) this.rv = rv;
  }

  private emit(type: ChangeType, obj: T, old: T | undefined): void {
    this.counters.events[type]++;
    for (const h of this.handlers) {
      try {
        h(type, obj, old);
      } catch (err) {
        this.log.error({ err: errorMessage(err) }, 'cache event handler failed');
      }
    }
  }

  private watchOnce(): Promise<WatchOutcome> {
    this.counters.watches++;
    return new Promise<WatchOutcome>((resolve) => {
      let settled = false;
      let handle: WatchHandle | undefined;
      let events = 0;
      let expired = false;
      let streamErr: unknown;
      const startedAt = Date.now();
      let timer: ReturnType<typeof setTimeout> | undefined;

      const finish = (o: WatchOutcome): void => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        this.interrupt = undefined;
        handle?.abort();
        resolve(o);
      };
      this.interrupt = () => finish({ kind: 'interrupted' });
      if (this.relistIntervalMs > 0) {
        const due = Math.max(0, this.lastListAt + this.relistIntervalMs - Date.now());
        timer = setTimeout(() => {
          this.relistRequested = true;
          finish({ kind: 'interrupted' });
        }, due);
      }

      const onEvent = (type: string, raw: unknown): void => {
        if (settled) return;
        events++;
        this.backoff.reset();
        if (type === 'ERROR') {
          const status = (raw ?? {}) as { code?: number; message?: string };
          if (status.code === 410) expired = true;
          else streamErr = Object.assign(new Error(status.message ?? 'watch error event'), { code: status.code });
          return;
        }
        if (type === 'BOOKMARK') {
          const rv = (raw as KubeObjectLike | undefined)?.metadata?.resourceVersion;
          if (rv) this.rv = rv;
          return;
        }
        this.applyWatchEvent(type, raw as T);
      };
      const onDone = (err?: unknown): void => {
        if (settled) return;
        if (expired || errorStatus(err) === 410) return finish({ kind: 'expired' });
        if (errorStatus(err) === 404 || errorStatus(streamErr) === 404) return finish({ kind: 'notFound' });
        const e = err && !isTimeout(err) ? err : streamErr;
        if (e) return finish({ kind: 'error', err: e });
        finish({ kind: 'closed', quick: events === 0 && Date.now() - startedAt < this.minWatchMs });
      };
      this.source.watch(this.rv, onEvent, onDone).then(
        (h) => {
          handle = h;
          if (settled) h.abort();
        },
        (err: unknown) => onDone(err ?? new Error('watch failed to start')),
      );
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.interrupt = undefined;
        resolve();
      }, ms);
      this.interrupt = () => {
        clearTimeout(t);
        this.interrupt = undefined;
        resolve();
      };
    });
  }
}
