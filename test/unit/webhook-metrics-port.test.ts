// The monitoring surface: the plain-HTTP metrics port (only GET /metrics), wpgw_build_info, the
// certificate expiry gauges read from what is really served, and caBundle publication results.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createCaBundlePatcher } from '../../src/tls/ca-bundle.js';
import { createMetrics, createCaBundleMetrics, registerCertificateMetrics } from '../../src/webhook/metrics.js';
import { createRegistry, registerBuildInfo } from '../../src/telemetry/registry.js';
import { serveMetrics, type MetricsServer } from '../../src/telemetry/metrics-server.js';
import { startWebhook, type RunningWebhook } from '../../src/webhook/start.js';
import {
  captureLogs,
  FakeWebhookConfigs,
  LOCAL_IDENTITY,
  makePki,
  sample,
  stubHandler,
  webhookConfig,
} from './webhook-helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function get(url: string, method = 'GET'): Promise<{ status: number; body: string; type: string | null }> {
  const r = await fetch(url, { method });
  return { status: r.status, body: await r.text(), type: r.headers.get('content-type') };
}

describe('the plain-HTTP metrics port', () => {
  it('serves the same registry as the HTTPS port over plain HTTP, and nothing but GET /metrics', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wpgw-metrics-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const { logger } = captureLogs();
    const metrics = createMetrics({ defaultMetrics: false });
    registerBuildInfo(metrics.registry, 'webhook', '9.9.9');
    const running: RunningWebhook = await startWebhook({
      handler: stubHandler,
      logger,
      tls: { mode: 'dev', dir, identity: LOCAL_IDENTITY },
      host: '127.0.0.1',
      port: 0,
      metrics,
    });
    cleanups.push(() => running.close());
    const server: MetricsServer = await serveMetrics({ registry: metrics.registry, host: '127.0.0.1', port: 0 });
    cleanups.push(() => server.close());
    expect(server.address).toBe(`http://127.0.0.1:${server.port}`);

    const r = await get(`${server.address}/metrics`);
    expect(r.status).toBe(200);
    expect(r.type).toContain('text/plain');
    expect(sample(r.body, `wpgw_build_info{component="webhook",version="9.9.9",node="${process.versions.node}"}`)).toBe(
      1,
    );
    expect(r.body).toContain('# TYPE wpgw_admission_duration_seconds histogram');
    // The expiry gauges are the certificates actually served: the dev leaf and the dev CA.
    const leaf = new X509Certificate(running.tls.current().cert);
    expect(sample(r.body, 'wpgw_webhook_certificate_expiry_timestamp_seconds{certificate="serving"}')).toBe(
      Math.floor(leaf.validToDate.getTime() / 1000),
    );
    const ca = sample(r.body, 'wpgw_webhook_certificate_expiry_timestamp_seconds{certificate="ca"}');
    expect(ca).toBeGreaterThanOrEqual(Math.floor(leaf.validToDate.getTime() / 1000));

    expect((await get(`${server.address}/mutate`)).status).toBe(404);
    expect((await get(`${server.address}/healthz`)).status).toBe(404);
    expect((await get(`${server.address}/metrics`, 'POST')).status).toBe(405);
    expect((await get(`${server.address}/metrics?x=1`)).status).toBe(200);
  });

  it('a port in use fails start-up with the address named', async () => {
    const registry = createRegistry({ defaultMetrics: false });
    const first = await serveMetrics({ registry, host: '127.0.0.1', port: 0 });
    cleanups.push(() => first.close());
    await expect(serveMetrics({ registry, host: '127.0.0.1', port: first.port })).rejects.toThrow(
      /EADDRINUSE.*127\.0\.0\.1/,
    );
  });
});

describe('certificate expiry gauges', () => {
  it('report the earliest notAfter of a chain, and leave out what is not loaded or not a certificate', async () => {
    const a = await makePki();
    const registry = createRegistry({ defaultMetrics: false });
    let pems: () => { serving?: string; ca?: string } = () => ({ serving: a.leaf.cert + a.ca.cert, ca: 'garbage' });
    registerCertificateMetrics(registry, () => pems());
    const text = await registry.metrics();
    // The leaf (10 days) expires before its CA (30 days): the chain's earliest wins.
    expect(sample(text, 'wpgw_webhook_certificate_expiry_timestamp_seconds{certificate="serving"}')).toBe(
      Math.floor(new X509Certificate(a.leaf.cert).validToDate.getTime() / 1000),
    );
    expect(sample(text, 'wpgw_webhook_certificate_expiry_timestamp_seconds{certificate="ca"}')).toBeUndefined();
    pems = () => {
      throw new Error('no certificate loaded');
    };
    expect(
      sample(await registry.metrics(), 'wpgw_webhook_certificate_expiry_timestamp_seconds{certificate="serving"}'),
    ).toBeUndefined();
  });
});

describe('caBundle publication results', () => {
  it('counts patched, unchanged, not-owned, not-found and error', async () => {
    const registry = createRegistry({ defaultMetrics: false });
    const onResult = createCaBundleMetrics(registry);
    const api = new FakeWebhookConfigs();
    api.put(webhookConfig('wpgw', { 'app.kubernetes.io/managed-by': 'wpgw' }, [undefined]));
    api.put(webhookConfig('theirs', {}, [undefined]));
    const { logger } = captureLogs();
    const patcher = createCaBundlePatcher({ api, logger, onResult, sleep: async () => {} });
    expect(await patcher.ensure('PEM')).toBe('patched');
    expect(await patcher.ensure('PEM')).toBe('unchanged');
    expect(await createCaBundlePatcher({ api, logger, onResult, name: 'theirs' }).ensure('PEM')).toBe('not-owned');
    expect(await createCaBundlePatcher({ api, logger, onResult, name: 'gone' }).ensure('PEM')).toBe('not-found');
    api.failPatches.push(403); // not retryable: the patcher gives up at once
    await expect(patcher.ensure('PEM2')).rejects.toThrow(/injected failure/);
    const text = await registry.metrics();
    for (const result of ['patched', 'unchanged', 'not-owned', 'not-found', 'error']) {
      expect(sample(text, `wpgw_webhook_ca_bundle_patches_total{result="${result}"}`), result).toBe(1);
    }
  });
});
