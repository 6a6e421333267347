// An in-memory API server for the cache tests: objects by kind, label-selected sources, 404/403
// kinds, watch events with increasing resourceVersions, and a record of every list (and its namespace);
// runCache/startCache put the production ClusterCache (Reflectors, stores, reads) on top of it.
import { afterEach } from 'vitest';
import { ClusterCache, type ResourceKey } from '../../../src/cluster/cache.js';
import type { KindInfo } from '../../../src/cluster/kinds.js';
import type { ListOptions, ListResult, ListWatchSource, WatchHandle } from '../../../src/cluster/reflector.js';
import type { KubeObjectLike } from '../../../src/cluster/store.js';

export type Obj = KubeObjectLike & Record<string, unknown>;

/** Objects by kind (+ label selector). A kind listed in `missing` answers 404 like an absent CRD. */
export class World {
  objects: Obj[] = [];
  missing = new Set<string>();
  forbidden = new Set<string>();
  watchers: Array<{ kind: string; onEvent: (t: string, o: unknown) => void }> = [];
  /** Every list served: kind and namespace ("" = cluster-wide). */
  lists: Array<{ kind: string; namespace: string }> = [];
  rv = 1;

  source(info: KindInfo, labelSelector: string | undefined): ListWatchSource<KubeObjectLike> {
    const matches = (o: Obj): boolean => {
      if (o.kind !== info.kind) return false;
      if (!labelSelector) return true;
      const [k, v] = labelSelector.split('=');
      const val = o.metadata?.labels?.[k!];
      return v === undefined ? val !== undefined : val === v;
    };
    return {
      list: async (opts: ListOptions<KubeObjectLike> = {}): Promise<ListResult<KubeObjectLike>> => {
        this.lists.push({ kind: info.kind, namespace: opts.namespace ?? '' });
        if (this.missing.has(info.kind)) throw Object.assign(new Error('404'), { code: 404 });
        if (this.forbidden.has(info.kind)) throw Object.assign(new Error('403'), { code: 403 });
        const items = structuredClone(
          this.objects.filter((o) => matches(o) && (!opts.namespace || o.metadata?.namespace === opts.namespace)),
        );
        return { items, resourceVersion: String(this.rv) };
      },
      watch: async (_rv, onEvent): Promise<WatchHandle> => {
        const w = { kind: info.kind, onEvent: (t: string, o: unknown) => matches(o as Obj) && onEvent(t, o) };
        this.watchers.push(w);
        return { abort: () => (this.watchers = this.watchers.filter((x) => x !== w)) };
      },
    };
  }

  /** A watch event; ADDED/MODIFIED also change what later lists return. */
  emit(type: string, o: Obj): void {
    o.metadata!.resourceVersion = String(++this.rv);
    const same = (x: Obj) =>
      x.kind === o.kind && x.metadata?.namespace === o.metadata?.namespace && x.metadata?.name === o.metadata?.name;
    if (type === 'DELETED') this.objects = this.objects.filter((x) => !same(x));
    else this.objects = [...this.objects.filter((x) => !same(x)), structuredClone(o)];
    for (const w of this.watchers) if (w.kind === o.kind) w.onEvent(type, structuredClone(o));
  }
}

const caches: ClusterCache[] = [];
afterEach(async () => {
  await Promise.all(caches.splice(0).map((c) => c.stop()));
});

/** A started cache over `world` (stopped after the test); startCache also waits for its sync. */
export function runCache(world: World, resources: readonly ResourceKey[]): ClusterCache {
  const c = new ClusterCache({
    resources,
    sourceFactory: (info, sel) => world.source(info, sel),
    relistIntervalMs: 0,
    backoff: { initialMs: 5, maxMs: 20, jitter: 0 },
  });
  caches.push(c);
  c.start();
  return c;
}

export async function startCache(world: World, resources: readonly ResourceKey[]): Promise<ClusterCache> {
  const c = runCache(world, resources);
  await c.waitForSync();
  return c;
}
