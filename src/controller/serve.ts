// The controller's HTTPS endpoint: /healthz, /readyz, /metrics. TLS everywhere, so it serves a
// self-signed certificate generated at start (Prometheus scrapes it with its own TLS config);
// --tls-cert-file/--tls-key-file serve a real one instead.
import { readFileSync } from 'node:fs';
import fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { generateCa, generateLeaf } from '../tls/certs.js';
import { TLS_MIN_VERSION, type TlsMaterial } from '../tls/tls.js';

export interface ControllerEndpointOptions {
  registry: Registry;
  ready: () => boolean;
  host: string;
  port: number;
  certFile?: string;
  keyFile?: string;
}

export async function serveControllerEndpoint(
  opts: ControllerEndpointOptions,
): Promise<{ app: FastifyInstance; address: string }> {
  const tls =
    opts.certFile && opts.keyFile
      ? { cert: readFileSync(opts.certFile, 'utf8'), key: readFileSync(opts.keyFile, 'utf8') }
      : await selfSigned();
  const app = fastify({ https: { ...tls, minVersion: TLS_MIN_VERSION } });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) =>
    opts.ready() ? { status: 'ready' } : reply.code(503).send({ status: 'not ready' }),
  );
  app.get('/metrics', async (_req, reply) => reply.type(opts.registry.contentType).send(await opts.registry.metrics()));
  const address = await app.listen({ host: opts.host, port: opts.port });
  return { app, address };
}

async function selfSigned(): Promise<TlsMaterial> {
  const now = new Date();
  const ca = await generateCa({ now, validityMs: 365 * 86_400_000, commonNamePrefix: 'wpgw-controller-ca' });
  const leaf = await generateLeaf({
    ca,
    identity: { dnsNames: ['localhost', 'wpgw-controller'], ipAddresses: ['127.0.0.1'] },
    now,
    validityMs: 364 * 86_400_000,
  });
  return { cert: leaf.cert, key: leaf.key };
}
