// Reconcile one namespace: compute the desired state from the cache, apply what differs, prune
// what we made that is no longer wanted, nudge Services the webhook has not re-pointed yet, roll
// workloads whose /etc/hosts points at an old gateway address, and tell people via Events.
//
// A namespace that opted out is handed back in the order of core/restore.ts, one phase per pass
// (each write's watch event brings the next pass): gateway pods labelled for auto-mTLS, caller
// DestinationRules deleted, re-pointed Services restored, owners of injected pods rolled (or
// reported, per wpgw.io/restart-on-ip-change), and only then the gateway and the rest deleted.
import type { V1Deployment, V1Namespace, V1Service } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { cacheNamespaceView, clusterIPOf, runtimeClassOSOf } from '../cluster/admission-context.js';
import { WORKLOAD_RESOURCES, type ClusterCache } from '../cluster/cache.js';
import { errorMessage, errorStatus } from '../cluster/client.js';
import { annotationsOf, isOptedIn, isTerminating } from '../cluster/objects.js';
import type { KubeObjectLike } from '../cluster/store.js';
import type {
  DesiredOptions,
  DesiredState,
  KubeObject,
  NamespaceInput,
  UserIstioObjects,
} from '../core/desired-types.js';
import { settingHints } from '../core/hints.js';
import { planRestore, type RestorePhase } from '../core/restore.js';
import type { WorkloadObject } from '../core/workloads.js';
import {
  leaveReasonText,
  planServiceLeaves,
  stageLeaving,
  type LeavingService,
  type ServiceLeavePlan,
} from '../core/service-leave.js';
import { FIELD_MANAGER, GATEWAY_SERVICE, NUDGE_ANNOTATION, RESTART_ON_IP_CHANGE_ANNOTATION } from '../names.js';
import { readOriginal } from '../core/records.js';
import { needsApply } from './compare.js';
import type { EventSink, EventSpec, EventTarget } from './events.js';
import { buildNamespaceInput } from './input.js';
import type { ExternalResolver } from './resolver.js';
import type { ClusterRangeWatch } from '../cluster/cluster-ranges.js';
import { namespaceEgressRanges } from '../core/desired.js';
import { egressReport, egressReportConfigMap } from '../core/desired/egress-report.js';
import { mergeRanges } from '../core/cluster-ranges.js';
import { parseCidr } from '../core/cidr.js';
import { declaredTargets } from '../core/desired/outbound-plan.js';
import { istioRootNamespace } from '../core/desired/egress.js';
import { FORBIDDEN_ADDRESS, UNRESOLVED_NAME } from '../core/desired/pinning.js';
import { selectNudges } from './nudge.js';
import {
  RESTARTABLE_API_VERSIONS,
  cacheOwnerLookup,
  resolveTopOwner,
  ownerKey,
  planDriftActions,
  planOwnerRestarts,
  restartPatch,
  type DriftWarning,
  type OwnerLookup,
  type OwnerRef,
  type RestartPlan,
} from './owners.js';
import { isManagedKind, objectKey, selectPrunes } from './prune.js';
import { NotLeaderError, type ObjectWriter } from './writer.js';

export type ReconcileCacheView = Pick<
  ClusterCache,
  | 'namespace'
  | 'services'
  | 'service'
  | 'managedPods'
  | 'managedObjects'
  | 'workload'
  | 'isKindMissing'
  | 'ingresses'
  | 'workloads'
  | 'runtimeClass'
  | 'istioObjects'
  | 'allRouting'
  | 'allServices'
  | 'sidecars'
>;

export type DesiredFn = (input: NamespaceInput, opts: DesiredOptions) => DesiredState;

export interface ReconcilerOptions {
  cache: ReconcileCacheView;
  writer: ObjectWriter;
  events: EventSink;
  desired: DesiredFn;
  desiredOptions: DesiredOptions;
  logger: Logger;
  now?: () => Date;
  /** Resolves the external names the namespace declares (pinning); absent: the gateways resolve them. */
  resolver?: Pick<ExternalResolver, 'resolve' | 'forget'>;
  /** How long a Service handed back alone keeps its gateway listener (callers' xDS may lag). */
  listenerGraceMs?: number;
  /**
   * The cluster's ranges discovered from the API (cluster/cluster-ranges.ts): excepted from every
   * gateway's external egress, and with them each namespace gets its egress report ConfigMap.
   */
  clusterRanges?: Pick<ClusterRangeWatch, 'ranges' | 'discovery'>;
}

/** Default listenerGraceMs: istiod pushes EndpointSlice changes within seconds. */
export const LISTENER_GRACE_MS = 20_000;

