// Prometheus registries: each process (webhook, controller) makes its own prom-client Registry, never
// the global one, so tests and several components in one process do not collide.

import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** A registry with the default process metrics (CPU, memory, event loop lag, ...). */
export function createRegistry(opts: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return registry;
}

/** `wpgw_build_info{component,version,node}` = 1: which build each scraped process runs. */
export function registerBuildInfo(registry: Registry, component: 'webhook' | 'controller', version: string): void {
  const info = new Gauge({
    name: 'wpgw_build_info',
    help: 'Always 1; the labels say which wpgw build and Node.js this process runs.',
    labelNames: ['component', 'version', 'node'] as const,
    registers: [registry],
  });
  info.set({ component, version, node: process.versions.node }, 1);
}
