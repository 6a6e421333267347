// The cluster's own ranges, discovered where the API offers them: a slim watch of Nodes (pod
// CIDRs, InternalIP/ExternalIP) and of ServiceCIDRs (networking.k8s.io/v1, k8s 1.33+). Both are
// optional: a 404 (older API server) or 403 (no grant) leaves them empty and is said once in the
// log and in `discovery()` (the controller's egress report, `wpgw status`). Node heartbeats
// update Nodes often; the derived set is recomputed at most once per `batchMs` and `onChange`
// fires only when it differs, so churn that changes no range reconciles nothing.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import {
  mergeRanges,
  nodeRanges,
  serviceCidrRanges,
  type DiscoveredRange,
  type NodeLike,
  type ServiceCIDRLike,
} from '../core/cluster-ranges.js';
import type { RangeDiscovery } from '../core/desired/egress-report.js';
import { RawKubeClient, type KubeRest } from './client.js';
import { kindInfo } from './kinds.js';
import { KubeListWatchSource } from './kube-source.js';
import { Reflector, type ListWatchSource } from './reflector.js';
import { slimObject } from './slim.js';
import type { KubeObjectLike } from './store.js';

export interface ClusterRangeWatchOptions {
  /** false: no Node watch (`--discover-node-ranges=false`, no RBAC for nodes). */
  nodes: boolean;
  logger?: Logger;
  relistIntervalMs?: number;
  /** How long events are gathered before the set is recomputed (default 1 s). */
  batchMs?: number;
  /** Sources (tests); default: the API server. */
  sourceFactory?: (kind: 'Node' | 'ServiceCIDR') => ListWatchSource<KubeObjectLike>;
}

export class ClusterRangeWatch {
  private readonly nodes?: Reflector<KubeObjectLike>;
  private readonly serviceCIDRs: Reflector<KubeObjectLike>;
  private current: DiscoveredRange[] = [];
  private key: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly handlers: Array<(ranges: DiscoveredRange[]) => void> = [];

  static fromKubeConfig(
    kc: KubeConfig,
    opts: Omit<ClusterRangeWatchOptions, 'sourceFactory'> & { rest?: KubeRest },
  ): ClusterRangeWatch {
    const rest = opts.rest ?? new RawKubeClient(kc);
    return new ClusterRangeWatch({
      ...opts,
      sourceFactory: (kind) =>
        new KubeListWatchSource(kc, rest, kindInfo(kind === 'Node' ? 'v1' : 'networking.k8s.io/v1', kind)),
    });
  }

  constructor(private readonly o: ClusterRangeWatchOptions) {
    const make = (kind: 'Node' | 'ServiceCIDR', slim: 'node' | 'serviceCIDR') => {
      const info = kindInfo(kind === 'Node' ? 'v1' : 'networking.k8s.io/v1', kind);
      const r = new Reflector<KubeObjectLike>(o.sourceFactory!(kind), {
        name: info.plural,
        relistIntervalMs: o.relistIntervalMs,
        logger: o.logger,
        missingHint: info.missingHint,
        optional: true,
        transform: (obj) => slimObject(slim, obj),
      });
      r.on(() => this.schedule());
      return r;
    };
    if (o.nodes) this.nodes = make('Node', 'node');
    this.serviceCIDRs = make('ServiceCIDR', 'serviceCIDR');
  }

  start(): void {
    this.nodes?.start();
    this.serviceCIDRs.start();
    void this.waitForSync().then(() => this.recompute());
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    await Promise.all([this.nodes?.stop(), this.serviceCIDRs.stop()]);
  }

  synced(): boolean {
    return (this.nodes?.synced() ?? true) && this.serviceCIDRs.synced();
  }

  /** Listed and computed once: reconciles before this would write a policy without them. */
  ready(): boolean {
    return this.key !== undefined;
  }

  async waitForSync(): Promise<void> {
    await Promise.all([this.nodes?.waitForSync(), this.serviceCIDRs.waitForSync()]);
  }

  /** Called with the new set whenever it changes (after the batching window). */
  onChange(handler: (ranges: DiscoveredRange[]) => void): void {
    this.handlers.push(handler);
  }

  /** The discovered ranges, de-duplicated, in a stable order. */
  ranges(): DiscoveredRange[] {
    return this.current;
  }

  /** How each source stands, for the egress report and `wpgw status`. */
  discovery(): RangeDiscovery {
    const state = (r: Reflector<KubeObjectLike> | undefined, off: string): string =>
      !r ? off : r.missing() ? 'unavailable (not served, or forbidden): see the controller log' : 'watched';
    return {
      nodes: state(this.nodes, 'off (--discover-node-ranges=false)'),
      serviceCIDRs: state(this.serviceCIDRs, 'off'),
    };
  }

  private schedule(): void {
    if (this.timer || !this.synced()) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.recompute();
    }, this.o.batchMs ?? 1000);
    this.timer.unref();
  }

  private recompute(): void {
    // By name, so a range two objects share names the same one whatever order the watch kept.
    const byName = <T extends KubeObjectLike>(objs: T[]) =>
      [...objs].sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
    const next = mergeRanges(
      serviceCidrRanges(byName(this.serviceCIDRs.store.all()) as ServiceCIDRLike[]),
      nodeRanges(byName(this.nodes?.store.all() ?? []) as NodeLike[]),
    );
    const key = next.map((r) => r.cidr).join(',');
    const before = this.key;
    this.current = next;
    this.key = key;
    if (key === before) return;
    this.o.logger?.info(
      { ranges: next.length, discovery: this.discovery() },
      before === undefined
        ? 'cluster ranges discovered from the API'
        : 'cluster ranges discovered from the API changed',
    );
    if (before !== undefined) for (const h of this.handlers) h(next);
  }
}