export interface ReconcileReport {
  namespace: string;
  /** ok; degraded: some kinds could not be written (CRDs missing); skipped: namespace gone/terminating. */
  outcome: 'ok' | 'degraded' | 'skipped';
  optedIn: boolean;
  applied: string[];
  unchanged: number;
  pruned: string[];
  nudged: string[];
  restarted: string[];
  conflicts: number;
  missingKinds: string[];
  /** Opted-out namespace: the hand-back phase this pass worked on (core/restore.ts). */
  restorePhase?: RestorePhase;
  /** Services restored to their original selector and ports. */
  restored: string[];
  /** External names refused this pass, by conflict reason (the controller's refusal metric). */
  refusedNames: Record<string, number>;
  /** Opted-in namespace: Services being handed back alone (core/service-leave.ts). */
  leaving: LeavingService[];
  /** Reconcile again after this long even without events (a lingering listener's grace ends). */
  recheckAfterMs?: number;
}

export class ReconcileError extends Error {
  constructor(
    readonly namespace: string,
    readonly failures: string[],
    readonly report: ReconcileReport,
  ) {
    super(`reconcile ${namespace}: ${failures.length} failure(s): ${failures.slice(0, 3).join('; ')}`);
    this.name = 'ReconcileError';
  }
}

const EMPTY: DesiredState = { objects: [], conflicts: [], notes: [] };
const MAX_NAMES_IN_MESSAGE = 5;

function names(list: string[]): string {
  const head = list.slice(0, MAX_NAMES_IN_MESSAGE).join(', ');
  return list.length > MAX_NAMES_IN_MESSAGE ? `${head} and ${list.length - MAX_NAMES_IN_MESSAGE} more` : head;
}

function describeObj(o: { kind: string; metadata: { name: string } }): string {
  return `${o.kind}/${o.metadata.name}`;
}

/** resourceVersions are opaque, but etcd's are integers: use that to ignore events older than our write. */
function olderVersion(seen: string | undefined, written: string | undefined): boolean {
  if (!seen || !written || !/^\d+$/.test(seen) || !/^\d+$/.test(written)) return false;
  return BigInt(seen) < BigInt(written);
}

import { deploymentReady } from '../core/restore.js';
export { deploymentReady };

export class Reconciler {
  /** Our own writes not yet reflected by the watch: key → object returned, or null once deleted. */
  private readonly overlay = new Map<string, KubeObject | null>();
  private readonly nudged = new Map<string, string>();
  private readonly restarted = new Map<string, string>();
  private readonly gatewayReady = new Map<string, boolean>();
  private readonly restorePhase = new Map<string, RestorePhase>();
  /** Service → the resourceVersion we restored it from. */
  private readonly restoredFrom = new Map<string, string>();
  /** Service handed back alone → its re-pointed form and when its listener's grace ends. */
  private readonly lingering = new Map<string, { service: V1Service; until: number }>();
  /** Service handed back alone → the phase last reported. */
  private readonly leavePhase = new Map<string, string>();
  private readonly now: () => Date;
  private readonly log: Logger;

  constructor(private readonly o: ReconcilerOptions) {
    this.now = o.now ?? (() => new Date());
    this.log = o.logger;
  }

  /** The cache saw this object change: once it is at least as new as our own write, trust the cache again. */
  observe(obj: KubeObjectLike): void {
    if (!obj.apiVersion || !obj.kind || !obj.metadata?.name) return;
    const key = objectKey({
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      metadata: { name: obj.metadata.name, namespace: obj.metadata.namespace },
    });
    const mine = this.overlay.get(key);
    if (mine === undefined) return;
    if (
      mine === null ||
      !olderVersion(obj.metadata.resourceVersion, (mine.metadata as { resourceVersion?: string }).resourceVersion)
    ) {
      this.overlay.delete(key);
    }
  }

  /** The desired-state input from the cache, with the declared external names resolved when pinning. */
  private async input(nsObj: V1Namespace): Promise<NamespaceInput> {
    const clusterDomain = this.o.desiredOptions.clusterDomain;
    const built = buildNamespaceInput(this.o.cache, nsObj, clusterDomain, istioRootNamespace(this.o.desiredOptions));
    const discovered = this.o.clusterRanges?.ranges().map((r) => r.cidr) ?? [];
    const input =
      discovered.length > 0
        ? { ...built, clusterAddresses: [...(built.clusterAddresses ?? []), ...discovered] }
        : built;
    if (!this.o.resolver) return input;
    const namespace = nsObj.metadata?.name ?? '';
    const hosts = declaredTargets(input.pods, namespace, clusterDomain).flatMap((t) =>
      t.kind === 'external' && !t.host.startsWith('*.') ? [t.host] : [],
    );
    return { ...input, resolved: await this.o.resolver.resolve(namespace, hosts) };
  }

