// The companion controller and `wpgw status`.
export { DEFAULT_DESIRED_OPTIONS, defaultControllerOptions, startController, type ControllerHandle, type ControllerOptions, type ControllerStats, type StartControllerParams } from './controller.js';
export { createControllerMetrics, type ControllerMetrics } from './metrics.js';
export { collectStatus, formatStatus, summarizeNamespace, type NamespaceStatus, type StatusReport, type StatusOptions } from './status.js';
