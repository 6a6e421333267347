// RawKubeClient over real HTTPS: requests share kept-alive TLS connections (client-node alone opens
// one per request), and a changed client certificate gets its own pool; a namespace's list (a
// backfill) goes over that pool too.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawKubeClient } from '../../src/cluster/client.js';
import { kindInfo } from '../../src/cluster/kinds.js';
import { KubeListWatchSource } from '../../src/cluster/kube-source.js';
import { generateLeaf } from '../../src/tls/certs.js';
import { LOCAL_IDENTITY, makePki } from './webhook-helpers.js';

let server: Server;
let port = 0;
let caPem = '';
let handshakes = 0;
const authHeaders: string[] = [];
const urls: URL[] = [];

beforeAll(async () => {
  const { ca, leaf } = await makePki(LOCAL_IDENTITY);
  caPem = ca.cert;
  server = createServer({ cert: leaf.cert, key: leaf.key, requestCert: false }, (req, res) => {
    authHeaders.push(String(req.headers.authorization));
    const url = new URL(req.url ?? '/', 'https://x');
    urls.push(url);
    res.writeHead(200, { 'content-type': 'application/json' });
    const list = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(url.pathname);
    if (list) {
      const ns = list[1]!;
      // Two pages per namespace, so continue tokens are followed on the same pool.
      const page = url.searchParams.get('continue') ? 2 : 1;
      res.end(
        JSON.stringify({
          kind: 'PodList',
          metadata: { resourceVersion: '7', ...(page === 1 ? { continue: `${ns}-2` } : {}) },
          items: [{ metadata: { name: `p${page}`, namespace: ns, resourceVersion: '5' } }],
        }),
      );
      return;
    }
    res.end(JSON.stringify({ kind: 'Namespace', apiVersion: 'v1', metadata: { name: 'x', extra: req.url } }));
  });
  server.on('secureConnection', () => handshakes++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

function kubeconfig(user: Record<string, string>): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `https://127.0.0.1:${port}`, caData: Buffer.from(caPem).toString('base64') }],
    users: [{ name: 'u', ...user }],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
    currentContext: 'ctx',
  });
  return kc;
}

describe('RawKubeClient connection reuse', () => {
  it('sends 30 requests (10 at a time) over a handful of TLS connections, with the credentials on every one', async () => {
    const client = new RawKubeClient(kubeconfig({ token: 'pool-token' }));
    const before = handshakes;
    authHeaders.length = 0;
    for (let round = 0; round < 3; round++) {
      const got = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          client.request<{ metadata: { extra: string } }>('GET', `/api/v1/namespaces/n${round}-${i}`),
        ),
      );
      expect(got.map((g) => g.metadata.extra)).toEqual(
        Array.from({ length: 10 }, (_, i) => `/api/v1/namespaces/n${round}-${i}`),
      );
    }
    // 10 in flight need 10 connections; later rounds reuse them (one still finishing its response
    // when the next round starts may add a few). Without the pool it is one per request: 30.
    expect(handshakes - before).toBeLessThanOrEqual(15);
    expect(authHeaders).toHaveLength(30);
    expect(new Set(authHeaders)).toEqual(new Set(['Bearer pool-token']));
    expect(client.auth.pools).toBe(1);
  });

  it('(control) client-node on its own opens a connection per request', async () => {
    const api = kubeconfig({ token: 'control' }).makeApiClient(CoreV1Api);
    const before = handshakes;
    for (let i = 0; i < 5; i++) await api.readNamespace({ name: `c${i}` });
    expect(handshakes - before).toBe(5);
  });

  it("lists 40 namespaces (8 at a time, as the cache's backfills run) as paged GETs over a handful of TLS connections", async () => {
    const kc = kubeconfig({ token: 'backfill' });
    const src = new KubeListWatchSource(kc, new RawKubeClient(kc), kindInfo('v1', 'Pod'), { pageSize: 1 });
    const before = handshakes;
    urls.length = 0;
    const namespaces = Array.from({ length: 40 }, (_, i) => `ns${i}`);
    const got: string[] = [];
    for (let i = 0; i < namespaces.length; i += 8) {
      const lists = await Promise.all(namespaces.slice(i, i + 8).map((namespace) => src.list({ namespace })));
      for (const l of lists) got.push(...l.items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}/${p.kind}`));
    }
    expect(got).toEqual(namespaces.flatMap((ns) => [`${ns}/p1/Pod`, `${ns}/p2/Pod`]));
    // Plain list requests, never a streaming list: that is a watch aborted after its bookmark,
    // which takes its connection with it (one handshake per namespace, 40 here).
    expect(urls).toHaveLength(80);
    expect(urls.filter((u) => u.searchParams.has('watch') || u.searchParams.has('sendInitialEvents'))).toEqual([]);
    expect(urls.map((u) => u.searchParams.get('limit'))).toEqual(Array(80).fill('1'));
    // 8 in flight need 8 connections; one still finishing its response when the next request goes
    // out adds one. Streaming, it is 40.
    expect(handshakes - before).toBeLessThanOrEqual(24);
  });

  it('opens a new pool when the client certificate changes', async () => {
    const { ca } = await makePki(LOCAL_IDENTITY);
    const mk = async (cn: string) => {
      const leaf = await generateLeaf({
        ca,
        identity: { dnsNames: [cn], ipAddresses: [] },
        now: new Date(),
        validityMs: 86_400_000,
      });
      return { certData: Buffer.from(leaf.cert).toString('base64'), keyData: Buffer.from(leaf.key).toString('base64') };
    };
    const kc = kubeconfig(await mk('first'));
    const client = new RawKubeClient(kc);
    await client.request('GET', '/api/v1/namespaces/a');
    await client.request('GET', '/api/v1/namespaces/b');
    expect(client.auth.pools).toBe(1);
    Object.assign(kc.getCurrentUser()!, await mk('second'));
    await client.request('GET', '/api/v1/namespaces/c');
    expect(client.auth.pools).toBe(2);
  });
});
