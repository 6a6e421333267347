// Public API of the webhook edge, for the CLI (src/commands/webhook.ts) and the benchmarks.

export {
  startWebhook,
  createTlsSource,
  type StartWebhookOptions,
  type RunningWebhook,
  type WebhookTlsConfig,
} from './start.js';
export {
  createWebhookServer,
  DEFAULT_BODY_LIMIT_BYTES,
  type WebhookServer,
  type WebhookServerOptions,
} from './server.js';
export { createMetrics, createAdmissionMetrics, type WebhookMetrics, type AdmissionMetrics } from './metrics.js';
