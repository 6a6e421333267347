// Gateway address drift: hostAliases-mode pods have the gateway IP baked into /etc/hosts. When the
// `wpgw` Service is re-created with another address they must be restarted; we find the workload
// that owns them and do what `kubectl rollout restart` does.
import type {
  V1DaemonSet,
  V1Deployment,
  V1OwnerReference,
  V1Pod,
  V1ReplicaSet,
  V1StatefulSet,
} from '@kubernetes/client-node';
import type { ClusterCache, Rollout } from '../cluster/cache.js';
import { ROLLOUT_KIND } from '../cluster/kinds.js';
import { timeOf } from '../cluster/objects.js';
import { findDrift } from '../core/records.js';
import { RESTARTED_AT_ANNOTATION } from '../names.js';

export const RESTARTABLE_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet', 'Rollout'] as const;
export type RestartableKind = (typeof RESTARTABLE_KINDS)[number];

/** The apiVersion to address each restartable kind with. */
export const RESTARTABLE_API_VERSIONS: Record<RestartableKind, string> = {
  Deployment: 'apps/v1',
  StatefulSet: 'apps/v1',
  DaemonSet: 'apps/v1',
  Rollout: ROLLOUT_KIND.apiVersion,
};

export interface OwnerRef {
  kind: string;
  name: string;
  uid?: string;
}

export interface OwnerLookup {
  replicaSet(namespace: string, name: string): V1ReplicaSet | undefined;
  deployment(namespace: string, name: string): V1Deployment | undefined;
  statefulSet(namespace: string, name: string): V1StatefulSet | undefined;
  daemonSet(namespace: string, name: string): V1DaemonSet | undefined;
  rollout(namespace: string, name: string): Rollout | undefined;
}

/** Owners as the watch cache holds them. */
export function cacheOwnerLookup(cache: Pick<ClusterCache, 'workload'>): OwnerLookup {
  return {
    replicaSet: (ns, n) => cache.workload('replicasets', ns, n),
    deployment: (ns, n) => cache.workload('deployments', ns, n),
    statefulSet: (ns, n) => cache.workload('statefulsets', ns, n),
    daemonSet: (ns, n) => cache.workload('daemonsets', ns, n),
    rollout: (ns, n) => cache.workload('rollouts', ns, n),
  };
}

type Restartable = V1Deployment | V1StatefulSet | V1DaemonSet | Rollout;

export function controllerRef(obj: {
  metadata?: { ownerReferences?: V1OwnerReference[] };
}): V1OwnerReference | undefined {
  return obj.metadata?.ownerReferences?.find((r) => r.controller);
}

/**
 * The top-most owner we can act on: Pod → ReplicaSet → Deployment or Argo Rollout, or the
 * StatefulSet/DaemonSet, else the immediate controller (Job, orphan ReplicaSet, ...) or the Pod itself.
 */
export function resolveTopOwner(pod: V1Pod, lookup: OwnerLookup): OwnerRef {
  const ns = pod.metadata?.namespace ?? '';
  const self: OwnerRef = { kind: 'Pod', name: pod.metadata?.name ?? '', uid: pod.metadata?.uid };
  const ref = controllerRef(pod);
  if (!ref) return self;
  if (ref.kind === 'ReplicaSet') {
    const rs = lookup.replicaSet(ns, ref.name);
    const dref = rs ? controllerRef(rs) : undefined;
    if (dref?.kind === 'Deployment') {
      const d = lookup.deployment(ns, dref.name);
      if (d) return { kind: 'Deployment', name: dref.name, uid: d.metadata?.uid ?? dref.uid };
    }
    if (dref?.kind === ROLLOUT_KIND.kind && dref.apiVersion?.startsWith('argoproj.io/')) {
      const r = lookup.rollout(ns, dref.name);
      if (r) return { kind: ROLLOUT_KIND.kind, name: dref.name, uid: r.metadata?.uid ?? dref.uid };
    }
    return { kind: 'ReplicaSet', name: ref.name, uid: ref.uid };
  }
  return { kind: ref.kind, name: ref.name, uid: ref.uid };
}

export function isRestartable(kind: string): kind is RestartableKind {
  return (RESTARTABLE_KINDS as readonly string[]).includes(kind);
}

export function restartableObject(ns: string, owner: OwnerRef, lookup: OwnerLookup): Restartable | undefined {
  switch (owner.kind) {
    case 'Deployment':
      return lookup.deployment(ns, owner.name);
    case 'StatefulSet':
      return lookup.statefulSet(ns, owner.name);
    case 'DaemonSet':
      return lookup.daemonSet(ns, owner.name);
    case 'Rollout':
      return lookup.rollout(ns, owner.name);
    default:
      return undefined;
  }
}