  /** The namespace is gone: drop per-namespace memory. */
  forget(namespace: string): void {
    this.o.resolver?.forget(namespace);
    this.gatewayReady.delete(namespace);
    this.restorePhase.delete(namespace);
    for (const m of [this.nudged, this.restarted, this.restoredFrom, this.lingering, this.leavePhase]) {
      for (const k of m.keys()) if (k.startsWith(`${namespace}/`)) m.delete(k);
    }
  }

  async reconcile(namespace: string): Promise<ReconcileReport> {
    const { cache } = this.o;
    const report: ReconcileReport = {
      namespace,
      outcome: 'ok',
      optedIn: false,
      applied: [],
      unchanged: 0,
      pruned: [],
      nudged: [],
      restarted: [],
      conflicts: 0,
      missingKinds: [],
      restored: [],
      refusedNames: {},
      leaving: [],
    };
    const nsObj = cache.namespace(namespace);
    if (!nsObj || isTerminating(nsObj)) {
      // Gone or going: its objects go with it, and writes into it would be refused.
      if (!nsObj) this.forget(namespace);
      report.outcome = 'skipped';
      return report;
    }
    report.optedIn = isOptedIn(nsObj);
    const live = this.liveObjects(namespace);
    const leave = report.optedIn ? this.planLeaves(namespace, live) : undefined;
    let state = EMPTY;
    if (leave) {
      const input = { ...(await this.input(nsObj)), services: leave.services };
      state = stageLeaving(this.o.desired(input, this.o.desiredOptions), leave, input);
      report.leaving = leave.leaving;
      const egress = this.egressReport(namespace, input, state);
      if (egress) state = { ...state, objects: [...state.objects, egress] };
    }
    if (!report.optedIn) this.o.resolver?.forget(namespace);
    for (const c of state.conflicts) {
      if (c.reason === FORBIDDEN_ADDRESS || c.reason === UNRESOLVED_NAME)
        report.refusedNames[c.reason] = (report.refusedNames[c.reason] ?? 0) + 1;
    }
    const nsTarget: EventTarget = { kind: 'Namespace', name: namespace, namespace, uid: nsObj.metadata?.uid };
    const failures: string[] = [];
    const fail = (what: string, err: unknown): void => {
      if (err instanceof NotLeaderError) throw err;
      failures.push(`${what}: ${errorMessage(err)}`);
    };

    const liveByKey = new Map(live.map((o) => [objectKey(o), o]));
    const missing = new Set<string>();

    const toApply: Array<{ obj: KubeObject; key: string }> = [];
    for (const obj of state.objects) {
      if (obj.metadata.namespace !== namespace || !isManagedKind(obj.apiVersion, obj.kind)) {
        // Never write outside the namespace or kinds we cannot prune (that would leak objects).
        failures.push(
          `refusing desired ${obj.apiVersion} ${describeObj(obj)} in ${obj.metadata.namespace ?? '<none>'}`,
        );
        continue;
      }
      if (cache.isKindMissing(obj.apiVersion, obj.kind)) {
        missing.add(`${obj.apiVersion} ${obj.kind}`);
        continue;
      }
      const key = objectKey(obj);
      if (!needsApply(obj, liveByKey.get(key), FIELD_MANAGER)) {
        report.unchanged++;
        continue;
      }
      toApply.push({ obj, key });
    }
    // Independent objects: apply a few at a time (a namespace coming up writes ~150 objects);
    // results are reported in desired order.
    const applied = await mapLimit(toApply, APPLY_CONCURRENCY, async ({ obj, key }) => {
      try {
        const res = await this.applyObject(obj, liveByKey.get(key), nsTarget);
        this.overlay.set(key, res && typeof res === 'object' && res.metadata ? res : obj);
        return true;
      } catch (err) {
        fail(`apply ${describeObj(obj)}`, err);
        return false;
      }
    });
    toApply.forEach(({ obj }, i) => {
      if (applied[i]) report.applied.push(describeObj(obj));
    });

    // Opted out: delete only what this phase of the hand-back allows (selectPrunes still guards).
    const drain = report.optedIn
      ? undefined
      : planRestore({
          namespace,
          services: cache.services(namespace),
          pods: cache.managedPods(namespace),
          managed: live,
        });
    const doomed = new Set(drain?.deletions.map(objectKey));
    const keep = drain ? live.filter((o) => !doomed.has(objectKey(o))) : state.objects;
    if (drain) report.restorePhase = drain.phase;
    for (const p of selectPrunes(namespace, keep, live)) {
      try {
        await this.o.writer.delete(p);
        this.overlay.set(objectKey(p), null);
        report.pruned.push(describeObj(p));
      } catch (err) {
        fail(`delete ${describeObj(p)}`, err);
      }
    }
    if (report.pruned.length > 0) {
      const why = report.optedIn
        ? 'no longer desired'
        : `namespace is no longer labelled wpgw.io/inject=enabled (opt-out phase ${drain?.phase})`;
      await this.event({
        target: nsTarget,
        type: 'Normal',
        reason: 'Pruned',
        message: `deleted ${names(report.pruned)}: ${why}`,
      });
    }

    report.missingKinds = [...missing].sort();
    if (missing.size > 0) {
      report.outcome = 'degraded';
      this.log.error({ namespace, kinds: report.missingKinds }, 'cannot create objects whose CRDs are not installed');
      await this.event({
        target: nsTarget,
        type: 'Warning',
        reason: 'MissingCRD',
        message: `cannot create ${report.missingKinds.join(', ')}: the API server does not serve these kinds (are Istio's CRDs installed?)`,
      });
    }

    if (report.optedIn) {
      await this.nudgeServices(namespace, report, fail);
      await this.handleDrift(namespace, nsObj, report, fail);
      report.conflicts = state.conflicts.length;
      for (const c of state.conflicts) {
        // A refused external name is a property of the workload, not of one pod: on the pod's
        // owner, its pods' repeats are one Event (the message names no pod).
        const refused = c.reason === FORBIDDEN_ADDRESS || c.reason === UNRESOLVED_NAME;
        const target = refused
          ? this.ownerTarget(namespace, c.subject, nsTarget)
          : this.subjectTarget(c.subjectNamespace ?? namespace, c.subject, nsTarget);
        await this.event({ target, type: 'Warning', reason: 'ConflictDetected', message: `${c.reason}: ${c.message}` });
      }
      await this.checkGatewayReady(namespace, nsTarget);
      await this.reportMisplacedSettings(namespace, nsObj);
      if (leave) await this.leaveServices(leave, report, fail);
    } else {
      this.gatewayReady.delete(namespace);
      if (drain) await this.handBack(drain, nsObj, nsTarget, report, fail);
    }

    if (failures.length > 0) throw new ReconcileError(namespace, failures, report);
    return report;
  }

