// The companion controller.
export {
  DEFAULT_DESIRED_OPTIONS,
  defaultControllerOptions,
  startController,
  type ControllerHandle,
  type ControllerOptions,
  type ControllerStats,
  type StartControllerParams,
} from './controller.js';
export { createControllerMetrics, type ControllerMetrics } from './metrics.js';
