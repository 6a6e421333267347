// Logging and Prometheus plumbing shared by the webhook and the controller.

export { createLogger, type Logger } from './logger.js';
export { createRegistry, registerBuildInfo } from './registry.js';
export { serveMetrics, type MetricsServer } from './metrics-server.js';
