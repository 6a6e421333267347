// ListWatchSource over the real API server: streaming or paginated raw-JSON lists + client-node's Watch stream.
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { errorStatus, type KubeRest } from './client.js';
import { collectionPath, type KindInfo } from './kinds.js';
import type { ListOptions, ListResult, ListWatchSource, WatchHandle } from './reflector.js';
import type { KubeObjectLike } from './store.js';

interface ListBody<T> {
  items?: T[];
  metadata?: { resourceVersion?: string; continue?: string };
}

export interface KubeSourceOptions {
  labelSelector?: string;
  /** Page size for lists, so huge clusters don't produce one giant response. */
  pageSize?: number;
  /** Use streaming lists (watch with sendInitialEvents) where the server offers them. Default true. */
  streamingLists?: boolean;
}

/** The bookmark that ends a streaming list's initial events (KEP-3157). */
const INITIAL_EVENTS_END = 'k8s.io/initial-events-end';
/** Server-side end of a streaming list's watch. */
const STREAM_TIMEOUT_S = 600;
/** Streams cut short in a row before one list is paged instead (a proxy that always cuts them). */
const MAX_INTERRUPTED = 3;

export class KubeListWatchSource<T extends KubeObjectLike> implements ListWatchSource<T> {
  private readonly path: string;
  /** Cleared when the server refuses a streaming list (WatchList disabled, or too old). */
  private streaming: boolean;
  /** Streaming lists cut short in a row (see streamList). */
  private interrupted = 0;

  constructor(
    private readonly kc: KubeConfig,
    private readonly rest: KubeRest,
    private readonly info: KindInfo,
    private readonly opts: KubeSourceOptions = {},
  ) {
    this.path = collectionPath(info);
    this.streaming = opts.streamingLists ?? true;
  }

  async list(opts: ListOptions<T> = {}): Promise<ListResult<T>> {
    // One namespace's list (a backfill, when a namespace starts to matter) is paged. A streaming
    // list is a watch that is aborted once its bookmark arrives, and HTTP/1.1 cannot reuse a
    // connection cut mid-response: each cost a TCP and TLS handshake on both sides and a
    // connection's buffers, and opting 50 namespaces in at once had ~430 of them open from the
    // webhook (+46 MiB, bench/README.md). A namespace's page is small; paged GETs share the pool.
    if (opts.namespace) return this.pagedList(opts);
    if (this.streaming && this.interrupted >= MAX_INTERRUPTED) {
      this.interrupted = 0;
      return this.pagedList(opts); // this once; the next list streams again
    }
    if (this.streaming) {
      try {
        const res = await this.streamList(opts);
        this.interrupted = 0;
        return res;
      } catch (err) {
        if (err instanceof StreamingListInterrupted) {
          this.interrupted++;
          throw err; // the reflector retries with backoff
        }
        const status = errorStatus(err);
        // 400/422: the server does not accept sendInitialEvents. No status: it ignored it and
        // never sent the closing bookmark (the watch timed out). Either way, paginate from now on.
        if (status !== undefined && status !== 400 && status !== 422) throw err;
        if (status === undefined && !(err instanceof StreamingListUnsupported)) throw err;
        this.streaming = false;
      }
    }
    return this.pagedList(opts);
  }