  /**
   * Server-side apply. A re-created Service asks for the ClusterIP its pods recorded; if the API
   * server refuses that address (taken meanwhile, outside the range), create it with a fresh one
   * and let the drift handling restart the pods' owners.
   */
  private async applyObject(obj: KubeObject, live: KubeObject | undefined, nsTarget: EventTarget): Promise<KubeObject> {
    try {
      return await this.o.writer.apply(obj);
    } catch (err) {
      const spec = obj.spec as { clusterIP?: string; clusterIPs?: string[] } | undefined;
      if (obj.kind !== 'Service' || live || !spec?.clusterIP || errorStatus(err) !== 422) throw err;
      const { clusterIP, clusterIPs: _ips, ...rest } = spec;
      this.log.warn(
        { namespace: obj.metadata.namespace, service: obj.metadata.name, clusterIP, err: errorMessage(err) },
        'requested ClusterIP refused; creating the Service with a new address',
      );
      await this.event({
        target: nsTarget,
        type: 'Warning',
        reason: 'GatewayAddressChanged',
        message: `Service ${obj.metadata.name} could not get its previous address ${clusterIP} (${errorMessage(err)}); it gets a new one and hostAliases pods are restarted`,
      });
      return this.o.writer.apply({ ...obj, spec: rest });
    }
  }

  /** Cached managed objects with our own not-yet-observed writes laid over them. */
  private liveObjects(namespace: string): KubeObject[] {
    const out: KubeObject[] = [];
    const seen = new Set<string>();
    for (const o of this.o.cache.managedObjects(namespace)) {
      const key = objectKey(o);
      seen.add(key);
      const mine = this.overlay.get(key);
      if (mine === null) continue;
      out.push(mine ?? o);
    }
    for (const [key, o] of this.overlay) {
      if (o && !seen.has(key) && o.metadata.namespace === namespace) out.push(o);
    }
    return out;
  }

