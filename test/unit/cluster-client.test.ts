// The raw REST client, the list/watch source and the reflector against a local HTTP server that
// speaks just enough of the Kubernetes API: proves the client-node plumbing (auth, query params,
// content types, streaming watch) without a cluster.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiException, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RawKubeClient, errorStatus, isNotFound } from '../../src/cluster/client.js';
import { kindInfo } from '../../src/cluster/kinds.js';
import { KubeListWatchSource } from '../../src/cluster/kube-source.js';
import { Reflector } from '../../src/cluster/reflector.js';
import { Writer } from '../../src/controller/writer.js';

interface Seen {
  method: string;
  url: URL;
  headers: IncomingMessage['headers'];
  body: string;
}

let server: Server;
let kc: KubeConfig;
const seen: Seen[] = [];
let watchRes: ServerResponse | undefined;
let handler: (s: Seen, res: ServerResponse) => void = () => {};

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const s: Seen = {
        method: req.method ?? '',
        url: new URL(req.url ?? '/', 'http://x'),
        headers: req.headers,
        body,
      };
      seen.push(s);
      handler(s, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'secret-token' }],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
    currentContext: 'ctx',
  });
});

afterAll(async () => {
  watchRes?.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

function json(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

describe('RawKubeClient', () => {
  it('returns the raw JSON (unknown fields kept, timestamps as strings) with the bearer token', async () => {
    handler = (_s, res) =>
      json(res, 200, {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'a', creationTimestamp: '2026-01-01T00:00:00Z' },
        spec: { futureField: { x: 1 } },
      });
    const got = await new RawKubeClient(kc).request<Record<string, any>>('GET', '/api/v1/namespaces/shop/services/a');
    expect(got.metadata.creationTimestamp).toBe('2026-01-01T00:00:00Z');
    expect(got.spec.futureField).toEqual({ x: 1 });
    expect(seen.at(-1)!.headers.authorization).toBe('Bearer secret-token');
  });

  it('throws ApiException with the HTTP code and the Status message', async () => {
    handler = (_s, res) => json(res, 404, { kind: 'Status', code: 404, message: 'services "a" not found' });
    const err = await new RawKubeClient(kc)
      .request('GET', '/api/v1/namespaces/shop/services/a')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiException);
    expect(errorStatus(err)).toBe(404);
    expect(isNotFound(err)).toBe(true);
    expect((err as Error).message).toContain('not found');
  });

  it('getText: a pod log as text, its query passed, sent as wpgw; an error is still an ApiException', async () => {
    handler = (s, res) => {
      if (s.url.searchParams.get('container') !== 'coredns') return json(res, 400, { kind: 'Status', message: 'no' });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('[INFO] 10.0.0.7:53 - "A IN orders.sales.svc.cluster.local."\n');
    };
    const rest = new RawKubeClient(kc);
    const log = await rest.getText('/api/v1/namespaces/shop/pods/wpgw-dns-0/log', {
      container: 'coredns',
      sinceSeconds: 60,
    });
    expect(log).toContain('orders.sales.svc.cluster.local');
    expect(seen.at(-1)!.url.searchParams.get('sinceSeconds')).toBe('60');
    expect(seen.at(-1)!.headers['user-agent']).toBe('wpgw');
    const err = await rest.getText('/api/v1/namespaces/shop/pods/wpgw-dns-0/log').catch((e: unknown) => e);
    expect(errorStatus(err)).toBe(400);
  });

  it('Writer: server-side apply is a PATCH with the apply content type, fieldManager=wpgw and force', async () => {
    handler = (s, res) => json(res, 200, JSON.parse(s.body || '{}'));
    const w = new Writer(new RawKubeClient(kc), { isLeader: () => true });
    const obj = {
      apiVersion: 'networking.istio.io/v1',
      kind: 'Gateway',
      metadata: { name: 'wpgw', namespace: 'shop' },
      spec: { selector: { a: 'b' } },
    };
    await w.apply(obj);
    const s = seen.at(-1)!;
    expect(s.method).toBe('PATCH');
    expect(s.url.pathname).toBe('/apis/networking.istio.io/v1/namespaces/shop/gateways/wpgw');
    expect(s.url.searchParams.get('fieldManager')).toBe('wpgw');
    expect(s.url.searchParams.get('force')).toBe('true');
    expect(s.headers['content-type']).toBe('application/apply-patch+yaml');
    expect(JSON.parse(s.body)).toEqual(obj);

    await w.mergePatch(
      { apiVersion: 'v1', kind: 'Service', namespace: 'shop', name: 'legacy' },
      { metadata: { annotations: { 'wpgw.io/nudge': 'x' } } },
    );
    expect(seen.at(-1)!.headers['content-type']).toBe('application/merge-patch+json');

    await w.delete({ ...obj, metadata: { ...obj.metadata, uid: 'u1', resourceVersion: '9' } as typeof obj.metadata });
    const d = seen.at(-1)!;
    expect(d.method).toBe('DELETE');
    expect(JSON.parse(d.body)).toEqual({
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      propagationPolicy: 'Background',
      preconditions: { uid: 'u1', resourceVersion: '9' },
    });
    expect(w.writeCounts()).toEqual({
      total: 3,
      byVerbKind: { 'apply/Gateway': 1, 'patch/Service': 1, 'delete/Gateway': 1 },
    });
  });

  it('Writer: refuses every write when not leading', async () => {
    const before = seen.length;
    const w = new Writer(new RawKubeClient(kc), { isLeader: () => false });
    await expect(
      w.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'y' } }),
    ).rejects.toThrow(/not the leader/);
    expect(seen.length).toBe(before);
    expect(w.writeCounts().total).toBe(0);
  });
});