export interface RestartPlan {
  owner: OwnerRef & { kind: RestartableKind };
  pods: string[];
  toIP: string;
}

export interface DriftWarning {
  /** What the Warning Event is about: the owner if known, else the pod. */
  subject: OwnerRef;
  pods: string[];
  toIP: string;
  why: 'disabled' | 'not-restartable';
}

export interface DriftPlanInput {
  pods: readonly V1Pod[];
  currentIP: string | undefined;
  /** Namespace annotation wpgw.io/restart-on-ip-change is not "false". */
  restartEnabled: boolean;
  lookup: OwnerLookup;
  /** IP this process last restarted the owner for ("Kind/name"), to restart once per owner per IP. */
  restartedFor?: (ownerKey: string) => string | undefined;
}

export function ownerKey(o: OwnerRef): string {
  return `${o.kind}/${o.name}`;
}

/** Owners to restart and what to warn about instead. Deterministic order. */
export function planDriftActions(input: DriftPlanInput): { restarts: RestartPlan[]; warnings: DriftWarning[] } {
  const drift = findDrift(input.pods, input.currentIP);
  if (drift.length === 0 || !input.currentIP) return { restarts: [], warnings: [] };
  const drifted = new Set(drift.map((d) => d.pod));
  return planOwnerRestarts(
    input.pods.filter((p) => drifted.has(p.metadata?.name ?? '')),
    input.currentIP,
    input,
  );
}

/**
 * Owners of `pods` to roll, once per `toIP` (a gateway address, or another reason such as
 * opting out), and what to warn about instead (restart disabled, owner not restartable).
 */
export function planOwnerRestarts(
  pods: readonly V1Pod[],
  toIP: string,
  input: Pick<DriftPlanInput, 'restartEnabled' | 'lookup' | 'restartedFor'>,
): { restarts: RestartPlan[]; warnings: DriftWarning[] } {
  const restarts = new Map<string, RestartPlan>();
  const warnings = new Map<string, DriftWarning>();
  for (const pod of pods) {
    const name = pod.metadata?.name ?? '';
    const ns = pod.metadata?.namespace ?? '';
    const owner = resolveTopOwner(pod, input.lookup);
    const key = ownerKey(owner);
    const obj = isRestartable(owner.kind) ? restartableObject(ns, owner, input.lookup) : undefined;
    if (!input.restartEnabled || !obj || !isRestartable(owner.kind)) {
      const w = warnings.get(key) ?? {
        subject: owner,
        pods: [],
        toIP,
        why: input.restartEnabled ? 'not-restartable' : 'disabled',
      };
      w.pods.push(name);
      warnings.set(key, w);
      continue;
    }
    if (input.restartedFor?.(key) === toIP) continue;
    // Durable "once": a restart stamped after this pod was created is already rolling it away.
    const stamped = restartStamp(owner.kind, obj);
    const created = timeOf(pod.metadata?.creationTimestamp);
    if (stamped !== undefined && created !== undefined && stamped >= created) continue;
    const r = restarts.get(key) ?? { owner: { ...owner, kind: owner.kind }, pods: [], toIP };
    r.pods.push(name);
    restarts.set(key, r);
  }
  const sort = <T extends { pods: string[] }>(m: Map<string, T>): T[] =>
    [...m.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, v]) => ({ ...v, pods: [...v.pods].sort() }));
  return { restarts: sort(restarts), warnings: sort(warnings) };
}

/**
 * JSON merge patch that rolls the workload's pods, like `kubectl rollout restart`. A Rollout is
 * restarted the way `kubectl argo rollouts restart` does (spec.restartAt: pods are replaced
 * without a new revision, so no canary steps or analysis run for a gateway address change).
 */
export function restartPatch(now: Date, kind: RestartableKind = 'Deployment'): Record<string, unknown> {
  if (kind === 'Rollout') return { spec: { restartAt: now.toISOString() } };
  return { spec: { template: { metadata: { annotations: { [RESTARTED_AT_ANNOTATION]: now.toISOString() } } } } };
}

/** When restartPatch last stamped this workload (ms), if ever. */
function restartStamp(kind: RestartableKind, obj: Restartable): number | undefined {
  if (kind === 'Rollout') return timeOf((obj as Rollout).spec?.restartAt);
  return timeOf(obj.spec?.template?.metadata?.annotations?.[RESTARTED_AT_ANNOTATION]);
}
