// Public API of the webhook edge, for the CLI (src/commands/webhook.ts) and the controller.

export { startWebhook, createTlsSource, type StartWebhookOptions, type RunningWebhook, type WebhookTlsConfig } from './start.js';
export { createWebhookServer, DEFAULT_BODY_LIMIT_BYTES, type WebhookServer, type WebhookServerOptions } from './server.js';
export { createMetrics, createRegistry, createAdmissionMetrics, type WebhookMetrics, type AdmissionMetrics } from './metrics.js';
export { createLogger, type Logger } from './logger.js';
export { webhookIdentity, serviceDnsNames, type CertIdentity } from './certs.js';
export { staticTlsSource, type TlsSource, type TlsMaterial } from './tls.js';
export { createFileTlsSource } from './file-tls.js';
export { startManagedTls, type ManagedTls } from './managed-tls.js';
export { dirCertStore } from './dir-store.js';
export { secretCertStore } from './secret-store.js';
export { createCaBundlePatcher, DEFAULT_WEBHOOK_CONFIG_NAME } from './ca-bundle.js';
export { DEFAULT_ROTATION_POLICY, type RotationPolicy } from './rotation.js';
export { serveMetrics, type MetricsServer } from './metrics-server.js';
export { registerBuildInfo } from './metrics.js';
