// An in-memory cluster behind the real ClusterCache: list/watch sources over plain objects (by kind
// and label selector), so tests drive the production Reflectors, stores and cache reads.
import { afterEach } from 'vitest';
import { ClusterCache, type ResourceKey } from '../../../src/cluster/cache.js';
import type { KindInfo } from '../../../src/cluster/kinds.js';
import type { ListResult, ListWatchSource, WatchHandle } from '../../../src/cluster/reflector.js';
import type { KubeObjectLike } from '../../../src/cluster/store.js';

export type Obj = KubeObjectLike & Record<string, unknown>;

/** Objects by kind (+ label selector). A kind listed in `missing` answers 404 like an absent CRD. */
export class World {
  objects: Obj[] = [];
  missing = new Set<string>();
  forbidden = new Set<string>();
  watchers: Array<{ kind: string; onEvent: (t: string, o: unknown) => void }> = [];
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
      list: async (): Promise<ListResult<KubeObjectLike>> => {
        if (this.missing.has(info.kind)) throw Object.assign(new Error('404'), { code: 404 });
        if (this.forbidden.has(info.kind)) throw Object.assign(new Error('403'), { code: 403 });
        return { items: structuredClone(this.objects.filter(matches)), resourceVersion: String(this.rv) };
      },
      watch: async (_rv, onEvent): Promise<WatchHandle> => {
        const w = { kind: info.kind, onEvent: (t: string, o: unknown) => matches(o as Obj) && onEvent(t, o) };
        this.watchers.push(w);
        return { abort: () => (this.watchers = this.watchers.filter((x) => x !== w)) };
      },
    };
  }

  emit(type: string, o: Obj): void {
    o.metadata!.resourceVersion = String(++this.rv);
    for (const w of this.watchers) if (w.kind === o.kind) w.onEvent(type, structuredClone(o));
  }
}

const caches: ClusterCache[] = [];
afterEach(async () => {
  await Promise.all(caches.splice(0).map((c) => c.stop()));
});

/** A started cache over `world` (stopped after the test); startCache also waits for its sync. */
export function runCache(world: World, resources: readonly ResourceKey[]): ClusterCache {
  const c = new ClusterCache({ resources, sourceFactory: (info, sel) => world.source(info, sel), relistIntervalMs: 0, backoff: { initialMs: 5, maxMs: 20, jitter: 0 } });
  caches.push(c);
  c.start();
  return c;
}

export async function startCache(world: World, resources: readonly ResourceKey[]): Promise<ClusterCache> {
  const c = runCache(world, resources);
  await c.waitForSync();
  return c;
}