  /**
   * A streaming list of the whole cluster: one watch that first sends every object as an event, then a bookmark.
   * Objects arrive one at a time and are slimmed as they come, so no page of full objects (and no
   * multi-MiB response buffer) is ever held; the API server serves it from its watch cache.
   */
  private async streamList(opts: ListOptions<T>): Promise<ListResult<T>> {
    const items = new Map<string, T>();
    return new Promise<ListResult<T>>((resolve, reject) => {
      let settled = false;
      let events = 0;
      let abort: (() => void) | undefined;
      const finish = (f: () => void): void => {
        if (settled) return;
        settled = true;
        abort?.();
        f();
      };
      const onEvent = (type: string, raw: unknown): void => {
        events++;
        const obj = raw as T & { code?: number; message?: string };
        if (type === 'ERROR')
          return finish(() =>
            reject(Object.assign(new Error(obj.message ?? 'streaming list error'), { code: obj.code })),
          );
        if (type === 'BOOKMARK') {
          if (obj.metadata?.annotations?.[INITIAL_EVENTS_END] === 'true') {
            finish(() => resolve({ items: [...items.values()], resourceVersion: obj.metadata?.resourceVersion ?? '' }));
          }
          return;
        }
        obj.apiVersion ??= this.info.apiVersion;
        obj.kind ??= this.info.kind;
        const key = `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
        const kept = type === 'DELETED' ? undefined : opts.transform ? opts.transform(obj) : obj;
        if (kept) items.set(key, kept);
        else items.delete(key);
      };
      const started = Date.now();
      const onDone = (err?: unknown): void => {
        // Ended without the bookmark. A server that ignored sendInitialEvents serves a plain watch,
        // which stays open until its timeout. One that ends sooner was cut: the API server closes
        // a watcher that falls behind its live events ("Forcing ... watcher close due to
        // unresponsiveness"), which a busy start-up in a busy cluster meets. Paging from then on
        // would read every page of full objects from etcd for the life of the process; retry.
        if (errorStatus(err) !== undefined) return finish(() => reject(err));
        const timedOut =
          (err as { name?: unknown } | undefined)?.name === 'TimeoutError' ||
          Date.now() - started >= (STREAM_TIMEOUT_S - 5) * 1000;
        if (timedOut) {
          return finish(() => reject(new StreamingListUnsupported(err)));
        }
        finish(() => reject(new StreamingListInterrupted(events, err)));
      };
      new Watch(this.kc)
        .watch(
          this.path,
          {
            sendInitialEvents: true,
            resourceVersionMatch: 'NotOlderThan',
            allowWatchBookmarks: true,
            labelSelector: this.opts.labelSelector,
            timeoutSeconds: STREAM_TIMEOUT_S,
          },
          onEvent,
          onDone,
        )
        .then(
          (ac) => {
            abort = () => ac.abort();
            if (settled) ac.abort();
          },
          (err: unknown) => onDone(err),
        );
    });
  }

  /**
   * One paginated list (cluster-wide, or of one namespace). Pages after the first are served from
   * the first page's snapshot by the API server; each page is slimmed (opts.transform) before the
   * next is fetched, so the full objects of one page at most are held at a time.
   */
  private async pagedList(opts: ListOptions<T>): Promise<ListResult<T>> {
    const items: T[] = [];
    let cont: string | undefined;
    let rv = '';
    const path = opts.namespace ? collectionPath(this.info, opts.namespace) : this.path;
    do {
      const page = await this.rest.request<ListBody<T>>('GET', path, {
        query: { labelSelector: this.opts.labelSelector, limit: this.opts.pageSize ?? 500, continue: cont },
      });
      for (const item of page.items ?? []) {
        // List items carry no TypeMeta; watch events do. Make both look the same.
        item.apiVersion ??= this.info.apiVersion;
        item.kind ??= this.info.kind;
        const kept = opts.transform ? opts.transform(item) : item;
        if (kept) items.push(kept);
      }
      rv = page.metadata?.resourceVersion ?? rv;
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return { items, resourceVersion: rv };
  }

  async watch(
    resourceVersion: string,
    onEvent: (type: string, obj: unknown) => void,
    onDone: (err?: unknown) => void,
  ): Promise<WatchHandle> {
    const ac = await new Watch(this.kc).watch(
      this.path,
      {
        resourceVersion: resourceVersion || undefined,
        allowWatchBookmarks: true,
        labelSelector: this.opts.labelSelector,
        // Server-side end of the watch; the loop resumes from the last resourceVersion.
        timeoutSeconds: 300 + Math.floor(Math.random() * 300),
      },
      onEvent,
      onDone,
    );
    return { abort: () => ac.abort() };
  }
}

/** A streaming list that ended without its closing bookmark: the server ignored sendInitialEvents. */
class StreamingListUnsupported extends Error {
  constructor(cause: unknown) {
    super(`streaming list ended before its ${INITIAL_EVENTS_END} bookmark`, { cause });
  }
}

/** A streaming list the server (or the network) ended early, before its closing bookmark: retried. */
export class StreamingListInterrupted extends Error {
  constructor(events: number, cause: unknown) {
    super(`streaming list cut short after ${events} events, before its ${INITIAL_EVENTS_END} bookmark; retrying`, {
      cause,
    });
  }
}
