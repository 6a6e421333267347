// Watch-cache metrics of the webhook's ClusterCache (registered by src/commands/webhook.ts; the
// controller has its own wpgw_controller_watch_events_total).
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ClusterCache } from './cache.js';

export function registerCacheMetrics(registry: Registry, cache: ClusterCache, prefix = 'wpgw_webhook'): void {
  const events = new Counter({
    name: `${prefix}_watch_events_total`,
    help: 'Cache events (watch and relist differences) handled, by resource and type.',
    labelNames: ['resource', 'type'] as const,
    registers: [registry],
  });
  cache.on((e) => events.inc({ resource: e.source, type: e.type }));
  new Gauge({
    name: `${prefix}_cache_synced`,
    help: '1 once every watched resource has completed its initial list.',
    registers: [registry],
    collect() {
      this.set(cache.synced() ? 1 : 0);
    },
  });
  new Gauge({
    name: `${prefix}_cache_missing_kinds`,
    help: 'Watched kinds the API server does not serve (missing CRDs).',
    registers: [registry],
    collect() {
      this.set(cache.missingKinds().length);
    },
  });
}
