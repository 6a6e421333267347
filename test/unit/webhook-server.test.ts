// The real HTTPS server on 127.0.0.1:0 with a generated CA + leaf, exercised by real clients.

import { X509Certificate } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import { Server as TlsServer, createServer as createTlsServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, type WebhookMetrics } from '../../src/webhook/metrics.js';
import { createWebhookServer, DEFAULT_BODY_LIMIT_BYTES, type WebhookServer } from '../../src/webhook/server.js';
import { staticTlsSource } from '../../src/tls/tls.js';
import { MESSAGES } from '../../src/webhook/http-errors.js';
import {
  captureLogs,
  handshake,
  httpsCall,
  makePki,
  postJson,
  review,
  sample,
  stubHandler,
} from './webhook-helpers.js';

let app: WebhookServer;
let port: number;
let ca: string;
let leafPem: string;
let metrics: WebhookMetrics;
let ready = true;
const logs = captureLogs();

beforeAll(async () => {
  const pki = await makePki();
  ca = pki.ca.cert;
  leafPem = pki.leaf.cert;
  metrics = createMetrics();
  app = createWebhookServer({
    handler: stubHandler,
    ready: () => ready,
    tls: staticTlsSource(pki.leaf),
    logger: logs.logger,
    metrics,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  port = addr.port;
});

afterAll(async () => {
  await app.close();
});

const metricsText = async (): Promise<string> => (await httpsCall(port, { path: '/metrics', ca })).body;

describe('POST /mutate', () => {
  it('answers 200 with the review from the handler', async () => {
    const res = await postJson(port, ca, review({ uid: 'abc' }));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const body = res.json() as { kind: string; response: { uid: string; allowed: boolean; patchType: string } };
    expect(body.kind).toBe('AdmissionReview');
    expect(body.response).toMatchObject({ uid: 'abc', allowed: true, patchType: 'JSONPatch' });
  });

  it.each(['application/json; charset=utf-8', 'Application/JSON', 'application/json ;charset=utf-8'])(
    'accepts the content type %s (parameters, any case)',
    async (type) => {
      const res = await postJson(port, ca, review(), { 'content-type': type });
      expect(res.status).toBe(200);
    },
  );

  it.each([
    ['text/plain', 'text/plain'],
    ['application/x-www-form-urlencoded', 'application/x-www-form-urlencoded'],
    ['a near miss', 'application/jsonx'],
  ])('rejects %s with 415 and a specific message', async (_label, type) => {
    const res = await postJson(port, ca, review(), { 'content-type': type });
    expect(res.status).toBe(415);
    expect(res.json()).toEqual({ error: MESSAGES.unsupportedMediaType });
  });

  it('rejects a body without a content type with 415', async () => {
    const withBody = await httpsCall(port, { method: 'POST', path: '/mutate', body: JSON.stringify(review()), ca });
    expect(withBody.status).toBe(415);
    const empty = await httpsCall(port, { method: 'POST', path: '/mutate', ca });
    expect(empty.status).toBe(415);
    expect(empty.json()).toEqual({ error: MESSAGES.unsupportedMediaType });
  });

  it('rejects unparseable JSON with 400 and a specific message', async () => {
    const res = await postJson(port, ca, '{"apiVersion": "admission.k8s.io/v1",');
    expect(res.status).toBe(400);
    expect(res.json()).toEqual({ error: MESSAGES.invalidJson });
  });

  it('rejects an empty JSON body with 400', async () => {
    const res = await postJson(port, ca, '');
    expect(res.status).toBe(400);
    expect(res.json()).toEqual({ error: MESSAGES.emptyBody });
  });

  it.each([
    ['__proto__', '{"request":{"uid":"x","object":{"__proto__":{"polluted":true}}}}'],
    ['constructor.prototype', '{"request":{"uid":"x","object":{"constructor":{"prototype":{"polluted":true}}}}}'],
  ])('rejects a %s key with 400 and never pollutes prototypes', async (_label, body) => {
    const res = await postJson(port, ca, body);
    expect(res.status).toBe(400);
    expect(res.json()).toEqual({ error: MESSAGES.protoPoisoning });
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('answers 413 above the default 3 MiB limit and accepts a body just under it', async () => {
    expect(DEFAULT_BODY_LIMIT_BYTES).toBe(3 * 1024 * 1024);
    const big = (size: number): string => {
      const base = JSON.stringify(review({ uid: 'big' }));
      const pad = size - base.length - '"pad":"",'.length;
      return base.replace('{', `{"pad":"${'x'.repeat(pad)}",`);
    };
    const under = big(DEFAULT_BODY_LIMIT_BYTES - 1024);
    expect(Buffer.byteLength(under)).toBe(DEFAULT_BODY_LIMIT_BYTES - 1024);
    expect((await postJson(port, ca, under)).status).toBe(200);

    const over = big(DEFAULT_BODY_LIMIT_BYTES + 1);
    const res = await postJson(port, ca, over);
    expect(res.status).toBe(413);
    expect(res.json()).toEqual({ error: MESSAGES.bodyTooLarge(DEFAULT_BODY_LIMIT_BYTES) });
  });

  it('passes a handler rejection through as 400 {error}', async () => {
    const res = await postJson(port, ca, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: {} });
    expect(res.status).toBe(400);
    expect(res.json()).toEqual({ error: 'request.uid is missing' });
  });

  it('turns a throwing handler into a generic 500, logs it, and keeps serving', async () => {
    const res = await postJson(port, ca, review({ kind: 'Boom', uid: 'boom-1' }));
    expect(res.status).toBe(500);
    expect(res.json()).toEqual({ error: MESSAGES.internal });
    expect(res.body).not.toContain('kaboom');
    const errorLine = logs.lines().find((l) => l['msg'] === 'admission handler failed' && l['uid'] === 'boom-1');
    expect(errorLine).toMatchObject({ level: 'error', err: { message: 'kaboom' } });

    expect((await postJson(port, ca, review({ uid: 'after-boom' }))).status).toBe(200);
    expect((await httpsCall(port, { path: '/healthz', ca })).status).toBe(200);
  });

  it('turns a malformed handler result into a 500', async () => {
    const res = await postJson(port, ca, review({ kind: 'Garbage' }));
    expect(res.status).toBe(500);
    expect(res.json()).toEqual({ error: MESSAGES.internal });
  });

  it('writes one JSON log line per admission with the decision fields', async () => {
    await postJson(port, ca, review({ uid: 'log-me', name: 'logged-pod', operation: 'UPDATE' }));
    const lines = logs.lines().filter((l) => l['msg'] === 'admission' && l['uid'] === 'log-me');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 'info',
      uid: 'log-me',
      kind: 'Pod',
      namespace: 'apps',
      name: 'logged-pod',
      operation: 'UPDATE',
      decision: 'patched',
      reason: 'injected',
      warnings: 1,
    });
    expect(typeof lines[0]?.['latency_ms']).toBe('number');
  });
});

describe('probes and metrics', () => {
  it('GET /healthz is 200', async () => {
    const res = await httpsCall(port, { path: '/healthz', ca });
    expect(res.status).toBe(200);
  });

  it('GET /readyz follows ready()', async () => {
    expect((await httpsCall(port, { path: '/readyz', ca })).status).toBe(200);
    ready = false;
    try {
      expect((await httpsCall(port, { path: '/readyz', ca })).status).toBe(503);
    } finally {
      ready = true;
    }
    expect((await httpsCall(port, { path: '/readyz', ca })).status).toBe(200);
  });

  it('probe requests do not log above debug', async () => {
    await httpsCall(port, { path: '/healthz', ca });
    const probeLines = logs.lines().filter((l) => l['url'] === '/healthz');
    expect(probeLines.length).toBeGreaterThan(0);
    expect(probeLines.every((l) => l['level'] === 'debug')).toBe(true);
  });

  it('GET /metrics serves Prometheus text from a dedicated registry, and counters move', async () => {
    const before = await metricsText();
    const series = {
      requests: 'wpgw_admission_requests_total{kind="Pod",operation="DELETE"}',
      decisions: 'wpgw_admission_decisions_total{kind="Pod",decision="patched",reason="injected"}',
      bad415: 'wpgw_admission_bad_requests_total{status="415"}',
      bad400: 'wpgw_admission_bad_requests_total{status="400"}',
      bad500: 'wpgw_admission_bad_requests_total{status="500"}',
      durationCount: 'wpgw_admission_duration_seconds_count',
    };
    const b = Object.fromEntries(Object.entries(series).map(([k, s]) => [k, sample(before, s) ?? 0]));

    await postJson(port, ca, review({ operation: 'DELETE' }));
    await postJson(port, ca, review(), { 'content-type': 'text/plain' });
    await postJson(port, ca, '{nope');
    await postJson(port, ca, review({ kind: 'Boom' }));

    const res = await httpsCall(port, { path: '/metrics', ca });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const after = res.body;
    expect(sample(after, series.requests)).toBe(b['requests']! + 1);
    expect(sample(after, series.decisions)).toBeGreaterThanOrEqual(b['decisions']! + 1);
    expect(sample(after, series.bad415)).toBe(b['bad415']! + 1);
    expect(sample(after, series.bad400)).toBe(b['bad400']! + 1);
    expect(sample(after, series.bad500)).toBe(b['bad500']! + 1);
    expect(sample(after, series.durationCount)).toBeGreaterThan(b['durationCount']!);
    expect(after).toContain('wpgw_admission_duration_seconds_bucket{le="0.0005"}');
    expect(after).toContain('wpgw_admission_handler_errors_total');
    // default process metrics
    expect(after).toContain('process_cpu_user_seconds_total');
    expect(after).toContain('nodejs_eventloop_lag_seconds');
  });

  it('bounds label values taken from requests', async () => {
    await postJson(port, ca, review({ kind: 'Weird Kind{}"' }));
    const text = await metricsText();
    expect(text).toContain('wpgw_admission_requests_total{kind="invalid",operation="CREATE"}');
    expect(text).not.toContain('Weird Kind');
  });
});

describe('TLS edge', () => {
  it('serves the configured leaf, verifiable with the CA', async () => {
    const hs = await handshake(port, { ca });
    expect(hs.ok).toBe(true);
    expect(hs.cert?.fingerprint256).toBe(new X509Certificate(leafPem).fingerprint256);
  });

  it('fails verification for a client that does not trust the CA', async () => {
    const hs = await handshake(port, {});
    expect(hs.ok).toBe(false);
  });

  it('negotiates TLS 1.2 and 1.3', async () => {
    expect((await handshake(port, { ca, maxVersion: 'TLSv1.2' })).protocol).toBe('TLSv1.2');
    expect((await handshake(port, { ca })).protocol).toBe('TLSv1.3');
  });

  it('refuses a TLS 1.1 client', async () => {
    const hs = await handshake(port, {
      ca,
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT:@SECLEVEL=0',
    });
    expect(hs.ok).toBe(false);
  });

  it('(control) the same TLS 1.1 client can talk to a server that allows TLS 1.1', async () => {
    // Proves the refusal above comes from the webhook's minVersion, not from the client alone.
    const pki = await makePki();
    const permissive = createTlsServer({ ...pki.leaf, minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' }, (s) =>
      s.end(),
    );
    await new Promise<void>((r) => permissive.listen(0, '127.0.0.1', r));
    const p = (permissive.address() as { port: number }).port;
    try {
      const hs = await handshake(p, {
        ca: pki.ca.cert,
        minVersion: 'TLSv1',
        maxVersion: 'TLSv1.1',
        ciphers: 'DEFAULT:@SECLEVEL=0',
      });
      expect(hs).toMatchObject({ ok: true, protocol: 'TLSv1.1' });
    } finally {
      permissive.close();
    }
  });

  it('gives plain HTTP no HTTP response', async () => {
    const received = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const s = netConnect(port, '127.0.0.1', () => s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('close', () => resolve(Buffer.concat(chunks)));
      s.on('error', () => resolve(Buffer.concat(chunks)));
      setTimeout(() => reject(new Error('socket stayed open')), 5_000).unref();
    });
    expect(received.toString('latin1')).not.toMatch(/HTTP\/1/);
    // Whatever came back is not a cleartext page: at most a TLS alert record (content type 21).
    if (received.length > 0) expect(received[0]).toBe(21);
  });

  it('the listener is a TLS server', () => {
    expect(app.server).toBeInstanceOf(TlsServer);
  });
});
