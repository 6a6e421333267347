// Watch-backed, namespace-indexed view of the cluster objects wpgw reasons about. The webhook starts
// the subset it needs (WEBHOOK_RESOURCES), the controller everything (CONTROLLER_RESOURCES).
import type {
  KubeConfig,
  V1CronJob,
  V1DaemonSet,
  V1Deployment,
  V1Ingress,
  V1Job,
  V1Namespace,
  V1ObjectMeta,
  V1Pod,
  V1PodTemplateSpec,
  V1ReplicaSet,
  V1RuntimeClass,
  V1Service,
  V1StatefulSet,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { MANAGED_KINDS, type KubeObject, type UserIstioObjects } from '../core/desired-types.js';
import type { Sidecar } from '../core/mesh-scope.js';
import {
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  MANAGED_LABEL,
  REPOINTED_LABEL,
  SERVICE_ORIGINAL_ANNOTATION,
} from '../names.js';
import { RawKubeClient, type KubeRest } from './client.js';
import { ROLLOUT_KIND, SIDECAR_KIND, groupKind, kindInfo, type KindInfo } from './kinds.js';
import { KubeListWatchSource } from './kube-source.js';
import { Limiter } from './limiter.js';
import { waitAtMost } from './timeout.js';
import { isManagedByWpgw, isOptedIn } from './objects.js';
import { slimObject, type SlimKind } from './slim.js';
import { Reflector, type ChangeType, type ListWatchSource, type ReflectorStats } from './reflector.js';
import type { KubeObjectLike } from './store.js';

export type ResourceKey =
  | 'namespaces'
  | 'services'
  | 'managedPods'
  | 'deployments'
  | 'statefulsets'
  | 'daemonsets'
  | 'replicasets'
  | 'jobs'
  | 'cronjobs'
  /** Argo Rollouts (a CRD: absent until installed). */
  | 'rollouts'
  | 'runtimeclasses'
  /** Ingresses: another controller's Ingress makes a Service one that non-mesh clients reach. */
  | 'ingresses'
  /** Istio Sidecars (a CRD): the namespace-wide one narrows the mesh-wide outbound scope. */
  | 'sidecars'
  /** The controller's own outputs: every MANAGED_KINDS kind, label-selected. */
  | 'managedOutputs'
  /** Istio routing in full (users' own shape what wpgw writes, docs/user-policies.md); controller only. */
  | 'virtualservices'
  | 'destinationrules'
  | 'authorizationpolicies'
  | 'peerauthentications'
  | 'requestauthentications';

export const WEBHOOK_RESOURCES: readonly ResourceKey[] = [
  'namespaces',
  'services',
  'managedPods',
  'deployments',
  'statefulsets',
  'daemonsets',
  'replicasets',
  'jobs',
  'cronjobs',
  'rollouts',
  'runtimeclasses',
  'ingresses',
];

export const CONTROLLER_RESOURCES: readonly ResourceKey[] = [
  ...WEBHOOK_RESOURCES,
  'sidecars',
  'managedOutputs',
  'virtualservices',
  'destinationrules',
  'authorizationpolicies',
  'peerauthentications',
  'requestauthentications',
];

/** Workload kinds whose pod templates can make a Service "Windows". */
export const WORKLOAD_RESOURCES = [
  'deployments',
  'statefulsets',
  'daemonsets',
  'replicasets',
  'jobs',
  'cronjobs',
  'rollouts',
] as const;
export type WorkloadResource = (typeof WORKLOAD_RESOURCES)[number];

/** The parts of an Argo Rollout wpgw reads (no typed model in client-node). */
export interface Rollout {
  apiVersion?: string;
  kind?: string;
  metadata?: V1ObjectMeta;
  spec?: { template?: V1PodTemplateSpec; restartAt?: string };
}

/**
 * Resources kept only in the namespaces wpgw works in (opted in, or holding its managed pods or
 * outputs, which opting out still has to undo), plus single objects a decision reads anywhere.
 * The controller keeps Services everywhere: mesh-wide outbound (wpgw.io/mesh-outbound) and the
 * gateway's egress policy read Services of namespaces that never opt in; slimmed, they are small.
 */
const SCOPED: readonly ResourceKey[] = ['ingresses', ...WORKLOAD_RESOURCES];

/**
 * The webhook scopes Services too: an admission reads only the admitted object's namespace
 * (core/namespace-view.ts), and the webhook is only called in opted-in namespaces.
 */
export const WEBHOOK_SCOPED: readonly ResourceKey[] = [...SCOPED, 'services'];

/**
 * Where the webhook keeps less than the controller: of its managed pods only identity and labels
 * (admission asks which label sets are Windows; the controller reads whole pods for restore and
 * drift). At the footprint bench's full (c) that took 6 MiB off the webhook's heap (bench/README.md).
 */
export const WEBHOOK_SLIM: Readonly<Partial<Record<ResourceKey, SlimKind>>> = { managedPods: 'admissionPod' };

/** The webhook's cache, one definition for the webhook, its benchmarks and its property tests. */
export const WEBHOOK_CACHE = { resources: WEBHOOK_RESOURCES, scoped: WEBHOOK_SCOPED, slim: WEBHOOK_SLIM } as const;

/** Namespace backfill lists in flight at once, per process. */
const BACKFILL_CONCURRENCY = 8;
/** How long one scoped kind's start-up list may hold back the next (startInTurn). */
const SCOPED_TURN_MS = 15_000;

const SLIM_KIND: Record<ResourceKey, SlimKind> = {
  namespaces: 'namespace',
  services: 'service',
  managedPods: 'managedPod',
  deployments: 'workload',
  statefulsets: 'workload',
  daemonsets: 'workload',
  replicasets: 'workload',
  jobs: 'workload',
  cronjobs: 'workload',
  rollouts: 'workload',
  runtimeclasses: 'runtimeClass',
  ingresses: 'ingress',
  managedOutputs: 'managedOutput',
  virtualservices: 'virtualService',
  destinationrules: 'istio',
  authorizationpolicies: 'istio',
  peerauthentications: 'istio',
  requestauthentications: 'istio',
  sidecars: 'istio',
};

/** The cluster DNS Service (its address is an input of every namespace's desired state). */
export const CLUSTER_DNS = { namespace: 'kube-system', name: 'kube-dns' } as const;

/** Objects kept wherever they are: ours, and Services an opt-out still has to restore. */
function keptAnywhere(resource: ResourceKey, obj: KubeObjectLike): boolean {
  if (isManagedByWpgw(obj)) return true;
  if (resource !== 'services') return false;
  const meta = obj.metadata ?? {};
  if (meta.namespace === CLUSTER_DNS.namespace && meta.name === CLUSTER_DNS.name) return true;
  return SERVICE_ORIGINAL_ANNOTATION in (meta.annotations ?? {}) || REPOINTED_LABEL in (meta.labels ?? {});
}

export type Workload = V1Deployment | V1StatefulSet | V1DaemonSet | V1ReplicaSet | V1Job | V1CronJob | Rollout;

const MANAGED_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;

interface WatchSpec {
  /** Reflector name: the ResourceKey, or "managed:<plural>" for label-selected outputs. */
  name: string;
  resource: ResourceKey;
  info: KindInfo;
  labelSelector?: string;
}

const PLAIN: Record<Exclude<ResourceKey, 'managedOutputs' | 'managedPods'>, KindInfo> = {
  namespaces: kindInfo('v1', 'Namespace'),
  services: kindInfo('v1', 'Service'),
  deployments: kindInfo('apps/v1', 'Deployment'),
  statefulsets: kindInfo('apps/v1', 'StatefulSet'),
  daemonsets: kindInfo('apps/v1', 'DaemonSet'),
  replicasets: kindInfo('apps/v1', 'ReplicaSet'),
  jobs: kindInfo('batch/v1', 'Job'),
  cronjobs: kindInfo('batch/v1', 'CronJob'),
  runtimeclasses: kindInfo('node.k8s.io/v1', 'RuntimeClass'),
  rollouts: kindInfo(ROLLOUT_KIND.apiVersion, ROLLOUT_KIND.kind),
  ingresses: kindInfo('networking.k8s.io/v1', 'Ingress'),
  virtualservices: kindInfo('networking.istio.io/v1', 'VirtualService'),
  destinationrules: kindInfo('networking.istio.io/v1', 'DestinationRule'),
  authorizationpolicies: kindInfo('security.istio.io/v1', 'AuthorizationPolicy'),
  peerauthentications: kindInfo('security.istio.io/v1', 'PeerAuthentication'),
  requestauthentications: kindInfo('security.istio.io/v1', 'RequestAuthentication'),
  sidecars: kindInfo(SIDECAR_KIND.apiVersion, SIDECAR_KIND.kind),
};

/** The reflectors a resource set needs. A managed kind that is also watched in full reuses that watch. */
export function watchSpecs(resources: readonly ResourceKey[]): WatchSpec[] {
  const set = new Set(resources);
  const specs: WatchSpec[] = [];
  for (const r of set) {
    if (r === 'managedOutputs') continue;
    if (r === 'managedPods') {
      specs.push({ name: 'managedPods', resource: r, info: kindInfo('v1', 'Pod'), labelSelector: MANAGED_LABEL });
    } else {
      specs.push({ name: r, resource: r, info: PLAIN[r] });
    }
  }
  if (set.has('managedOutputs')) {
    const full = new Set(specs.filter((s) => !s.labelSelector).map((s) => groupKind(s.info.apiVersion, s.info.kind)));
    for (const k of MANAGED_KINDS) {
      if (full.has(groupKind(k.apiVersion, k.kind))) continue;
      specs.push({
        name: `managed:${k.plural}`,
        resource: 'managedOutputs',
        info: kindInfo(k.apiVersion, k.kind),
        labelSelector: MANAGED_SELECTOR,
      });
    }
  }
  return specs;
}

export interface CacheEvent {
  /** Which reflector produced it. */
  source: string;
  resource: ResourceKey;
  kind: string;
  type: ChangeType;
  obj: KubeObjectLike;
  old: KubeObjectLike | undefined;
}

export type SourceFactory = (info: KindInfo, labelSelector: string | undefined) => ListWatchSource<KubeObjectLike>;

export interface ClusterCacheOptions {
  resources: readonly ResourceKey[];
  sourceFactory: SourceFactory;
  relistIntervalMs?: number;
  backoff?: { initialMs?: number; maxMs?: number; jitter?: number };
  logger?: Logger;
  /** Resources kept only in the namespaces wpgw works in (default: SCOPED). */
  scoped?: readonly ResourceKey[];
  /** Resources kept in another shape than SLIM_KIND's (WEBHOOK_SLIM). */
  slim?: Readonly<Partial<Record<ResourceKey, SlimKind>>>;
}

export interface KubeCacheOptions extends Omit<ClusterCacheOptions, 'sourceFactory'> {
  rest?: KubeRest;
  pageSize?: number;
}

export class ClusterCache {
  private readonly reflectors = new Map<string, { spec: WatchSpec; r: Reflector<KubeObjectLike> }>();
  private readonly scoped: ReadonlySet<ResourceKey>;
  /** Namespaces whose scoped objects are cached (see `scoped`). */
  private readonly watched = new Set<string>();
  /** Namespaces being listed because they just started to matter: namespace -> reflectors left. */
  private readonly filling = new Map<string, number>();
  private scopedStarted = false;
  private stopped = false;
  /** group/Kind → reflector holding that kind's wpgw-managed objects (possibly a full watch). */
  private readonly managedSource = new Map<string, { r: Reflector<KubeObjectLike>; filter: boolean }>();
  private readonly handlers: Array<(e: CacheEvent) => void> = [];
  /** Backfill lists in flight at once (opting many namespaces in at once is a burst of them). */
  private readonly backfills = new Limiter(BACKFILL_CONCURRENCY);
  /** Bumped by any change in a namespace; lets readers memoize per namespace. */
  private readonly nsGen = new Map<string, number>();
  private clusterGen = 0;

  static fromKubeConfig(kc: KubeConfig, opts: KubeCacheOptions): ClusterCache {
    const rest = opts.rest ?? new RawKubeClient(kc);
    return new ClusterCache({
      ...opts,
      sourceFactory: (info, labelSelector) =>
        new KubeListWatchSource(kc, rest, info, { labelSelector, pageSize: opts.pageSize }),
    });
  }

  constructor(opts: ClusterCacheOptions) {
    this.scoped = new Set(opts.scoped ?? SCOPED);
    for (const spec of watchSpecs(opts.resources)) {
      const slim = opts.slim?.[spec.resource] ?? SLIM_KIND[spec.resource];
      const transform = this.scoped.has(spec.resource)
        ? (o: KubeObjectLike) =>
            this.isWatched(o.metadata?.namespace ?? '') || keptAnywhere(spec.resource, o)
              ? slimObject(slim, o)
              : undefined
        : (o: KubeObjectLike) => slimObject(slim, o);
      const r = new Reflector<KubeObjectLike>(opts.sourceFactory(spec.info, spec.labelSelector), {
        name: spec.name,
        relistIntervalMs: opts.relistIntervalMs,
        backoff: opts.backoff,
        logger: opts.logger,
        missingHint: spec.info.missingHint,
        optional: spec.info.optional,
        transform,
      });
      r.on((type, obj, old) => this.dispatch(spec, type, obj, old));
      this.reflectors.set(spec.name, { spec, r });
    }
    for (const { spec, r } of this.reflectors.values()) {
      const gk = groupKind(spec.info.apiVersion, spec.info.kind);
      const isManagedKind = MANAGED_KINDS.some((k) => groupKind(k.apiVersion, k.kind) === gk);
      if (!isManagedKind || spec.resource === 'managedPods') continue;
      if (spec.labelSelector === MANAGED_SELECTOR) this.managedSource.set(gk, { r, filter: false });
      else if (opts.resources.includes('managedOutputs')) this.managedSource.set(gk, { r, filter: true });
    }
  }

  /**
   * Namespaces, RuntimeClasses, managed pods and outputs first; once they are listed the cache
   * knows which namespaces matter, and lists each scoped kind once, cluster-wide, keeping only
   * those namespaces' objects (no per-namespace round trips at start).
   */
  start(): void {
    this.stopped = false;
    const scoped = [...this.reflectors.values()].filter(({ spec }) => this.scoped.has(spec.resource));
    const first = [...this.reflectors.values()].filter(({ spec }) => !this.scoped.has(spec.resource));
    for (const { r } of first) r.start();
    void Promise.all(first.map(({ r }) => r.waitForSync())).then(() => {
      if (this.stopped) return;
      for (const { r } of this.reflectors.values()) {
        for (const ns of r.store.namespaces()) if (this.isWatched(ns)) this.watched.add(ns);
      }
      this.scopedStarted = true;
      void this.startInTurn(scoped.map(({ r }) => r));
    });
  }

  /**
   * The scoped kinds' cluster-wide lists one after another: each is consumed at full speed instead
   * of nine sharing one thread, so none falls behind its live events far enough for the API server
   * to close it (which a busy cluster does, bench/README.md). One slow to sync (retrying, say)
   * holds the next back at most SCOPED_TURN_MS.
   */
  private async startInTurn(reflectors: ReadonlyArray<Reflector<KubeObjectLike>>): Promise<void> {
    for (const r of reflectors) {
      if (this.stopped) return;
      r.start();
      await waitAtMost(r.waitForSync(), SCOPED_TURN_MS);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.reflectors.values()].map(({ r }) => r.stop()));
  }

  /** False while a namespace that just started to matter (e.g. was opted in) is being listed. */
  namespaceSynced(namespace: string): boolean {
    return !this.filling.has(namespace);
  }

  private holdsManaged(namespace: string): boolean {
    if (this.reflectors.get('managedPods')?.r.store.hasNamespace(namespace)) return true;
    for (const { spec, r } of this.reflectors.values()) {
      if (spec.resource === 'managedOutputs' && r.store.hasNamespace(namespace)) return true;
    }
    return false;
  }

  private isWatched(namespace: string): boolean {
    return isOptedIn(this.reflectors.get('namespaces')?.r.store.get('', namespace)) || this.holdsManaged(namespace);
  }

  /**
   * Track which namespaces matter. One that starts to is listed per scoped kind (its objects
   * were not kept); one that stops keeping its objects until the next relist drops them.
   */
  private rescope(namespace: string): void {
    if (!namespace) return;
    const now = this.isWatched(namespace);
    if (now === this.watched.has(namespace)) return;
    if (!now) {
      this.watched.delete(namespace);
      return;
    }
    this.watched.add(namespace);
    if (!this.scopedStarted) return; // the first scoped lists will include it
    const scoped = [...this.reflectors.values()].filter(({ spec }) => this.scoped.has(spec.resource));
    this.filling.set(namespace, (this.filling.get(namespace) ?? 0) + scoped.length);
    for (const { r } of scoped) {
      void this.backfills
        .run(() => r.backfill(namespace))
        .finally(() => {
          const left = (this.filling.get(namespace) ?? 1) - 1;
          if (left > 0) this.filling.set(namespace, left);
          else this.filling.delete(namespace);
          this.nsGen.set(namespace, (this.nsGen.get(namespace) ?? 0) + 1);
        });
    }
  }

  synced(): boolean {
    for (const { r } of this.reflectors.values()) if (!r.synced()) return false;
    return true;
  }

  async waitForSync(): Promise<void> {
    await Promise.all([...this.reflectors.values()].map(({ r }) => r.waitForSync()));
  }

  relistAll(): void {
    for (const { r } of this.reflectors.values()) r.relistNow();
  }

  on(handler: (e: CacheEvent) => void): void {
    this.handlers.push(handler);
  }

  stats(): ReflectorStats[] {
    return [...this.reflectors.values()].map(({ r }) => r.stats());
  }

  /** Total watch/relist events handled, across reflectors. */
  eventCount(): number {
    let n = 0;
    for (const s of this.stats()) n += s.events.add + s.events.update + s.events.delete;
    return n;
  }

  /** Kinds whose API is not served (missing CRDs), as "apiVersion Kind"; optional integrations are not counted. */
  missingKinds(): string[] {
    const out: string[] = [];
    for (const { spec, r } of this.reflectors.values()) {
      if (r.missing() && !spec.info.optional) out.push(`${spec.info.apiVersion} ${spec.info.kind}`);
    }
    return out;
  }

  isKindMissing(apiVersion: string, kind: string): boolean {
    const src = this.managedSource.get(groupKind(apiVersion, kind));
    return !!src && src.r.missing();
  }

  generation(namespace: string): number {
    return (this.nsGen.get(namespace) ?? 0) + this.clusterGen;
  }

  // ---- typed reads -------------------------------------------------------------------------

  namespace(name: string): V1Namespace | undefined {
    return this.get<V1Namespace>('namespaces', '', name);
  }

  namespaces(): V1Namespace[] {
    return this.list<V1Namespace>('namespaces', '');
  }

  service(namespace: string, name: string): V1Service | undefined {
    return this.get<V1Service>('services', namespace, name);
  }

  services(namespace: string): V1Service[] {
    return this.list<V1Service>('services', namespace);
  }

  /** Every Service of the cluster (the mesh-wide outbound candidates). */
  allServices(): V1Service[] {
    const r = this.reflector('services');
    if (!r) throw new Error('ClusterCache: resource "services" is not watched by this cache');
    return r.store.all() as V1Service[];
  }

  /** The namespace's Istio Sidecars; undefined while they cannot be read (no CRD, no RBAC). */
  sidecars(namespace: string): Sidecar[] | undefined {
    if (this.reflector('sidecars')?.missing()) return undefined;
    return this.list<Sidecar>('sidecars', namespace);
  }

  /** Pods carrying the wpgw.io/managed label. */
  managedPods(namespace: string): V1Pod[] {
    return this.list<V1Pod>('managedPods', namespace);
  }

  ingresses(namespace: string): V1Ingress[] {
    return this.list<V1Ingress>('ingresses', namespace);
  }

  /** Every VirtualService and DestinationRule of the cluster (callers' objects naming a re-pointed Service). */
  allRouting(): Pick<UserIstioObjects, 'virtualServices' | 'destinationRules'> {
    const all = (name: string) => {
      const r = this.reflector(name);
      if (!r) throw new Error(`ClusterCache: resource "${name}" is not watched by this cache`);
      return r.store.all() as KubeObject[];
    };
    return { virtualServices: all('virtualservices'), destinationRules: all('destinationrules') };
  }

  /** The namespace's Istio routing and security objects, users' and wpgw's alike. */
  istioObjects(namespace: string): UserIstioObjects {
    return {
      virtualServices: this.list<KubeObject>('virtualservices', namespace),
      destinationRules: this.list<KubeObject>('destinationrules', namespace),
      authorizationPolicies: this.list<KubeObject>('authorizationpolicies', namespace),
      peerAuthentications: this.list<KubeObject>('peerauthentications', namespace),
      requestAuthentications: this.list<KubeObject>('requestauthentications', namespace),
    };
  }

  runtimeClass(name: string): V1RuntimeClass | undefined {
    return this.get<V1RuntimeClass>('runtimeclasses', '', name);
  }

  workload<T extends Workload>(resource: WorkloadResource, namespace: string, name: string): T | undefined {
    return this.get<T>(resource, namespace, name);
  }

  workloads(resource: WorkloadResource, namespace: string): Workload[] {
    return this.list<Workload>(resource, namespace);
  }

  /** Namespaces that hold at least one wpgw-managed object (for cleanup after opt-out). */
  namespacesWithManagedObjects(): string[] {
    const out = new Set<string>();
    for (const { r, filter } of this.managedSource.values()) {
      for (const ns of r.store.namespaces()) {
        if (!filter || r.store.list(ns).some(isManagedByWpgw)) out.add(ns);
      }
    }
    return [...out];
  }

  /** Every cached object of a MANAGED_KINDS kind in the namespace labelled managed-by=wpgw. */
  managedObjects(namespace: string): KubeObject[] {
    const out: KubeObject[] = [];
    for (const { r, filter } of this.managedSource.values()) {
      for (const o of r.store.list(namespace)) {
        if (!filter || isManagedByWpgw(o)) out.push(o as KubeObject);
      }
    }
    return out;
  }

  private reflector(name: string): Reflector<KubeObjectLike> | undefined {
    return this.reflectors.get(name)?.r;
  }

  private get<T>(name: string, namespace: string, objName: string): T | undefined {
    const r = this.reflector(name);
    if (!r) throw new Error(`ClusterCache: resource "${name}" is not watched by this cache`);
    return r.store.get(namespace, objName) as T | undefined;
  }

  private list<T>(name: string, namespace: string): T[] {
    const r = this.reflector(name);
    if (!r) throw new Error(`ClusterCache: resource "${name}" is not watched by this cache`);
    return r.store.list(namespace) as T[];
  }

  private dispatch(spec: WatchSpec, type: ChangeType, obj: KubeObjectLike, old: KubeObjectLike | undefined): void {
    if (spec.resource === 'namespaces') this.rescope(obj.metadata?.name ?? '');
    else if (spec.resource === 'managedPods' || spec.resource === 'managedOutputs')
      this.rescope(obj.metadata?.namespace ?? '');
    const ns = obj.metadata?.namespace;
    if (ns) this.nsGen.set(ns, (this.nsGen.get(ns) ?? 0) + 1);
    else this.clusterGen++; // namespaces, runtime classes: may change any namespace's answers
    const e: CacheEvent = { source: spec.name, resource: spec.resource, kind: spec.info.kind, type, obj, old };
    for (const h of this.handlers) h(e);
  }
}
