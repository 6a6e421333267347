// Leaving wpgw without an outage: the order in which a namespace is handed back, as a pure plan
// the controller (on opt-out) and `wpgw restore` (controller gone) both execute, one phase at a
// time, re-reading the cluster in between.
//
//  0. gateway:  label the gateway pods security.istio.io/tlsMode=istio and wait for the rollout.
//               Auto-mTLS then picks mTLS per endpoint: to the gateway pods, and plaintext to
//               the Windows pods once they are the endpoints. (The label is deprecated in
//               istio/api but honoured by istiod.) Gateways made since issue 13 carry it
//               already and have no caller DRs: this phase and the next are then skipped.
//  1. callers:  delete the caller-side DestinationRules wpgw made for `<name>` (ISTIO_MUTUAL).
//               With them still there, callers would speak mTLS to the restored Windows pods;
//               without the label, plaintext to the gateway's ISTIO_MUTUAL listeners.
//  2. services: restore each re-pointed Service to its original selector and ports. The gateway's
//               inbound listeners and `<name>-app` stay, for callers whose xDS still lags.
//  3. pods:     keep the whole gateway while any managed pod's hostAliases/dnsConfig point at it;
//               their owners are rolled (or reported); re-created pods are not admitted by wpgw.
//  4. cleanup:  delete everything the controller made (managed-by=wpgw and wpgw.io/for).
import type { V1Deployment, V1Pod, V1Service } from '@kubernetes/client-node';
import {
  GATEWAY_SERVICE,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  NUDGE_ANNOTATION,
  OWNER_LABEL,
  POD_STATUS_ANNOTATION,
} from '../names.js';
import type { KubeObject } from './desired-types.js';
import { ownerValue } from './desired/common.js';
import { TLS_MODE_LABEL } from './pod.js';
import { parseStatus } from './records.js';
import { restoredService } from './service.js';

export type RestorePhase = 'gateway' | 'callers' | 'services' | 'pods' | 'cleanup' | 'done';

export const RESTORE_PHASES: readonly RestorePhase[] = ['gateway', 'callers', 'services', 'pods', 'cleanup', 'done'];

export interface RestoreInput {
  namespace: string;
  /** Every Service in the namespace. */
  services: readonly V1Service[];
  /** Pods labelled wpgw.io/managed. */
  pods: readonly V1Pod[];
  /** Live objects labelled managed-by=wpgw (of the kinds wpgw makes). */
  managed: readonly KubeObject[];
}

export interface ServiceRestore {
  service: string;
  /** JSON merge patch: exact original selector (other keys nulled), ports, wpgw's keys removed, guarded by resourceVersion. */
  patch: Record<string, unknown>;
  selector: Record<string, string>;
}

export interface RestorePlan {
  namespace: string;
  phase: RestorePhase;
  services: ServiceRestore[];
  /** Managed objects to delete in this phase. */
  deletions: KubeObject[];
  /** Running managed pods whose injected hostAliases or dnsConfig still point at the gateway. */
  pointing: V1Pod[];
  /** Phase gateway: merge patch for Deployment wpgw (absent while its rollout is still under way). */
  gatewayPatch?: Record<string, unknown>;
}

/** Deployment rolled out: every desired replica updated and ready for the current generation. */
export function deploymentReady(d: V1Deployment | undefined): boolean {
  if (!d) return false;
  const want = d.spec?.replicas ?? 1;
  const s = d.status ?? {};
  if ((s.observedGeneration ?? 0) < (d.metadata?.generation ?? 0)) return false;
  return want > 0 && (s.readyReplicas ?? 0) >= want && (s.updatedReplicas ?? 0) >= want;
}

/**
 * Deployment rolled out as `kubectl rollout status` means it: every desired replica updated and
 * available, and no pod of an older template left. Callers pick mTLS per endpoint, so while an
 * old, unlabelled gateway pod still serves, deleting the caller rule makes them send it plaintext.
 */
export function rolledOut(d: V1Deployment | undefined): boolean {
  if (!d) return false;
  const want = d.spec?.replicas ?? 1;
  const s = d.status ?? {};
  if ((s.observedGeneration ?? 0) < (d.metadata?.generation ?? 0)) return false;
  return (
    want > 0 && (s.updatedReplicas ?? 0) >= want && (s.availableReplicas ?? 0) >= want && (s.replicas ?? 0) <= want
  );
}

const terminating = (o: { metadata?: object }): boolean =>
  Boolean((o.metadata as { deletionTimestamp?: unknown } | undefined)?.deletionTimestamp);

