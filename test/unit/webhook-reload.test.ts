// Hot reload: the running server swaps certificates in place (setSecureContext) when the files
// change or the managed store rotates, keeps the old pair on bad input, and never restarts.

import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateLeaf } from '../../src/tls/certs.js';
import { dirCertStore } from '../../src/tls/dir-store.js';
import { createFileTlsSource } from '../../src/tls/file-tls.js';
import { startManagedTls } from '../../src/tls/managed-tls.js';
import { createMetrics } from '../../src/webhook/metrics.js';
import { createWebhookServer, type WebhookServer } from '../../src/webhook/server.js';
import type { TlsSource } from '../../src/tls/tls.js';
import {
  captureLogs,
  handshake,
  httpsCall,
  LOCAL_IDENTITY,
  makePki,
  postJson,
  review,
  stubHandler,
  waitFor,
} from './webhook-helpers.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(
  tls: TlsSource,
  logger: ReturnType<typeof captureLogs>['logger'],
): Promise<{ app: WebhookServer; port: number }> {
  const app = createWebhookServer({
    handler: stubHandler,
    ready: () => true,
    tls,
    logger,
    metrics: createMetrics({ defaultMetrics: false }),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  cleanups.push(() => app.close());
  return { app, port: (app.server.address() as { port: number }).port };
}

const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

async function servedFingerprint(port: number, ca: string): Promise<string | undefined> {
  const hs = await handshake(port, { ca });
  return hs.ok ? hs.cert?.fingerprint256 : undefined;
}

/** A temporary directory, removed after the test. */
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'wpgw-reload-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A fresh PKI with its leaf written to tls.crt / tls.key in a temporary directory. */
async function servingPairFiles(): Promise<{
  certFile: string;
  keyFile: string;
  pki: Awaited<ReturnType<typeof makePki>>;
}> {
  const dir = await tempDir();
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  const pki = await makePki();
  await writeFile(certFile, pki.leaf.cert);
  await writeFile(keyFile, pki.leaf.key);
  return { certFile, keyFile, pki };
}

describe('file source (--tls-cert-file / --tls-key-file)', () => {
  it('swaps the served certificate when the files change, without restarting', async () => {
    const { certFile, keyFile, pki } = await servingPairFiles();

    const logs = captureLogs();
    const tls = await createFileTlsSource({ certFile, keyFile, intervalMs: 100, logger: logs.logger });
    cleanups.push(() => tls.close());
    const { app, port } = await serve(tls, logs.logger);
    const listener = app.server;
    expect(await servedFingerprint(port, pki.ca.cert)).toBe(fingerprint(pki.leaf.cert));

    // A second leaf from the same CA: clients keep trusting it.
    const next = await generateLeaf({ ca: pki.ca, identity: LOCAL_IDENTITY, now: new Date(), validityMs: 3_600_000 });
    await writeFile(certFile, next.cert);
    await writeFile(keyFile, next.key);
    await waitFor(async () =>
      (await servedFingerprint(port, pki.ca.cert)) === fingerprint(next.cert) ? true : undefined,
    );

    expect(app.server).toBe(listener);
    expect(app.server.listening).toBe(true);
    expect((await postJson(port, pki.ca.cert, review())).status).toBe(200);
    // minVersion survives the context swap.
    const old = await handshake(port, {
      ca: pki.ca.cert,
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT:@SECLEVEL=0',
    });
    expect(old.ok).toBe(false);
    expect(logs.lines().some((l) => l['msg'] === 'serving certificate swapped')).toBe(true);
  });

  it('keeps the old pair on a half-written or mismatched pair and logs one error', async () => {
    const { certFile, keyFile, pki } = await servingPairFiles();

    const logs = captureLogs();
    const tls = await createFileTlsSource({ certFile, keyFile, intervalMs: 60_000, logger: logs.logger });
    cleanups.push(() => tls.close());
    const { port } = await serve(tls, logs.logger);

    const next = await generateLeaf({ ca: pki.ca, identity: LOCAL_IDENTITY, now: new Date(), validityMs: 3_600_000 });
    // New certificate, old key (the key file is not written yet).
    await writeFile(certFile, next.cert);
    await tls.poll();
    await tls.poll();
    expect(await servedFingerprint(port, pki.ca.cert)).toBe(fingerprint(pki.leaf.cert));
    const rejected = logs.lines().filter((l) => l['msg'] === 'new TLS files rejected; keeping the current certificate');
    expect(rejected).toHaveLength(1);
    expect(rejected[0]).toMatchObject({
      level: 'error',
      err: { message: 'private key does not match the certificate' },
    });

    // Truncated certificate: still the old pair.
    await writeFile(certFile, next.cert.slice(0, 200));
    await writeFile(keyFile, next.key);
    await tls.poll();
    expect(await servedFingerprint(port, pki.ca.cert)).toBe(fingerprint(pki.leaf.cert));

    // Complete pair: swapped.
    await writeFile(certFile, next.cert);
    await tls.poll();
    expect(await servedFingerprint(port, pki.ca.cert)).toBe(fingerprint(next.cert));
  });

  it('refuses to start from an unusable pair', async () => {
    const dir = await tempDir();
    const a = await makePki();
    const b = await makePki();
    await writeFile(join(dir, 'tls.crt'), a.leaf.cert);
    await writeFile(join(dir, 'tls.key'), b.leaf.key);
    const { logger } = captureLogs();
    await expect(
      createFileTlsSource({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), logger }),
    ).rejects.toThrow(/does not match/);
    await expect(
      createFileTlsSource({ certFile: join(dir, 'missing.crt'), keyFile: join(dir, 'tls.key'), logger }),
    ).rejects.toThrow(/ENOENT/);
  });
});

describe('managed source', () => {
  it('serves a renewed leaf after a reconcile, on the same listener', async () => {
    const dir = await tempDir();
    const logs = captureLogs();
    // Short lifetimes and a clock that starts 45 minutes ago, so the renewal is due "now"
    // while every certificate is valid in real time for the handshakes.
    const policy = {
      caValidityMs: 3 * HOUR,
      leafValidityMs: HOUR,
      renewFraction: 1 / 3,
      minOverlapMs: MIN,
      oldCaGraceMs: MIN,
    };
    let clock = new Date(Date.now() - 45 * MIN);
    const tls = await startManagedTls({
      store: dirCertStore(dir),
      identity: LOCAL_IDENTITY,
      logger: logs.logger,
      policy,
      now: () => clock,
      intervalMs: 60_000,
    });
    cleanups.push(() => tls.close());
    const { app, port } = await serve(tls, logs.logger);
    const listener = app.server;
    const ca = tls.caBundle();
    const first = await servedFingerprint(port, ca);
    expect(first).toBe(fingerprint(tls.current().cert));

    clock = new Date();
    await tls.reconcile();
    const served = await servedFingerprint(port, ca);
    expect(served).toBe(fingerprint(tls.current().cert));
    expect(served).not.toBe(first);
    expect(tls.caBundle()).toBe(ca);
    expect(app.server).toBe(listener);
    expect((await httpsCall(port, { path: '/healthz', ca })).status).toBe(200);
    expect(logs.lines().some((l) => l['msg'] === 'webhook certificates updated')).toBe(true);
  });
});
