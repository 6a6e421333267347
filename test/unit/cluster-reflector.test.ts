import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  Reflector,
  type ChangeType,
  type ListResult,
  type ListWatchSource,
  type WatchHandle,
} from '../../src/cluster/reflector.js';
import type { KubeObjectLike } from '../../src/cluster/store.js';

type Obj = KubeObjectLike & { data?: string };

function obj(name: string, rv: string, ns = 'shop', data?: string): Obj {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns, resourceVersion: rv }, data };
}

interface FakeWatch {
  rv: string;
  onEvent: (type: string, obj: unknown) => void;
  onDone: (err?: unknown) => void;
  aborted: boolean;
}

class FakeSource implements ListWatchSource<Obj> {
  items: Obj[] = [];
  rv = '10';
  lists = 0;
  listErrors: unknown[] = [];
  watches: FakeWatch[] = [];
  /** Make every new watch end at once (a server that keeps closing the stream). */
  closeImmediately = false;

  async list(): Promise<ListResult<Obj>> {
    this.lists++;
    const err = this.listErrors.shift();
    if (err) throw err;
    return { items: structuredClone(this.items), resourceVersion: this.rv };
  }

  async watch(rv: string, onEvent: FakeWatch['onEvent'], onDone: FakeWatch['onDone']): Promise<WatchHandle> {
    const w: FakeWatch = { rv, onEvent, onDone, aborted: false };
    this.watches.push(w);
    if (this.closeImmediately) queueMicrotask(() => onDone(null));
    return { abort: () => (w.aborted = true) };
  }

  get current(): FakeWatch {
    const w = this.watches.at(-1);
    if (!w || w.aborted) throw new Error('no live watch');
    return w;
  }
}

function httpError(code: number): Error {
  return Object.assign(new Error(`HTTP ${code}`), { code });
}

const running: Array<Reflector<Obj>> = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.stop()));
});

function start(src: FakeSource, opts: { relistIntervalMs?: number; minWatchMs?: number } = {}) {
  const events: Array<[ChangeType, string]> = [];
  const r = new Reflector<Obj>(src, {
    name: 'configmaps',
    relistIntervalMs: opts.relistIntervalMs ?? 0,
    backoff: { initialMs: 5, maxMs: 40, jitter: 0 },
    minWatchMs: opts.minWatchMs ?? 0,
  });
  r.on((type, o) => events.push([type, `${o.metadata?.name}@${o.metadata?.resourceVersion}`]));
  r.start();
  running.push(r);
  return { r, events };
}

