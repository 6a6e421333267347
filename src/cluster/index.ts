// Watch-backed cluster caches and the AdmissionContext the webhook uses.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { AdmissionContext } from '../core/context.js';
import { cacheAdmissionContext } from './admission-context.js';
import { ClusterCache, WEBHOOK_CACHE, WEBHOOK_RESOURCES, WEBHOOK_SCOPED } from './cache.js';

export { cacheAdmissionContext, clusterIPOf } from './admission-context.js';
export {
  CONTROLLER_RESOURCES,
  ClusterCache,
  WEBHOOK_RESOURCES,
  WEBHOOK_SCOPED,
  type CacheEvent,
  type ClusterCacheOptions,
  type KubeCacheOptions,
  type ResourceKey,
} from './cache.js';
export { RawKubeClient, errorStatus, isNotFound, type KubeRest } from './client.js';
export { StartupError, checkApiServer, kubeconfigSource, loadKubeConfig, useKubeContext } from './preflight.js';
export { registerCacheMetrics } from './metrics.js';
export { Reflector, type ListWatchSource, type ReflectorOptions, type ReflectorStats } from './reflector.js';
export { isWindowsPodSpec, podTemplateOf } from './windows.js';

/** The webhook's cache (only what admission needs) and the AdmissionContext over it, started. */
export function startAdmissionCache(
  kc: KubeConfig,
  opts: { logger?: Logger; relistIntervalMs?: number } = {},
): { cache: ClusterCache; context: AdmissionContext } {
  const cache = ClusterCache.fromKubeConfig(kc, {
    ...WEBHOOK_CACHE,
    logger: opts.logger,
    relistIntervalMs: opts.relistIntervalMs,
  });
  cache.start();
  return { cache, context: cacheAdmissionContext(cache) };
}
