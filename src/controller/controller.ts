// The companion controller runtime: caches (all replicas keep them warm), Lease-based leader
// election, a namespace work queue and workers that reconcile while this replica leads.
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { CONTROLLER_RESOURCES, ClusterCache } from '../cluster/cache.js';
import { RawKubeClient, errorMessage, type KubeRest } from '../cluster/client.js';
import { annotationsOf, isOptedIn } from '../cluster/objects.js';
import type { ReflectorStats } from '../cluster/reflector.js';
import { desiredNamespaceState } from '../core/desired.js';
import type { DesiredOptions } from '../core/desired-types.js';
import { scopeInUse } from '../core/desired/mesh.js';
import { istioRootNamespace } from '../core/desired/egress.js';
import { covers } from '../core/mesh-scope.js';
import { BatchWindows, DEFAULT_BATCH_WINDOWS, type BatchWindowOptions } from './batching.js';
import { DEFAULT_DESIRED_OPTIONS, LEASE_TIMINGS, RELIST_INTERVAL_MS, RETRY_DELAYS } from '../defaults.js';
import { EventRecorder } from './events.js';
import { LeaderElector } from './lease.js';
import { createControllerMetrics, type ControllerMetrics } from './metrics.js';
import { WorkQueue } from './queue.js';
import { ReconcileError, Reconciler, type DesiredFn } from './reconcile.js';
import { namespacesForEvent } from './routing.js';
import { NotLeaderError, Writer, type WriteCounts } from './writer.js';
import { ExternalResolver, type LookupFn } from './resolver.js';
import { ClusterRangeWatch } from '../cluster/cluster-ranges.js';

export interface ControllerOptions {
  /** Lease name in the controller's namespace. */
  leaseName: string;
  leaseDurationMs: number;
  renewIntervalMs: number;
  renewDeadlineMs: number;
  /** false: act as leader without a Lease (single replica, tests). */
  leaderElection: boolean;
  identity: string;
  /** Full relist period of every watch. */
  relistIntervalMs: number;
  /** Period at which every opted-in namespace is reconciled even without events. */
  resyncIntervalMs: number;
  workers: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Re-check period for namespaces whose objects need CRDs that are missing. */
  degradedRecheckMs: number;
  /** Events for a namespace within a window are handled by one reconcile (see batching.ts). */
  batching: BatchWindowOptions;
  desired: DesiredOptions;
  /** Override the desired-state function (tests). */
  desiredFn?: DesiredFn;
  /**
   * Who resolves external names: "pin" (default) the controller, checking every answer against the
   * egress ranges and pinning the ServiceEntries to it; "gateway" the gateway itself (resolution DNS).
   */
  externalNames: 'pin' | 'gateway';
  /** With "pin": how names are looked up (default: the system resolver), how often in-use names are re-resolved. */
  lookup?: LookupFn;
  externalRefreshMs: number;
  /** Watch Nodes for their pod CIDRs and addresses (false: `--discover-node-ranges=false`, no RBAC for nodes). */
  discoverNodeRanges: boolean;
  /** How long Node and ServiceCIDR changes are gathered before the cluster ranges are recomputed. */
  clusterRangesBatchMs: number;
}

export { DEFAULT_DESIRED_OPTIONS };

export function defaultControllerOptions(): ControllerOptions {
  return {
    leaseName: 'wpgw-controller',
    leaseDurationMs: LEASE_TIMINGS.durationMs,
    renewIntervalMs: LEASE_TIMINGS.renewIntervalMs,
    renewDeadlineMs: LEASE_TIMINGS.renewDeadlineMs,
    leaderElection: true,
    identity: `${hostname()}_${randomUUID().slice(0, 8)}`,
    relistIntervalMs: RELIST_INTERVAL_MS,
    resyncIntervalMs: RELIST_INTERVAL_MS,
    workers: 4,
    retryBaseMs: RETRY_DELAYS.baseMs,
    retryMaxMs: RETRY_DELAYS.maxMs,
    degradedRecheckMs: 30_000,
    batching: DEFAULT_BATCH_WINDOWS,
    desired: DEFAULT_DESIRED_OPTIONS,
    externalNames: 'pin',
    externalRefreshMs: 30_000,
    discoverNodeRanges: true,
    clusterRangesBatchMs: 1000,
  };
}