  private async nudgeServices(
    namespace: string,
    report: ReconcileReport,
    fail: (what: string, err: unknown) => void,
  ): Promise<void> {
    const { cache } = this.o;
    const nudges = selectNudges(
      cache.services(namespace),
      cache.managedPods(namespace),
      (svc) => this.nudged.get(`${namespace}/${svc}`),
      cache.ingresses(namespace),
    );
    for (const n of nudges) {
      try {
        await this.o.writer.mergePatch(
          { apiVersion: 'v1', kind: 'Service', namespace, name: n.service },
          { metadata: { annotations: { [NUDGE_ANNOTATION]: n.value } } },
        );
      } catch (err) {
        fail(`nudge Service/${n.service}`, err);
        continue;
      }
      this.nudged.set(`${namespace}/${n.service}`, n.value);
      report.nudged.push(n.service);
      await this.event({
        target: {
          kind: 'Service',
          name: n.service,
          namespace,
          uid: cache.service(namespace, n.service)?.metadata?.uid,
        },
        type: 'Normal',
        reason: 'ServiceNudged',
        message:
          n.why === 'restore'
            ? `Service is re-pointed at the gateway but non-mesh clients now reach it (${n.access.join('; ')}); re-admitting it through the wpgw webhook, which restores its original selector (${NUDGE_ANNOTATION}=${n.value})`
            : `Service selects wpgw-managed pods but was not re-pointed; re-admitting it through the wpgw webhook (${NUDGE_ANNOTATION}=${n.value})`,
      });
    }
  }

  /** The namespace's wpgw.io/restart-on-ip-change setting and what this process already rolled. */
  private restartPolicy(namespace: string, nsObj: V1Namespace) {
    return {
      restartEnabled: annotationsOf(nsObj)[RESTART_ON_IP_CHANGE_ANNOTATION] !== 'false',
      lookup: this.ownerLookup(),
      restartedFor: (k: string) => this.restarted.get(`${namespace}/${k}`),
    };
  }

  private ownerLookup(): OwnerLookup {
    return cacheOwnerLookup(this.o.cache);
  }

  private async handleDrift(
    namespace: string,
    nsObj: V1Namespace,
    report: ReconcileReport,
    fail: (what: string, err: unknown) => void,
  ): Promise<void> {
    const { cache } = this.o;
    const currentIP = clusterIPOf(cache.service(namespace, GATEWAY_SERVICE));
    const plan = planDriftActions({
      pods: cache.managedPods(namespace),
      currentIP,
      ...this.restartPolicy(namespace, nsObj),
    });
    await this.runRestarts(
      namespace,
      plan,
      report,
      fail,
      (r) =>
        `gateway Service ${GATEWAY_SERVICE} now has address ${r.toIP} but pods ${names(r.pods)} resolve their outbound names to an older one; rolling restart so hostAliases point at ${r.toIP}`,
      (w) => {
        const fix =
          w.why === 'disabled'
            ? `automatic restart is disabled by ${RESTART_ON_IP_CHANGE_ANNOTATION}=false; restart them`
            : `${w.subject.kind}/${w.subject.name} cannot be rolling-restarted; delete the pods so they are re-created`;
        return `pods ${names(w.pods)} resolve their outbound names to an old gateway address (now ${w.toIP}); ${fix}`;
      },
    );
  }

  /** Which re-pointed Services of an opted-in namespace are handed back alone, and how far. */
  private planLeaves(namespace: string, live: KubeObject[]): ServiceLeavePlan {
    const { cache } = this.o;
    // The webhook's own classification of the namespace's Windows workloads and managed pods.
    const windowsLabelSets = cacheNamespaceView(cache, namespace).windowsLabelSets;
    const now = this.now().getTime();
    const lingering: V1Service[] = [];
    for (const [key, l] of this.lingering) {
      if (!key.startsWith(`${namespace}/`)) continue;
      const current = cache.service(namespace, l.service.metadata?.name ?? '');
      // Grace over, the Service deleted, or re-pointed anew (opted back in): nothing lingers.
      if (
        l.until <= now ||
        !current ||
        current.metadata?.uid !== l.service.metadata?.uid ||
        (readOriginal(current) && current.metadata?.resourceVersion !== this.restoredFrom.get(key))
      ) {
        this.lingering.delete(key);
        continue;
      }
      lingering.push(l.service);
    }
    return planServiceLeaves({
      namespace,
      services: cache.services(namespace),
      windowsLabelSets,
      managed: live,
      lingering,
    });
  }

