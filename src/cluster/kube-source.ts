// ListWatchSource over the real API server: paginated raw-JSON list + client-node's Watch stream.
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import type { KubeRest } from './client.js';
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
}

export class KubeListWatchSource<T extends KubeObjectLike> implements ListWatchSource<T> {
  private readonly path: string;

  constructor(
    private readonly kc: KubeConfig,
    private readonly rest: KubeRest,
    private readonly info: KindInfo,
    private readonly opts: KubeSourceOptions = {},
  ) {
    this.path = collectionPath(info);
  }

  /**
   * One paginated list (cluster-wide, or of one namespace). Pages after the first are served from
   * the first page's snapshot by the API server; each page is slimmed (opts.transform) before the
   * next is fetched, so the full objects of one page at most are held at a time.
   */
  async list(opts: ListOptions<T> = {}): Promise<ListResult<T>> {
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
