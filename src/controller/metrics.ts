// Controller metrics on a caller-supplied prom-client Registry (same pattern as src/webhook/metrics.ts).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface ControllerMetrics {
  reconciles: Counter<'result'>;
  reconcileDuration: Histogram<never>;
  writes: Counter<'verb' | 'kind'>;
  errors: Counter<never>;
  queueDepth: Gauge<never>;
  watchEvents: Counter<'resource' | 'type'>;
  leader: Gauge<never>;
  conflicts: Gauge<'namespace'>;
  externalRefusals: Counter<'reason'>;
}

export function createControllerMetrics(registry: Registry): ControllerMetrics {
  const registers = [registry];
  return {
    reconciles: new Counter({
      name: 'wpgw_controller_reconciles_total',
      help: 'Namespace reconciles by result (ok, error, degraded, skipped).',
      labelNames: ['result'] as const,
      registers,
    }),
    reconcileDuration: new Histogram({
      name: 'wpgw_controller_reconcile_duration_seconds',
      help: 'Duration of one namespace reconcile, API calls included.',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    writes: new Counter({
      name: 'wpgw_controller_writes_total',
      help: 'API writes made by the controller (apply, patch, delete, create Event). Lease renewals excluded.',
      labelNames: ['verb', 'kind'] as const,
      registers,
    }),
    errors: new Counter({
      name: 'wpgw_controller_errors_total',
      help: 'Failed reconciles (each is retried with backoff).',
      registers,
    }),
    queueDepth: new Gauge({
      name: 'wpgw_controller_queue_depth',
      help: 'Namespaces waiting to be reconciled.',
      registers,
    }),
    watchEvents: new Counter({
      name: 'wpgw_controller_watch_events_total',
      help: 'Cache events (watch and relist differences) handled, by resource and type.',
      labelNames: ['resource', 'type'] as const,
      registers,
    }),
    leader: new Gauge({
      name: 'wpgw_controller_is_leader',
      help: '1 while this replica holds the leader Lease.',
      registers,
    }),
    conflicts: new Gauge({
      name: 'wpgw_controller_conflicts',
      help: 'Conflicts the last reconcile of a namespace reported (Warning Events ConflictDetected; wpgw status lists them).',
      labelNames: ['namespace'] as const,
      registers,
    }),
    externalRefusals: new Counter({
      name: 'wpgw_controller_external_refusals_total',
      help: 'Declared external names not routed, counted per reconcile: ForbiddenAddress (an answer in link-local, loopback, metadata, private or cluster ranges), ExternalNameUnresolved (no address: the gateway cannot send it anywhere).',
      labelNames: ['reason'] as const,
      registers,
    }),
  };
}