/** The DestinationRule wpgw made for callers of `<name>` (host `<name>.<ns>.svc.…`, owned by that Service). */
export function isCallerRule(obj: KubeObject, service: string, namespace: string): boolean {
  const host = (obj.spec as { host?: unknown } | undefined)?.host;
  return (
    obj.kind === 'DestinationRule' &&
    obj.metadata.labels?.[OWNER_LABEL] === ownerValue({ kind: 'service', name: service }) &&
    typeof host === 'string' &&
    host.startsWith(`${service}.${namespace}.svc.`)
  );
}

/** Pods still resolving through the gateway: running, with a wpgw.io/status record. */
export function podsPointingAtGateway(pods: readonly V1Pod[]): V1Pod[] {
  return pods.filter(
    (p) =>
      !terminating(p) &&
      p.status?.phase !== 'Succeeded' &&
      p.status?.phase !== 'Failed' &&
      parseStatus(p.metadata?.annotations?.[POD_STATUS_ANNOTATION]) !== undefined,
  );
}

/**
 * The merge patch that turns the live re-pointed Service into its restored form. Selector keys
 * not in the original are set to null: a client-side apply or Helm merge leaves the gateway key
 * beside the user's, and merge patches merge maps. resourceVersion makes it fail on a race.
 */
export function serviceRestorePatch(live: V1Service): ServiceRestore | undefined {
  const restored = restoredService(live);
  if (!restored) return undefined;
  const selector = restored.spec?.selector ?? {};
  const nulls = (from: Record<string, string> | undefined, keep: Record<string, string>): Record<string, null> =>
    Object.fromEntries(
      Object.keys(from ?? {})
        .filter((k) => !(k in keep))
        .map((k) => [k, null]),
    );
  const metaNulls = (
    from: Record<string, string> | undefined,
    keep: Record<string, string> | undefined,
    extra: string[] = [],
  ) => ({
    ...nulls(from, keep ?? {}),
    ...Object.fromEntries(extra.filter((k) => from?.[k] !== undefined).map((k) => [k, null])),
  });
  const labels = metaNulls(live.metadata?.labels, restored.metadata?.labels);
  const annotations = metaNulls(live.metadata?.annotations, restored.metadata?.annotations, [NUDGE_ANNOTATION]);
  return {
    service: live.metadata?.name ?? '',
    selector,
    patch: {
      metadata: {
        resourceVersion: live.metadata?.resourceVersion,
        ...(Object.keys(labels).length > 0 ? { labels } : {}),
        ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
      },
      spec: { selector: { ...nulls(live.spec?.selector, selector), ...selector }, ports: restored.spec?.ports ?? [] },
    },
  };
}

/** What to do next to hand this namespace back (see the phases above). Deterministic order. */
export function planRestore(input: RestoreInput): RestorePlan {
  const { namespace } = input;
  const byName = <T extends { metadata?: { name?: string } }>(a: T, b: T) =>
    (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '');
  const repointed = input.services
    .filter((s) => !terminating(s) && s.metadata?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE)
    .map(serviceRestorePatch)
    .filter((r): r is ServiceRestore => r !== undefined)
    .sort((a, b) => a.service.localeCompare(b.service));
  // Both labels: every object the controller makes has wpgw.io/for; an install that labels its
  // own objects managed-by=wpgw (kustomize commonLabels) must not lose them to `wpgw restore --all`.
  const live = input.managed.filter(
    (o) =>
      !terminating(o) &&
      o.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE &&
      o.metadata.labels?.[OWNER_LABEL] !== undefined,
  );
  const pointing = podsPointingAtGateway(input.pods).sort(byName);
  const plan = (phase: RestorePhase, services: ServiceRestore[], deletions: KubeObject[]): RestorePlan => ({
    namespace,
    phase,
    services,
    deletions: [...deletions].sort((a, b) =>
      `${a.kind}/${a.metadata.name}`.localeCompare(`${b.kind}/${b.metadata.name}`),
    ),
    pointing,
  });
  const callers = live.filter((o) => repointed.some((r) => isCallerRule(o, r.service, namespace)));
  const gateway = live.find((o) => o.kind === 'Deployment' && o.metadata.name === GATEWAY_SERVICE) as
    V1Deployment | undefined;
  if (callers.length > 0 && gateway) {
    if (gateway.spec?.template?.metadata?.labels?.[TLS_MODE_LABEL] !== 'istio') {
      return {
        ...plan('gateway', [], []),
        gatewayPatch: { spec: { template: { metadata: { labels: { [TLS_MODE_LABEL]: 'istio' } } } } },
      };
    }
    if (!rolledOut(gateway)) return plan('gateway', [], []);
  }
  if (callers.length > 0) return plan('callers', [], callers);
  if (repointed.length > 0) return plan('services', repointed, []);
  if (pointing.length > 0) return plan('pods', [], []);
  if (live.length > 0) return plan('cleanup', [], live);
  return plan('done', [], []);
}