describe('Reflector', () => {
  it('lists, reports synced, then watches from the list resourceVersion', async () => {
    const src = new FakeSource();
    src.items = [obj('a', '1'), obj('b', '2', 'other')];
    const { r, events } = start(src);
    expect(r.synced()).toBe(false);
    await r.waitForSync();
    expect(r.synced()).toBe(true);
    expect(events).toEqual([
      ['add', 'a@1'],
      ['add', 'b@2'],
    ]);
    expect(r.store.list('shop').map((o) => o.metadata?.name)).toEqual(['a']);
    expect(r.store.list('other').map((o) => o.metadata?.name)).toEqual(['b']);
    await vi.waitFor(() => expect(src.watches).toHaveLength(1));
    expect(src.current.rv).toBe('10');
  });

  it('applies watch events, ignores replays, and follows bookmarks', async () => {
    const src = new FakeSource();
    src.items = [obj('a', '1')];
    const { r, events } = start(src);
    await vi.waitFor(() => expect(src.watches).toHaveLength(1));
    const w = src.current;
    w.onEvent('ADDED', obj('b', '11'));
    w.onEvent('MODIFIED', obj('a', '12', 'shop', 'x'));
    w.onEvent('MODIFIED', obj('a', '12', 'shop', 'x')); // replay: same version
    w.onEvent('DELETED', obj('b', '13'));
    w.onEvent('DELETED', obj('never-seen', '14'));
    w.onEvent('BOOKMARK', { metadata: { resourceVersion: '20' } });
    expect(events.slice(1)).toEqual([
      ['add', 'b@11'],
      ['update', 'a@12'],
      ['delete', 'b@13'],
    ]);
    expect(r.store.get('shop', 'a')?.data).toBe('x');
    expect(r.stats().events).toEqual({ add: 2, update: 1, delete: 1 });
    // A normal close resumes from the last version seen, without a relist.
    w.onDone(null);
    await vi.waitFor(() => expect(src.watches).toHaveLength(2));
    expect(src.current.rv).toBe('20');
    expect(src.lists).toBe(1);
  });

  it('treats a client-side inactivity timeout like a normal close', async () => {
    const src = new FakeSource();
    const { r } = start(src);
    await vi.waitFor(() => expect(src.watches).toHaveLength(1));
    src.current.onDone(Object.assign(new Error('timeout'), { name: 'TimeoutError' }));
    await vi.waitFor(() => expect(src.watches).toHaveLength(2));
    expect(r.stats().errors).toBe(0);
  });

  it('restarts a failed watch with backoff instead of stopping (client-node informers stop here)', async () => {
    const src = new FakeSource();
    const { r } = start(src);
    await vi.waitFor(() => expect(src.watches).toHaveLength(1));
    src.current.onDone(httpError(500));
    await vi.waitFor(() => expect(src.watches).toHaveLength(2));
    src.current.onDone(httpError(503));
    await vi.waitFor(() => expect(src.watches).toHaveLength(3));
    expect(r.stats()).toMatchObject({ errors: 2, lists: 1, synced: true });
    expect(r.stats().lastError).toContain('503');
  });

  it('retries a failing list with backoff and is not synced until it succeeds', async () => {
    const src = new FakeSource();
    src.listErrors = [httpError(500), httpError(403)];
    src.items = [obj('a', '1')];
    const { r } = start(src);
    await r.waitForSync();
    expect(src.lists).toBe(3);
    expect(r.stats().errors).toBe(2);
    expect(r.store.size).toBe(1);
  });

  it('relists on 410 Gone and emits exactly the differences', async () => {
    const src = new FakeSource();
    src.items = [obj('keep', '1'), obj('change', '2'), obj('vanish', '3')];
    const { r, events } = start(src);
    await vi.waitFor(() => expect(src.watches).toHaveLength(1));
    // Meanwhile (events missed): one changed, one deleted, one added.
    src.items = [obj('keep', '1'), obj('change', '5'), obj('new', '6')];
    src.rv = '30';
    src.current.onEvent('ERROR', { kind: 'Status', code: 410, message: 'too old resource version' });
    src.current.onDone(null);
    await vi.waitFor(() => expect(src.watches).toHaveLength(2));
    expect(src.lists).toBe(2);
    expect(events.slice(3)).toEqual([
      ['update', 'change@5'],
      ['add', 'new@6'],
      ['delete', 'vanish@3'],
    ]);
    expect(src.current.rv).toBe('30');
    expect(r.store.size).toBe(3);
  });

  it('relists periodically, repairing a silently stalled watch', async () => {
    const src = new FakeSource();
    src.items = [obj('a', '1')];
    const { r, events } = start(src, { relistIntervalMs: 40 });
    await r.waitForSync();
    await vi.waitFor(() => expect(src.watches.length).toBeGreaterThanOrEqual(1));
    const stalled = src.watches[0]!;
    src.items = [obj('a', '2')]; // the watch never told us
    await vi.waitFor(() => expect(events).toContainEqual(['update', 'a@2']));
    expect(stalled.aborted).toBe(true);
    expect(src.lists).toBeGreaterThanOrEqual(2);
  });

  it('treats a 404 (CRD not installed) as an empty, synced, "missing" resource and notices when it appears', async () => {
    const src = new FakeSource();
    src.listErrors = [httpError(404)];
    const { r, events } = start(src);
    await r.waitForSync();
    expect(r.missing()).toBe(true);
    expect(r.stats()).toMatchObject({ missing: true, synced: true, objects: 0 });
    src.items = [obj('gw', '1')];
    // Re-checked after the backoff cap (40 ms here).
    await vi.waitFor(() => expect(r.missing()).toBe(false));
    expect(events).toEqual([['add', 'gw@1']]);
  });

  it('backs off when the server keeps closing watches immediately', async () => {
    const src = new FakeSource();
    src.closeImmediately = true;
    start(src, { minWatchMs: 1000 });
    await new Promise((res) => setTimeout(res, 60));
    // 5, 10, 20, 40 ms backoff: a handful of watches, not thousands.
    expect(src.watches.length).toBeLessThan(8);
  });

  it('stop() aborts the watch and ends the loop', async () => {
    const src = new FakeSource();
    const { r } = start(src, { relistIntervalMs: 10 });
    await vi.waitFor(() => expect(src.watches.length).toBeGreaterThanOrEqual(1));
    await r.stop();
    const lists = src.lists;
    expect(src.watches.every((w) => w.aborted)).toBe(true);
    await new Promise((res) => setTimeout(res, 40));
    expect(src.lists).toBe(lists);
  });

  it('relistNow() relists at once', async () => {
    const src = new FakeSource();
    const { r } = start(src);
    await vi.waitFor(() => expect(src.watches).toHaveLength(1));
    r.relistNow();
    await vi.waitFor(() => expect(src.lists).toBe(2));
  });
});

