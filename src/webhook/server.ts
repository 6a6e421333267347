// The webhook's HTTPS server: fastify over TLS only (>= 1.2), routes /mutate, /healthz, /readyz,
// /metrics. Certificates come from a TlsSource and are swapped in place with setSecureContext,
// so rotation never restarts the listener or drops established connections.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { type FastifyInstance, fastify, LogController } from 'fastify';
import type { Logger } from 'pino';
import type { AdmissionHandler } from '../core/admission-types.js';
import { describeRequestError } from './http-errors.js';
import type { WebhookMetrics } from './metrics.js';
import { registerMutateRoute } from './mutate-route.js';
import { TLS_MIN_VERSION, type TlsMaterial, type TlsSource, validateTlsMaterial } from '../tls/tls.js';

/** The API server caps request bodies at 3 MiB; an AdmissionReview can be that large (object + oldObject). */
export const DEFAULT_BODY_LIMIT_BYTES = 3 * 1024 * 1024;

export interface WebhookServerOptions {
  handler: AdmissionHandler;
  /** /readyz answers 200 only while this returns true. */
  ready: () => boolean;
  tls: TlsSource;
  logger: Logger;
  metrics: WebhookMetrics;
  bodyLimitBytes?: number;
}

export type WebhookServer = FastifyInstance<HttpsServer, IncomingMessage, ServerResponse, Logger>;

/** Build the server (not listening yet): `await app.listen({ host, port })`, `await app.close()`. */
export function createWebhookServer(opts: WebhookServerOptions): WebhookServer {
  const bodyLimit = opts.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  const initial = opts.tls.current();
  const app = fastify({
    https: { cert: initial.cert, key: initial.key, minVersion: TLS_MIN_VERSION },
    loggerInstance: opts.logger,
    // Admissions get their own log line (mutate-route.ts) and everything else a debug line (below);
    // fastify's two info lines per request would be noise for probes and scrapes.
    logController: new LogController({ disableRequestLogging: true }),
    // No per-request child logger: pino's child() serializes its bindings on every request, a
    // measurable share of a small admission (bench/README.md). Admission lines carry the
    // AdmissionReview uid, which is what an operator correlates with API server audit logs.
    childLoggerFactory: (logger) => logger,
    bodyLimit,
    // API server webhook timeouts are at most 30 s; do not hold sockets for slow senders beyond that.
    requestTimeout: 30_000,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
  });

  const unsubscribe = opts.tls.onChange((m) => applyTls(app, m));
  app.addHook('onClose', async () => unsubscribe());

  // Only when debug is on: an async hook costs a promise per request even when it logs nothing.
  if (opts.logger.isLevelEnabled('debug')) {
    app.addHook('onResponse', async (request, reply) => {
      request.log.debug(
        { method: request.method, url: request.url, statusCode: reply.statusCode, latency_ms: reply.elapsedTime },
        'request',
      );
    });
  }

  app.setErrorHandler((err, request, reply) => {
    const { status, message } = describeRequestError(err, bodyLimit);
    if (request.routeOptions.url === '/mutate') {
      opts.metrics.admission.badRequests.inc({ status: String(status) });
    }
    if (status >= 500) request.log.error({ err }, 'request failed');
    else request.log.warn({ status, error: message, url: request.url }, 'bad request');
    return reply.code(status).type('application/json').send({ error: message });
  });

  app.get('/healthz', async (_request, reply) => reply.type('text/plain').send('ok'));
  app.get('/readyz', async (_request, reply) => {
    const ready = safeReady(opts.ready);
    return reply
      .code(ready ? 200 : 503)
      .type('text/plain')
      .send(ready ? 'ok' : 'not ready');
  });
  app.get('/metrics', async (_request, reply) => {
    return reply.type(opts.metrics.registry.contentType).send(await opts.metrics.registry.metrics());
  });

  registerMutateRoute(app, { handler: opts.handler, metrics: opts.metrics.admission, bodyLimit });
  return app;
}

/** Swap the certificate of the running server; a pair that does not load keeps the old one. */
function applyTls(app: WebhookServer, material: TlsMaterial): void {
  try {
    validateTlsMaterial(material);
    // minVersion again: the replacement context is built from these options.
    app.server.setSecureContext({ cert: material.cert, key: material.key, minVersion: TLS_MIN_VERSION });
    app.log.info('serving certificate swapped');
  } catch (err) {
    app.log.error({ err }, 'could not apply the new certificate; keeping the current one');
  }
}

function safeReady(ready: () => boolean): boolean {
  try {
    return ready() === true;
  } catch {
    return false;
  }
}