  /** Restores the Services whose callers have moved off the gateway; Events on each phase change. */
  private async leaveServices(
    plan: ServiceLeavePlan,
    report: ReconcileReport,
    fail: (what: string, err: unknown) => void,
  ): Promise<void> {
    const { namespace } = plan;
    const grace = this.o.listenerGraceMs ?? LISTENER_GRACE_MS;
    for (const s of plan.restores) {
      const key = `${namespace}/${s.service}`;
      const cached = this.o.cache.service(namespace, s.service);
      // Our patch not yet seen by the watch: patching the stale copy again would only conflict.
      if (!cached || this.restoredFrom.get(key) === cached.metadata?.resourceVersion) continue;
      try {
        await this.o.writer.mergePatch({ apiVersion: 'v1', kind: 'Service', namespace, name: s.service }, s.patch);
      } catch (err) {
        fail(`restore Service/${s.service}`, err);
        continue;
      }
      this.restoredFrom.set(key, cached.metadata?.resourceVersion ?? '');
      this.lingering.set(key, { service: cached, until: this.now().getTime() + grace });
      report.restored.push(s.service);
      const l = plan.leaving.find((x) => x.service === s.service);
      if (l) l.phase = 'lingering';
      await this.event({
        target: { kind: 'Service', name: s.service, namespace, uid: cached.metadata?.uid },
        type: 'Normal',
        reason: 'ServiceRestored',
        message:
          `${leaveReasonText(l?.reason ?? 'opted_out')}: restored the original selector ` +
          `${JSON.stringify(s.selector)} and ports; callers now reach its pods directly, without mTLS; the gateway listener stays ${Math.round(grace / 1000)}s for callers still on the old endpoints`,
      });
    }
    const what: Record<string, string> = {
      gateway:
        'labelling the gateway pods security.istio.io/tlsMode=istio (auto-mTLS keeps mesh callers on mTLS to them) and waiting for their rollout',
      callers: `deleting the caller-side DestinationRule wpgw-in-<name>`,
      services: 'restoring the original selector and ports',
      lingering: 'restored; keeping its gateway listener and <name>-app briefly for callers still on the old endpoints',
    };
    for (const l of plan.leaving) {
      const key = `${namespace}/${l.service}`;
      if (this.leavePhase.get(key) === l.phase) continue;
      this.leavePhase.set(key, l.phase);
      await this.event({
        target: {
          kind: 'Service',
          name: l.service,
          namespace,
          uid: this.o.cache.service(namespace, l.service)?.metadata?.uid,
        },
        type: 'Normal',
        reason: 'LeavingGateway',
        message: `${leaveReasonText(l.reason)}: handing it back from the wpgw gateway: ${what[l.phase]!.replace('<name>', l.service)}. Its Windows pods are then reached directly, without mTLS: under STRICT PeerAuthentication for its callers those calls fail`,
      });
    }
    for (const key of [...this.leavePhase.keys()]) {
      if (key.startsWith(`${namespace}/`) && !plan.leaving.some((l) => `${namespace}/${l.service}` === key))
        this.leavePhase.delete(key);
    }
    const ends = [...this.lingering.entries()]
      .filter(([k]) => k.startsWith(`${namespace}/`))
      .map(([, l]) => l.until - this.now().getTime());
    if (ends.length > 0) report.recheckAfterMs = Math.max(0, Math.min(...ends)) + 100;
  }

