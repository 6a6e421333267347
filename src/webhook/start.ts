// Wiring for the `webhook` command: pick a certificate source, build the server, listen.
//   files  --tls-cert-file/--tls-key-file, hot reloaded (cert-manager or any mounted Secret)
//   dev    self-generated CA + leaf in a directory (certs/), reused while valid
//   secret cluster mode: CA + leaf shared by replicas through a Secret, rotated, and the CA
//          bundle patched into our MutatingWebhookConfiguration

import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { RawKubeClient } from '../cluster/client.js';
import type { AdmissionHandler } from '../core/admission-types.js';
import { createCaBundlePatcher, DEFAULT_WEBHOOK_CONFIG_NAME } from '../tls/ca-bundle.js';
import type { CertIdentity } from '../tls/certs.js';
import { dirCertStore } from '../tls/dir-store.js';
import { createFileTlsSource } from '../tls/file-tls.js';
import { type ManagedTls, startManagedTls } from '../tls/managed-tls.js';
import { createCaBundleMetrics, createMetrics, registerCertificateMetrics, type WebhookMetrics } from './metrics.js';
import type { RotationPolicy } from '../tls/rotation.js';
import { secretCertStore } from '../tls/secret-store.js';
import { createWebhookServer, type WebhookServer } from './server.js';
import type { TlsSource } from '../tls/tls.js';

export type WebhookTlsConfig =
  | { mode: 'files'; certFile: string; keyFile: string; pollIntervalMs?: number }
  | { mode: 'dev'; dir: string; identity: CertIdentity; policy?: RotationPolicy }
  | {
      mode: 'secret';
      kubeConfig: KubeConfig;
      namespace: string;
      secretName: string;
      identity: CertIdentity;
      /** MutatingWebhookConfiguration whose caBundle we keep current (default "wpgw"); null: someone else does. */
      webhookConfigName?: string | null;
      policy?: RotationPolicy;
      intervalMs?: number;
    };

export interface StartWebhookOptions {
  handler: AdmissionHandler;
  logger: Logger;
  tls: WebhookTlsConfig;
  host?: string;
  port?: number;
  /** The registry and admission metrics to serve (default: new ones); the command registers more on it. */
  metrics?: WebhookMetrics;
  ready?: () => boolean;
  bodyLimitBytes?: number;
}

export interface RunningWebhook {
  app: WebhookServer;
  tls: TlsSource;
  /** e.g. https://127.0.0.1:8443 */
  address: string;
  metrics: WebhookMetrics;
  close(): Promise<void>;
}

export async function createTlsSource(
  cfg: WebhookTlsConfig,
  logger: Logger,
  metrics?: WebhookMetrics,
): Promise<TlsSource> {
  switch (cfg.mode) {
    case 'files':
      return createFileTlsSource({
        certFile: cfg.certFile,
        keyFile: cfg.keyFile,
        logger,
        ...(cfg.pollIntervalMs ? { intervalMs: cfg.pollIntervalMs } : {}),
      });
    case 'dev': {
      const tls = await startManagedTls({
        store: dirCertStore(cfg.dir),
        identity: cfg.identity,
        logger,
        ...(cfg.policy ? { policy: cfg.policy } : {}),
      });
      logger.info({ caFile: `${cfg.dir}/ca.crt` }, 'dev certificates ready; trust this CA file');
      return tls;
    }
    case 'secret': {
      const webhookConfigName =
        cfg.webhookConfigName === undefined ? DEFAULT_WEBHOOK_CONFIG_NAME : cfg.webhookConfigName;
      const api = new RawKubeClient(cfg.kubeConfig);
      const patcher =
        webhookConfigName === null
          ? undefined
          : createCaBundlePatcher({
              api,
              logger,
              name: webhookConfigName,
              ...(metrics ? { onResult: createCaBundleMetrics(metrics.registry) } : {}),
            });
      return startManagedTls({
        store: secretCertStore(api, { namespace: cfg.namespace, name: cfg.secretName }),
        identity: cfg.identity,
        logger,
        ...(patcher ? { publishBundle: (b: string) => patcher.publish(b) } : {}),
        ...(cfg.policy ? { policy: cfg.policy } : {}),
        ...(cfg.intervalMs ? { intervalMs: cfg.intervalMs } : {}),
      });
    }
  }
}

export async function startWebhook(opts: StartWebhookOptions): Promise<RunningWebhook> {
  const metrics = opts.metrics ?? createMetrics();
  const tls = await createTlsSource(opts.tls, opts.logger, metrics);
  registerCertificateMetrics(metrics.registry, () => ({
    serving: tls.current().cert,
    ...('caBundle' in tls ? { ca: (tls as ManagedTls).caBundle() } : {}),
  }));
  const app = createWebhookServer({
    handler: opts.handler,
    ready: opts.ready ?? (() => true),
    tls,
    logger: opts.logger,
    metrics,
    ...(opts.bodyLimitBytes ? { bodyLimitBytes: opts.bodyLimitBytes } : {}),
  });
  try {
    const address = await app.listen({ host: opts.host ?? '0.0.0.0', port: opts.port ?? 8443 });
    return {
      app,
      tls,
      address,
      metrics,
      async close() {
        await app.close();
        tls.close();
      },
    };
  } catch (err) {
    tls.close();
    throw err;
  }
}
