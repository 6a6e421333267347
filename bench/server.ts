// One benchmark server per process, so each has its own core, heap and peak RSS:
//   node dist/bench/server.js --mode wpgw   --cert-dir DIR                the built webhook: startWebhook
//                                                                         ('dev' TLS in DIR) + the real admit()
//                                                                         over a static context
//   node dist/bench/server.js --mode cached --cert-dir DIR --namespaces N the same over the production
//                                                                         CacheAdmissionContext holding N namespaces
//   node dist/bench/server.js --mode floor  --cert-dir DIR                the floor: fastify over the same
//                                                                         certificate answering a fixed allowed
//                                                                         AdmissionResponse (parse JSON, echo uid)
// Started by run.ts with an IPC channel; reports {port, ...} when listening and exits when the
// parent disconnects. Listens on 127.0.0.1 only.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fastify } from 'fastify';
import { admit } from '../src/core/admission.js';
import type { AdmissionHandler } from '../src/core/admission-types.js';
import type { AdmissionContext } from '../src/core/context.js';
import { createLogger } from '../src/telemetry/index.js';
import { webhookIdentity } from '../src/tls/index.js';
import { startWebhook, DEFAULT_BODY_LIMIT_BYTES } from '../src/webhook/index.js';
import { TLS_MIN_VERSION } from '../src/tls/tls.js';
import { cachedBenchContext, staticBenchContext } from './context.js';

export interface ServerReady {
  port: number;
  mode: string;
  /** For the cached mode: objects in the cache and how long filling it took. */
  objects?: number;
  fillMs?: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      mode: { type: 'string' },
      'cert-dir': { type: 'string' },
      namespaces: { type: 'string' },
    },
  });
  const mode = values.mode;
  const certDir = values['cert-dir'];
  if (!certDir || (mode !== 'wpgw' && mode !== 'cached' && mode !== 'floor')) {
    throw new Error('usage: server.js --mode wpgw|cached|floor --cert-dir DIR [--namespaces N]');
  }
  let ready: ServerReady;
  let close: () => Promise<void>;

  if (mode === 'floor') {
    // Same certificate and key, same TLS floor (TLSv1.2+, Node's default cipher list), same fastify
    // defaults for keep-alive, same body limit and secure JSON parsing; no logging, no metrics.
    const [cert, key] = await Promise.all([
      readFile(join(certDir, 'tls.crt'), 'utf8'),
      readFile(join(certDir, 'tls.key'), 'utf8'),
    ]);
    const app = fastify({
      https: { cert, key, minVersion: TLS_MIN_VERSION },
      logger: false,
      bodyLimit: DEFAULT_BODY_LIMIT_BYTES,
      requestTimeout: 30_000,
      onProtoPoisoning: 'error',
      onConstructorPoisoning: 'error',
    });
    app.post('/mutate', async (request, reply) => {
      const uid = (request.body as { request?: { uid?: unknown } } | null)?.request?.uid;
      return reply
        .code(200)
        .type('application/json')
        .send({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          response: { uid: typeof uid === 'string' ? uid : '', allowed: true },
        });
    });
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    ready = { port: Number(new URL(address).port), mode };
    close = () => app.close();
  } else {
    let context: AdmissionContext;
    let extra: Partial<ServerReady> = {};
    let stopCache = async (): Promise<void> => {};
    if (mode === 'cached') {
      const n = Number(values.namespaces ?? '10');
      const t0 = performance.now();
      const c = await cachedBenchContext(n);
      context = c.context;
      stopCache = () => c.cache.stop();
      extra = { objects: c.objects, fillMs: Math.round(performance.now() - t0) };
    } else {
      context = staticBenchContext();
    }
    // As `wpgw webhook --dev` wires it (src/commands/webhook.ts), minus the dev-only memory:
    // info-level JSON logs to stdout (the parent points stdout at /dev/null), default metrics.
    const handler: AdmissionHandler = (body) => admit(body, context, { clusterDomain: 'cluster.local' });
    const identity = webhookIdentity({
      service: 'wpgw-webhook',
      namespace: 'wpgw-system',
      clusterDomain: 'cluster.local',
      extraNames: ['localhost', '127.0.0.1'],
    });
    const running = await startWebhook({
      handler,
      logger: createLogger(),
      tls: { mode: 'dev', dir: certDir, identity },
      host: '127.0.0.1',
      port: 0,
    });
    ready = { port: Number(new URL(running.address).port), mode, ...extra };
    close = async () => {
      await running.close();
      await stopCache();
    };
  }

  const stop = (): void => {
    void close().finally(() => process.exit(0));
  };
  process.on('disconnect', stop);
  process.on('SIGTERM', stop);
  if (process.send) process.send({ type: 'ready', ...ready });
  else process.stderr.write(`${JSON.stringify(ready)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench server failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