  /** One phase of handing an opted-out namespace back (deletions were done by the prune step). */
  private async handBack(
    plan: ReturnType<typeof planRestore>,
    nsObj: V1Namespace,
    nsTarget: EventTarget,
    report: ReconcileReport,
    fail: (what: string, err: unknown) => void,
  ): Promise<void> {
    const { namespace } = plan;
    if (plan.gatewayPatch) {
      try {
        await this.o.writer.mergePatch(
          { apiVersion: 'apps/v1', kind: 'Deployment', namespace, name: GATEWAY_SERVICE },
          plan.gatewayPatch,
        );
      } catch (err) {
        fail(`label Deployment/${GATEWAY_SERVICE}`, err);
      }
    }
    for (const s of plan.services) {
      const cached = this.o.cache.service(namespace, s.service)?.metadata;
      const key = `${namespace}/${s.service}`;
      // Our patch not yet seen by the watch: patching the stale copy again would only conflict.
      if (this.restoredFrom.get(key) === cached?.resourceVersion) continue;
      const uid = cached?.uid;
      try {
        await this.o.writer.mergePatch({ apiVersion: 'v1', kind: 'Service', namespace, name: s.service }, s.patch);
      } catch (err) {
        fail(`restore Service/${s.service}`, err);
        continue;
      }
      this.restoredFrom.set(key, cached?.resourceVersion ?? '');
      report.restored.push(s.service);
      await this.event({
        target: { kind: 'Service', name: s.service, namespace, uid },
        type: 'Normal',
        reason: 'ServiceRestored',
        message: `namespace opted out of wpgw: restored the original selector ${JSON.stringify(s.selector)} and ports; callers now reach the Windows pods directly, without mTLS`,
      });
    }
    if (plan.phase === 'pods') {
      const actions = planOwnerRestarts(plan.pointing, OPT_OUT_TAG, this.restartPolicy(namespace, nsObj));
      await this.runRestarts(
        namespace,
        actions,
        report,
        fail,
        (r) =>
          `namespace opted out of wpgw: pods ${names(r.pods)} still resolve their outbound names through the gateway; rolling restart so they come up without wpgw (the gateway stays until they are gone)`,
        (w) =>
          `namespace opted out of wpgw: pods ${names(w.pods)} still resolve their outbound names through the gateway, which stays until they are gone; ` +
          (w.why === 'disabled'
            ? `automatic restart is disabled by ${RESTART_ON_IP_CHANGE_ANNOTATION}=false; restart them`
            : `${w.subject.kind}/${w.subject.name} cannot be rolling-restarted; delete the pods`),
        'OptOutPodsRemain',
      );
    }
    const before = this.restorePhase.get(namespace);
    this.restorePhase.set(namespace, plan.phase);
    // Only transitions: a namespace that never had wpgw state stays silent.
    if (before === plan.phase || (plan.phase === 'done' && before === undefined)) return;
    const what: Record<RestorePhase, string> = {
      gateway: 'labelling the gateway pods for auto-mTLS and waiting for their rollout',
      callers: 'deleting the caller-side DestinationRules',
      services: `restoring Services ${names(plan.services.map((s) => s.service))}`,
      pods: `waiting for ${plan.pointing.length} pod(s) that still point at the gateway to be replaced`,
      cleanup: 'deleting the gateway and everything else wpgw made',
      done: 'done: nothing of wpgw is left in this namespace',
    };
    await this.event({
      target: nsTarget,
      type: 'Normal',
      reason: 'OptingOut',
      message:
        `namespace is no longer labelled wpgw.io/inject=enabled: ${what[plan.phase]}. ` +
        `Windows pods no longer behind the gateway call their destinations directly, without mTLS: under STRICT PeerAuthentication those calls fail`,
    });
  }

  /** Rolls the planned owners (once per reason) and warns about the rest. */
  private async runRestarts(
    namespace: string,
    plan: { restarts: RestartPlan[]; warnings: DriftWarning[] },
    report: ReconcileReport,
    fail: (what: string, err: unknown) => void,
    why: (r: RestartPlan) => string,
    warn: (w: DriftWarning) => string,
    warnReason = 'GatewayAddressChanged',
  ): Promise<void> {
    for (const r of plan.restarts) {
      const key = ownerKey(r.owner);
      const apiVersion = RESTARTABLE_API_VERSIONS[r.owner.kind];
      try {
        await this.o.writer.mergePatch(
          { apiVersion, kind: r.owner.kind, namespace, name: r.owner.name },
          restartPatch(this.now(), r.owner.kind),
        );
      } catch (err) {
        fail(`restart ${key}`, err);
        continue;
      }
      this.restarted.set(`${namespace}/${key}`, r.toIP);
      report.restarted.push(key);
      await this.event({
        target: { apiVersion, kind: r.owner.kind, name: r.owner.name, namespace, uid: r.owner.uid },
        type: 'Normal',
        reason: 'OwnerRestarted',
        message: why(r),
      });
    }
    for (const w of plan.warnings) {
      await this.event({
        target: { kind: w.subject.kind, name: w.subject.name, namespace, uid: w.subject.uid },
        type: 'Warning',
        reason: warnReason,
        message: warn(w),
      });
    }
  }

