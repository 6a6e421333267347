// RawKubeClient over real HTTPS: requests share kept-alive TLS connections (client-node alone opens
// one per request), and a changed client certificate gets its own pool.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawKubeClient } from '../../src/cluster/client.js';
import { generateLeaf } from '../../src/tls/certs.js';
import { LOCAL_IDENTITY, makePki } from './webhook-helpers.js';

let server: Server;
let port = 0;
let caPem = '';
let handshakes = 0;
const authHeaders: string[] = [];

beforeAll(async () => {
  const { ca, leaf } = await makePki(LOCAL_IDENTITY);
  caPem = ca.cert;
  server = createServer({ cert: leaf.cert, key: leaf.key, requestCert: false }, (req, res) => {
    authHeaders.push(String(req.headers.authorization));
    res.writeHead(200, { 'content-type': 'application/json' });
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