export interface StartControllerParams {
  kubeconfig: KubeConfig;
  /** Namespace the controller runs in (holds its Lease). */
  namespace: string;
  logger: Logger;
  registry: Registry;
  options?: Partial<Omit<ControllerOptions, 'desired'>> & { desired?: Partial<DesiredOptions> };
  /** REST client override (tests); defaults to one built from `kubeconfig`. */
  rest?: KubeRest;
}

export interface ControllerStats {
  identity: string;
  ready: boolean;
  leader: boolean;
  writes: WriteCounts;
  reconciles: Record<'ok' | 'degraded' | 'skipped' | 'error', number>;
  queue: { ready: number; processing: number; delayed: number };
  watchEvents: number;
  missingKinds: string[];
  caches: ReflectorStats[];
  /** Last failure per namespace (cleared on success). */
  failing: Record<string, string>;
}

export interface ControllerHandle {
  stop(): Promise<void>;
  /** Caches have synced (readiness). Followers are ready too. */
  ready(): boolean;
  isLeader(): boolean;
  stats(): ControllerStats;
  /** Enqueue every opted-in namespace and every namespace holding our objects. */
  resync(): void;
  /** Resolves true once ready, leading, and nothing is queued or in flight; false on timeout. */
  waitForIdle(timeoutMs?: number): Promise<boolean>;
  readonly cache: ClusterCache;
  readonly metrics: ControllerMetrics;
}