  private async checkGatewayReady(namespace: string, nsTarget: EventTarget): Promise<void> {
    const key = objectKey({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: GATEWAY_SERVICE, namespace },
    });
    const live =
      this.overlay.get(key) ?? this.o.cache.workload<V1Deployment>('deployments', namespace, GATEWAY_SERVICE);
    const ready = deploymentReady(live as V1Deployment | undefined);
    const before = this.gatewayReady.get(namespace);
    this.gatewayReady.set(namespace, ready);
    // Only a transition we watched happen: a restart on a converged cluster stays silent.
    if (before === false && ready) {
      const ip = clusterIPOf(this.o.cache.service(namespace, GATEWAY_SERVICE));
      const d = live as V1Deployment;
      await this.event({
        target: nsTarget,
        type: 'Normal',
        reason: 'GatewayReady',
        message: `gateway ${GATEWAY_SERVICE} is ready (${d.status?.readyReplicas ?? 0}/${d.spec?.replicas ?? 1} replicas)${ip ? ` at ${ip}` : ''}`,
      });
    }
  }

  /** Settings written where wpgw does not read them (core/hints.ts), as Warnings on the object concerned. */
  private async reportMisplacedSettings(namespace: string, nsObj: V1Namespace): Promise<void> {
    const { cache } = this.o;
    const workloads = WORKLOAD_RESOURCES.flatMap((r): WorkloadObject[] => cache.workloads(r, namespace));
    for (const h of settingHints(nsObj, { workloads, services: cache.services(namespace) }, (name) =>
      runtimeClassOSOf(cache, name),
    )) {
      const target: EventTarget = {
        kind: h.kind,
        name: h.name,
        namespace,
        ...(h.apiVersion ? { apiVersion: h.apiVersion } : {}),
        ...(h.uid ? { uid: h.uid } : {}),
      };
      await this.event({ target, type: 'Warning', reason: 'MisplacedSetting', message: h.message });
    }
  }

  /**
   * The namespace's egress report (core/desired/egress-report.ts), for `wpgw status`: whenever the
   * controller discovers ranges, or a name was refused.
   */
  private egressReport(namespace: string, input: NamespaceInput, state: DesiredState): KubeObject | undefined {
    const refusals = state.refusals ?? [];
    if (!this.o.clusterRanges && refusals.length === 0) return undefined;
    const nsTarget: EventTarget = { kind: 'Namespace', name: namespace, namespace };
    const report = egressReport({
      namespace,
      flags: this.o.desiredOptions.clusterCIDRs ?? [],
      // What the watch found, then the rest of the input's cluster addresses: the kubernetes Service's.
      discovered: mergeRanges(
        this.o.clusterRanges?.ranges() ?? [],
        (input.clusterAddresses ?? []).map((c) => ({ cidr: parseCidr(c).text, source: 'the kubernetes Service' })),
      ),
      discovery: this.o.clusterRanges?.discovery() ?? { nodes: 'off', serviceCIDRs: 'off' },
      ranges: namespaceEgressRanges(input, this.o.desiredOptions),
      refusals,
      ownerOf: (pod) => {
        const t = this.ownerTarget(namespace, `Pod/${pod}`, nsTarget);
        return `${t.kind}/${t.name}`;
      },
    });
    return egressReportConfigMap(namespace, report);
  }

  /** For a Pod subject: its top owner (Deployment, StatefulSet, ...), as restarts resolve it. */
  private ownerTarget(namespace: string, subject: string, nsTarget: EventTarget): EventTarget {
    const pod = subject.startsWith('Pod/')
      ? this.o.cache.managedPods(namespace).find((p) => p.metadata?.name === subject.slice(4))
      : undefined;
    if (!pod) return this.subjectTarget(namespace, subject, nsTarget);
    const owner = resolveTopOwner(pod, this.ownerLookup());
    return { kind: owner.kind, name: owner.name, namespace, ...(owner.uid ? { uid: owner.uid } : {}) };
  }

  private subjectTarget(namespace: string, subject: string, nsTarget: EventTarget): EventTarget {
    const slash = subject.indexOf('/');
    if (slash < 0) return nsTarget;
    const kind = subject.slice(0, slash);
    const name = subject.slice(slash + 1);
    if (kind === 'Namespace') return nsTarget;
    let uid: string | undefined;
    if (kind === 'Service') uid = this.o.cache.service(namespace, name)?.metadata?.uid;
    else if (kind === 'Pod')
      uid = this.o.cache.managedPods(namespace).find((p) => p.metadata?.name === name)?.metadata?.uid;
    else if (kind in USER_ISTIO_LISTS) {
      const list = this.o.cache.istioObjects(namespace)[USER_ISTIO_LISTS[kind]!] ?? [];
      uid = (list.find((o) => o.metadata.name === name)?.metadata as { uid?: string } | undefined)?.uid;
    }
    return { kind, name, namespace, uid };
  }

  private async event(ev: EventSpec): Promise<void> {
    await this.o.events.record(ev);
  }
}

export type { OwnerRef };

const APPLY_CONCURRENCY = 8;
/** Kinds of users' Istio objects a conflict may be about → their list in the cache. */
const USER_ISTIO_LISTS: Record<string, keyof UserIstioObjects> = {
  VirtualService: 'virtualServices',
  DestinationRule: 'destinationRules',
  AuthorizationPolicy: 'authorizationPolicies',
  PeerAuthentication: 'peerAuthentications',
  RequestAuthentication: 'requestAuthentications',
};
/** restartedFor value of owners rolled because their namespace opted out. */
const OPT_OUT_TAG = 'opt-out';

/** Runs fn over items with at most `limit` in flight; results in input order. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