describe('KubeListWatchSource + Reflector over HTTP', () => {
  it('streams a list (watch with sendInitialEvents until the initial-events-end bookmark), slimmed per object, then watches on', async () => {
    handler = (s, res) => {
      if (s.url.searchParams.get('watch') !== 'true')
        return json(res, 500, { kind: 'Status', code: 500, message: 'no paged lists expected' });
      res.writeHead(200, { 'content-type': 'application/json' });
      if (s.url.searchParams.get('sendInitialEvents') === 'true') {
        for (const name of ['p1', 'p2'])
          res.write(
            `${JSON.stringify({ type: 'ADDED', object: { metadata: { name, namespace: 'shop', resourceVersion: '40', managedFields: [{}] }, spec: { big: 'x' } } })}\n`,
          );
        res.write(
          `${JSON.stringify({ type: 'BOOKMARK', object: { kind: 'Pod', metadata: { resourceVersion: '60', annotations: { 'k8s.io/initial-events-end': 'true' } } } })}\n`,
        );
      }
      watchRes = res;
    };
    const src = new KubeListWatchSource(kc, new RawKubeClient(kc), kindInfo('v1', 'Pod'), {
      labelSelector: 'wpgw.io/managed',
    });
    const r = new Reflector(src, {
      name: 'managedPods',
      relistIntervalMs: 0,
      backoff: { initialMs: 10, maxMs: 50, jitter: 0 },
      transform: (o) => ({
        apiVersion: o.apiVersion,
        kind: o.kind,
        metadata: { name: o.metadata?.name, namespace: o.metadata?.namespace },
      }),
    });
    r.start();
    try {
      await r.waitForSync();
      expect(r.store.all()).toEqual([
        { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p1', namespace: 'shop' } },
        { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p2', namespace: 'shop' } },
      ]);
      const streamed = seen.find((x) => x.url.searchParams.get('sendInitialEvents') === 'true')!;
      expect(streamed.url.searchParams.get('resourceVersionMatch')).toBe('NotOlderThan');
      expect(streamed.url.searchParams.get('labelSelector')).toBe('wpgw.io/managed');
      // The watch resumes from the bookmark's resourceVersion.
      await vi.waitFor(() =>
        expect(
          seen.some(
            (x) => x.url.searchParams.get('watch') === 'true' && x.url.searchParams.get('resourceVersion') === '60',
          ),
        ).toBe(true),
      );
    } finally {
      await r.stop();
    }
  });

  it('a streaming list the server cuts short (a watcher closed for falling behind) is streamed again, not paged from then on; three cut in a row page one list', async () => {
    for (const cutAlways of [false, true]) {
      seen.length = 0;
      watchRes?.destroy();
      watchRes = undefined;
      let streams = 0;
      handler = (s, res) => {
        if (s.url.searchParams.get('watch') !== 'true')
          return json(res, 200, {
            kind: 'PodList',
            metadata: { resourceVersion: '70' },
            items: [{ metadata: { name: 'p1', namespace: 'shop', resourceVersion: '40' } }],
          });
        res.writeHead(200, { 'content-type': 'application/json' });
        if (s.url.searchParams.get('sendInitialEvents') === 'true') {
          streams++;
          res.write(
            `${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'p1', namespace: 'shop', resourceVersion: '40' } } })}\n`,
          );
          if (cutAlways || streams < 3) return res.end(); // the API server closed the watcher
          res.write(
            `${JSON.stringify({ type: 'BOOKMARK', object: { kind: 'Pod', metadata: { resourceVersion: '60', annotations: { 'k8s.io/initial-events-end': 'true' } } } })}\n`,
          );
        }
        watchRes = res;
      };
      const src = new KubeListWatchSource(kc, new RawKubeClient(kc), kindInfo('v1', 'Pod'));
      const r = new Reflector(src, {
        name: 'pods',
        relistIntervalMs: 0,
        backoff: { initialMs: 10, maxMs: 50, jitter: 0 },
      });
      r.start();
      try {
        await r.waitForSync();
        expect(r.store.all().map((o) => o.metadata?.name)).toEqual(['p1']);
        const paged = seen.filter((x) => x.url.searchParams.get('watch') !== 'true');
        expect(streams, `cutAlways=${cutAlways}`).toBe(3);
        expect(paged.length, `cutAlways=${cutAlways}: paged lists`).toBe(cutAlways ? 1 : 0);
        expect(r.stats().lastError ?? '', `cutAlways=${cutAlways}`).toMatch(/cut short after 1 events/);
      } finally {
        await r.stop();
      }
    }
  });

  it('pages through lists where streaming lists are refused (422), fills in TypeMeta, then streams watch events', async () => {
    seen.length = 0;
    watchRes?.destroy();
    watchRes = undefined;
    handler = (s, res) => {
      if (s.url.searchParams.get('sendInitialEvents') === 'true')
        return json(res, 422, {
          kind: 'Status',
          code: 422,
          message: 'sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled',
        });
      if (s.url.searchParams.get('watch') === 'true') {
        res.writeHead(200, { 'content-type': 'application/json' });
        watchRes = res;
        return;
      }
      if (!s.url.searchParams.get('continue')) {
        return json(res, 200, {
          kind: 'PodList',
          metadata: { resourceVersion: '50', continue: 'page2' },
          items: [
            {
              metadata: { name: 'p1', namespace: 'shop', resourceVersion: '40', labels: { 'wpgw.io/managed': 'true' } },
            },
          ],
        });
      }
      json(res, 200, {
        kind: 'PodList',
        metadata: { resourceVersion: '50' },
        items: [
          { metadata: { name: 'p2', namespace: 'shop', resourceVersion: '41', labels: { 'wpgw.io/managed': 'true' } } },
        ],
      });
    };
    const src = new KubeListWatchSource(kc, new RawKubeClient(kc), kindInfo('v1', 'Pod'), {
      labelSelector: 'wpgw.io/managed',
      pageSize: 1,
    });
    const r = new Reflector(src, {
      name: 'managedPods',
      relistIntervalMs: 0,
      backoff: { initialMs: 10, maxMs: 50, jitter: 0 },
    });
    const events: string[] = [];
    r.on((t, o) => events.push(`${t}:${o.metadata?.name}:${o.kind}`));
    r.start();
    try {
      await r.waitForSync();
      const lists = seen.filter((s) => s.url.pathname === '/api/v1/pods' && !s.url.searchParams.get('watch'));
      expect(
        lists.map((s) => [
          s.url.searchParams.get('labelSelector'),
          s.url.searchParams.get('limit'),
          s.url.searchParams.get('continue'),
        ]),
      ).toEqual([
        ['wpgw.io/managed', '1', null],
        ['wpgw.io/managed', '1', 'page2'],
      ]);
      expect(events).toEqual(['add:p1:Pod', 'add:p2:Pod']);

      await vi.waitFor(() => expect(watchRes).toBeDefined());
      const watch = seen.find(
        (s) => s.url.searchParams.get('watch') === 'true' && !s.url.searchParams.get('sendInitialEvents'),
      )!;
      expect(watch.url.searchParams.get('resourceVersion')).toBe('50');
      expect(watch.url.searchParams.get('labelSelector')).toBe('wpgw.io/managed');
      expect(watch.url.searchParams.get('allowWatchBookmarks')).toBe('true');

      watchRes!.write(
        `${JSON.stringify({ type: 'ADDED', object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p3', namespace: 'shop', resourceVersion: '51' } } })}\n`,
      );
      watchRes!.write(
        `${JSON.stringify({ type: 'DELETED', object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p1', namespace: 'shop', resourceVersion: '52' } } })}\n`,
      );
      await vi.waitFor(() => expect(events).toEqual(['add:p1:Pod', 'add:p2:Pod', 'add:p3:Pod', 'delete:p1:Pod']));

      // Server ends the watch with 410 Gone: the reflector relists.
      const listsBefore = seen.filter(
        (s) => s.url.pathname === '/api/v1/pods' && !s.url.searchParams.get('watch'),
      ).length;
      watchRes!.end(
        `${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, message: 'too old' } })}\n`,
      );
      watchRes = undefined;
      await vi.waitFor(() =>
        expect(
          seen.filter((s) => s.url.pathname === '/api/v1/pods' && !s.url.searchParams.get('watch')).length,
        ).toBeGreaterThan(listsBefore),
      );
      // The relist shows p1 and p2 (p3 gone): differences only.
      await vi.waitFor(() => expect(events.slice(4)).toEqual(['add:p1:Pod', 'delete:p3:Pod']));
    } finally {
      await r.stop();
    }
  });
});