export function startController(params: StartControllerParams): ControllerHandle {
  const defaults = defaultControllerOptions();
  const opts: ControllerOptions = {
    ...defaults,
    ...params.options,
    desired: { ...defaults.desired, ...params.options?.desired },
  };
  const log = params.logger.child({ component: 'controller' });
  const rest = params.rest ?? new RawKubeClient(params.kubeconfig);
  const metrics = createControllerMetrics(params.registry);
  const cache = ClusterCache.fromKubeConfig(params.kubeconfig, {
    resources: CONTROLLER_RESOURCES,
    relistIntervalMs: opts.relistIntervalMs,
    logger: log,
    rest,
  });

  // The cluster's own ranges (Nodes, ServiceCIDRs): excepted from every gateway's external egress.
  const clusterRanges = ClusterRangeWatch.fromKubeConfig(params.kubeconfig, {
    nodes: opts.discoverNodeRanges,
    logger: log,
    relistIntervalMs: opts.relistIntervalMs,
    batchMs: opts.clusterRangesBatchMs,
    rest,
  });

  let elector: LeaderElector | undefined;
  const isLeader = (): boolean => (elector ? elector.isLeader() : true);
  const writer = new Writer(rest, { isLeader, metrics });
  const recorder = new EventRecorder(rest, writer, { instance: opts.identity, logger: log });
  const resolver =
    opts.externalNames === 'pin' ? new ExternalResolver(opts.lookup ? { lookup: opts.lookup } : {}) : undefined;
  const reconciler = new Reconciler({
    cache,
    writer,
    events: recorder,
    desired: opts.desiredFn ?? desiredNamespaceState,
    desiredOptions: opts.desired,
    logger: log,
    ...(resolver ? { resolver } : {}),
    clusterRanges,
  });
  const queue = new WorkQueue<string>({
    baseDelayMs: opts.retryBaseMs,
    maxDelayMs: opts.retryMaxMs,
    onDepth: (d) => metrics.queueDepth.set(d),
  });
  const windows = new BatchWindows(opts.batching);
  const counts: ControllerStats['reconciles'] = { ok: 0, degraded: 0, skipped: 0, error: 0 };
  const failing = new Map<string, string>();

  const optedInNamespaces = (): string[] =>
    cache
      .namespaces()
      .filter(isOptedIn)
      .map((n) => n.metadata?.name ?? '');
  const routing = {
    rootNamespace: istioRootNamespace(opts.desired),
    isOptedIn: (ns: string) => isOptedIn(cache.namespace(ns)),
    optedInNamespaces,
    meshWatchers: (ns: string) =>
      optedInNamespaces().filter((w) =>
        covers(scopeInUse(w, annotationsOf(cache.namespace(w)), cache.managedPods(w)), w, ns, ''),
      ),
  };
  const enqueueAll = (): void => {
    for (const ns of new Set([...optedInNamespaces(), ...cache.namespacesWithManagedObjects()])) queue.add(ns);
  };
  // A node came or went with a range nothing else covered: every gateway's egress policy follows
  // (the watch already batched the churn; unchanged policies are not written).
  clusterRanges.onChange(() => {
    if (isLeader()) for (const ns of optedInNamespaces()) queue.add(ns);
  });

  cache.on((e) => {
    metrics.watchEvents.inc({ resource: e.source, type: e.type });
    reconciler.observe(e.obj);
    if (e.resource === 'namespaces' && e.type === 'delete') {
      const gone = e.obj.metadata?.name ?? '';
      reconciler.forget(gone);
      windows.forget(gone);
    }
    // Followers only keep caches warm; a new leader enqueues everything anyway.
    if (!isLeader()) return;
    // A batching window: a rollout or a kubectl apply of many objects is one reconcile (and one
    // write per changed object), not one per watch event; longer while the namespace keeps changing.
    for (const ns of namespacesForEvent(e, routing)) queue.addAfter(ns, windows.delayFor(ns));
  });

  if (opts.leaderElection) {
    elector = new LeaderElector(rest, {
      namespace: params.namespace,
      name: opts.leaseName,
      identity: opts.identity,
      leaseDurationMs: opts.leaseDurationMs,
      renewIntervalMs: opts.renewIntervalMs,
      renewDeadlineMs: opts.renewDeadlineMs,
      logger: log,
      onStartedLeading: () => {
        metrics.leader.set(1);
        enqueueAll();
      },
      onStoppedLeading: () => metrics.leader.set(0),
    });
  } else {
    metrics.leader.set(1);
  }

  async function processOne(ns: string): Promise<void> {
    if (!isLeader()) return; // dropped: whoever leads next enqueues everything
    if (!cache.synced() || !cache.namespaceSynced(ns) || !clusterRanges.ready()) {
      // Reconciling from a partial cache could prune live objects: wait for the initial lists
      // (and for a namespace that just got opted in, for its own).
      queue.addAfter(ns, 1000);
      return;
    }
    const end = metrics.reconcileDuration.startTimer();
    try {
      const r = await reconciler.reconcile(ns);
      queue.forget(ns);
      failing.delete(ns);
      counts[r.outcome]++;
      metrics.reconciles.inc({ result: r.outcome });
      if (r.outcome !== 'skipped') metrics.conflicts.set({ namespace: ns }, r.conflicts);
      else metrics.conflicts.remove({ namespace: ns });
      for (const [reason, n] of Object.entries(r.refusedNames)) metrics.externalRefusals.inc({ reason }, n);
      const changed = r.applied.length + r.pruned.length + r.nudged.length + r.restarted.length;
      windows.reconciled(ns, changed > 0);
      // Events that came in while this reconcile wrote (its own writes' echoes, the rest of the
      // burst) join the busy window instead of the short one they were queued with.
      if (changed > 0) queue.postpone(ns, windows.delayFor(ns));
      if (r.outcome === 'degraded') queue.addAfter(ns, opts.degradedRecheckMs);
      if (r.recheckAfterMs !== undefined) queue.addAfter(ns, r.recheckAfterMs);
      (changed > 0 ? log.info.bind(log) : log.debug.bind(log))(
        {
          namespace: ns,
          applied: r.applied,
          unchanged: r.unchanged,
          pruned: r.pruned,
          nudged: r.nudged,
          restarted: r.restarted,
          conflicts: r.conflicts,
          outcome: r.outcome,
        },
        'reconciled',
      );
    } catch (err) {
      if (err instanceof NotLeaderError) {
        log.warn({ namespace: ns }, 'lost leadership during reconcile; stopped writing');
        return;
      }
      counts.error++;
      metrics.reconciles.inc({ result: 'error' });
      metrics.errors.inc();
      failing.set(ns, errorMessage(err));
      const delay = queue.addRateLimited(ns);
      log.warn(
        {
          namespace: ns,
          err: errorMessage(err),
          failures: err instanceof ReconcileError ? err.failures : undefined,
          retryInMs: delay,
        },
        'reconcile failed',
      );
    } finally {
      end();
    }
  }

  async function worker(): Promise<void> {
    for (;;) {
      const ns = await queue.get();
      if (ns === undefined) return;
      try {
        await processOne(ns);
      } catch (err) {
        log.error({ namespace: ns, err: errorMessage(err) }, 'unexpected worker error');
      } finally {
        queue.done(ns);
      }
    }
  }

  cache.start();
  clusterRanges.start();
  elector?.start();
  const workers = Array.from({ length: Math.max(1, opts.workers) }, () => worker());
  const resyncTimer = setInterval(() => {
    if (isLeader()) enqueueAll();
  }, opts.resyncIntervalMs);
  resyncTimer.unref();
  // Pinned names follow DNS: re-resolve what is in use, reconcile the namespaces whose answers changed.
  const refreshTimer = resolver
    ? setInterval(() => {
        if (!isLeader()) return;
        resolver
          .refresh()
          .then((changed) => changed.forEach((ns) => queue.add(ns)))
          .catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'external name refresh failed'));
      }, opts.externalRefreshMs)
    : undefined;
  refreshTimer?.unref();
  // Events from the initial lists enqueue most namespaces; this catches the rest once synced.
  void cache.waitForSync().then(() => {
    if (isLeader()) enqueueAll();
  });
  log.info(
    { identity: opts.identity, namespace: params.namespace, leaderElection: opts.leaderElection },
    'controller started',
  );

  let stopping: Promise<void> | undefined;
  return {
    cache,
    metrics,
    ready: () => cache.synced() && clusterRanges.ready(),
    isLeader,
    resync: () => {
      if (isLeader()) enqueueAll();
    },
    stats: () => ({
      identity: opts.identity,
      ready: cache.synced(),
      leader: isLeader(),
      writes: writer.writeCounts(),
      reconciles: { ...counts },
      queue: queue.stats(),
      watchEvents: cache.eventCount(),
      missingKinds: cache.missingKinds(),
      caches: cache.stats(),
      failing: Object.fromEntries(failing),
    }),
    async waitForIdle(timeoutMs = 30_000): Promise<boolean> {
      const deadline = Date.now() + timeoutMs;
      // Idle must hold for a moment: a write's watch event may still be on its way.
      let quietSince: number | undefined;
      while (Date.now() < deadline) {
        const idle = cache.synced() && isLeader() && queue.isIdle();
        if (idle) {
          quietSince ??= Date.now();
          if (Date.now() - quietSince >= 200) return true;
        } else {
          quietSince = undefined;
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      return false;
    },
    stop(): Promise<void> {
      stopping ??= (async () => {
        clearInterval(resyncTimer);
        clearInterval(refreshTimer);
        // Finish in-flight reconciles before giving up the Lease, so two replicas never write at once.
        queue.shutdown();
        await Promise.all(workers);
        await elector?.stop();
        metrics.leader.set(0);
        await cache.stop();
        await clusterRanges.stop();
        log.info('controller stopped');
      })();
      return stopping;
    },
  };
}