describe('Reflector: transform and namespace backfill', () => {
  /** A source whose namespaced list is held until released, so watch events can race it. */
  class GatedSource extends FakeSource {
    gate: Promise<void> = Promise.resolve();
    clusterGate: Promise<void> = Promise.resolve();
    nsLists: string[] = [];
    override async list(
      opts: { namespace?: string; transform?: (o: Obj) => Obj | undefined } = {},
    ): Promise<ListResult<Obj>> {
      if (opts.namespace) {
        this.nsLists.push(opts.namespace);
        const snapshot = structuredClone(this.items.filter((i) => i.metadata?.namespace === opts.namespace));
        await this.gate;
        return { items: snapshot, resourceVersion: this.rv };
      }
      // Like the API server source: pages are transformed as they arrive, before the list ends.
      const res = await super.list();
      const items = res.items.flatMap((i) => opts.transform?.(i) ?? (opts.transform ? [] : [i]));
      await this.clusterGate;
      return { ...res, items };
    }
  }

  function startWithout(src: FakeSource, hidden: Set<string>) {
    const events: Array<[ChangeType, string]> = [];
    const r = new Reflector<Obj>(src, {
      name: 'configmaps',
      relistIntervalMs: 0,
      backoff: { initialMs: 5, maxMs: 40, jitter: 0 },
      minWatchMs: 0,
      transform: (o) => (hidden.has(o.metadata?.namespace ?? '') ? undefined : { ...o, data: undefined }),
    });
    r.on((type, o) => events.push([type, `${o.metadata?.name}@${o.metadata?.resourceVersion}`]));
    r.start();
    running.push(r);
    return { r, events };
  }

  it('keeps only what the transform keeps; an object that leaves the view is a delete', async () => {
    const src = new FakeSource();
    src.items = [obj('a', '1', 'shop', 'big'), obj('b', '2', 'elsewhere', 'big')];
    const hidden = new Set(['elsewhere']);
    const { r, events } = startWithout(src, hidden);
    await r.waitForSync();
    await vi.waitFor(() => src.current);
    expect(r.store.all().map((o) => [o.metadata?.name, o.data])).toEqual([['a', undefined]]);
    src.current.onEvent('MODIFIED', obj('b', '11', 'elsewhere'));
    expect(r.store.get('elsewhere', 'b')).toBeUndefined();
    hidden.add('shop');
    src.current.onEvent('MODIFIED', obj('a', '12', 'shop'));
    expect(r.store.size).toBe(0);
    expect(events.slice(1)).toEqual([['delete', 'a@1']]);
  });

  it('backfills a namespace: newer resourceVersions win, deletions seen meanwhile are not resurrected', async () => {
    const src = new GatedSource();
    src.items = [
      obj('keep', '5', 'elsewhere'),
      obj('gone', '6', 'elsewhere'),
      obj('newer', '7', 'elsewhere'),
      obj('x', '8', 'shop'),
    ];
    const hidden = new Set(['elsewhere']);
    const { r, events } = startWithout(src, hidden);
    await r.waitForSync();
    await vi.waitFor(() => src.current);
    expect(r.store.list('elsewhere')).toEqual([]);
    let release!: () => void;
    src.gate = new Promise((res) => (release = res));
    hidden.delete('elsewhere');
    const filled = r.backfill('elsewhere');
    await vi.waitFor(() => expect(src.nsLists).toEqual(['elsewhere']));
    // While the list is in flight: one object deleted, one updated past the list's snapshot.
    src.current.onEvent('DELETED', obj('gone', '20', 'elsewhere'));
    src.current.onEvent('MODIFIED', obj('newer', '21', 'elsewhere'));
    release();
    await filled;
    expect(
      r.store
        .list('elsewhere')
        .map((o) => `${o.metadata?.name}@${o.metadata?.resourceVersion}`)
        .sort(),
    ).toEqual(['keep@5', 'newer@21']);
    expect(events.slice(1)).toEqual([
      ['add', 'newer@21'],
      ['add', 'keep@5'],
    ]);
    // A replayed older event does not move an object back.
    src.current.onEvent('MODIFIED', obj('newer', '7', 'elsewhere'));
    expect(r.store.get('elsewhere', 'newer')?.metadata?.resourceVersion).toBe('21');
  });

  it('a relist that began before a namespace mattered does not drop what its backfill found', async () => {
    const src = new GatedSource();
    src.items = [obj('a', '5', 'elsewhere'), obj('x', '8', 'shop')];
    const hidden = new Set(['elsewhere']);
    const { r } = startWithout(src, hidden);
    await r.waitForSync();
    await vi.waitFor(() => src.current);
    let releaseRelist!: () => void;
    src.clusterGate = new Promise((res) => (releaseRelist = res));
    const listsBefore = src.lists;
    r.relistNow(); // its snapshot is filtered while "elsewhere" is still hidden
    await vi.waitFor(() => expect(src.lists).toBe(listsBefore + 1));
    hidden.delete('elsewhere');
    await r.backfill('elsewhere');
    expect(r.store.get('elsewhere', 'a')).toBeDefined();
    releaseRelist();
    await vi.waitFor(() => src.current);
    await new Promise((res) => setTimeout(res, 20));
    expect(r.store.get('elsewhere', 'a')?.metadata?.resourceVersion).toBe('5');
    expect(r.store.get('shop', 'x')).toBeDefined();
  });
});
