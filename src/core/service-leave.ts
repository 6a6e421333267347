// Handing back one Service while its namespace stays opted in: `wpgw.io/inject=false` added to a
// re-pointed Service, or no Windows workload or pod left behind its recorded selector (the app
// moved to Linux, the Windows workload was deleted). The order of a namespace opt-out
// (core/restore.ts), per Service, laid over the namespace's desired state:
//
//  gateway:   while any Service leaves, the gateway pods carry security.istio.io/tlsMode=istio
//             (a rolling update); callers' auto-mTLS then keeps sending mTLS to them without the
//             caller-side DestinationRule.
//  callers:   the caller-side DestinationRule wpgw-in-<name> leaves the desired state (pruned). The
//             Service's direct-access NetworkPolicy (its clients reach the Windows pods) comes first.
//  services:  the Service is restored (serviceRestorePatch), once that DestinationRule is gone.
//  lingering: for a grace period after the restore, the Service's gateway listener, `<name>-app`
//             and their policies stay, for callers whose xDS still sends to the gateway pods.
import type { V1Deployment, V1Service } from '@kubernetes/client-node';
import { GATEWAY_POD_LABEL, GATEWAY_SERVICE, INJECT_KEY, MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../names.js';
import type { DesiredState, KubeObject, NamespaceInput } from './desired-types.js';
import { directAccess } from './desired/direct.js';
import { TLS_MODE_LABEL } from './pod.js';
import { isCallerRule, rolledOut, serviceRestorePatch, type ServiceRestore } from './restore.js';
import { readOriginal } from './records.js';
import { selectorMatches } from './labels.js';
import { restoredService } from './service.js';
import { serviceInjectValue } from './service-rules.js';

export type LeaveReason = 'opted_out' | 'no_windows_pods';
export type LeavePhase = 'gateway' | 'callers' | 'services' | 'lingering';
export const LEAVE_PHASES: readonly LeavePhase[] = ['gateway', 'callers', 'services', 'lingering'];

type LabelSet = Readonly<Record<string, string>>;

export interface ServiceLeaveInput {
  namespace: string;
  /** Every Service in the namespace, live. */
  services: readonly V1Service[];
  /**
   * Pod-template labels of the namespace's Windows workloads and labels of its managed pods.
   * Undefined when not known (`wpgw render`): then no Service counts as unbacked.
   */
  windowsLabelSets?: readonly LabelSet[];
  /** Live objects labelled managed-by=wpgw (the controller's own unobserved writes laid over). */
  managed: readonly KubeObject[];
  /** Services restored moments ago, as they were while re-pointed (their listeners linger). */
  lingering?: readonly V1Service[];
}

export interface LeavingService {
  service: string;
  reason: LeaveReason;
  phase: LeavePhase;
}

export interface ServiceLeavePlan {
  namespace: string;
  leaving: LeavingService[];
  /** Restores to make now (phase services). */
  restores: ServiceRestore[];
  /** What the desired state is computed from: the live Services, lingering ones as they were re-pointed. */
  services: V1Service[];
}

/** Why a re-pointed Service should be handed back while its namespace stays in; undefined: it stays. */
/** Why, in words (Events, status). */
export function leaveReasonText(reason: LeaveReason): string {
  return reason === 'opted_out' ? `labelled ${INJECT_KEY}=false` : 'no Windows workload or pod matches it any more';
}

export function leaveReason(
  service: V1Service,
  namespace: string,
  windowsLabelSets: readonly LabelSet[] | undefined,
): LeaveReason | undefined {
  if (service.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE || service.metadata?.deletionTimestamp)
    return undefined;
  const original = readOriginal(service);
  if (!original || service.spec?.selector?.[GATEWAY_POD_LABEL] !== namespace) return undefined;
  if (serviceInjectValue(service) === 'false') return 'opted_out';
  if (windowsLabelSets && !windowsLabelSets.some((labels) => selectorMatches(original.selector, labels)))
    return 'no_windows_pods';
  return undefined;
}

/** The gateway pods carry the auto-mTLS label: that template rolled out, no older pod left. */
export function gatewayLabelledForCallers(gateway: V1Deployment | undefined): boolean {
  return gateway?.spec?.template?.metadata?.labels?.[TLS_MODE_LABEL] === 'istio' && rolledOut(gateway);
}

export function planServiceLeaves(input: ServiceLeaveInput): ServiceLeavePlan {
  const { namespace } = input;
  const lingering = new Map((input.lingering ?? []).map((s) => [s.metadata?.name ?? '', s]));
  const gateway = input.managed.find(
    (o) =>
      o.kind === 'Deployment' &&
      o.metadata.name === GATEWAY_SERVICE &&
      o.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE,
  ) as V1Deployment | undefined;
  const leaving: LeavingService[] = [];
  const restores: ServiceRestore[] = [];
  const services = input.services.map((live) => {
    const name = live.metadata?.name ?? '';
    const before = lingering.get(name);
    if (before) {
      const reason = leaveReason(before, namespace, undefined) ?? 'no_windows_pods';
      leaving.push({ service: name, reason, phase: 'lingering' });
      return before;
    }
    const reason = leaveReason(live, namespace, input.windowsLabelSets);
    if (!reason) return live;
    const callerRule = input.managed.some((o) => isCallerRule(o, name, namespace));
    const phase: LeavePhase = !callerRule
      ? 'services'
      : gateway && !gatewayLabelledForCallers(gateway)
        ? 'gateway'
        : 'callers';
    leaving.push({ service: name, reason, phase });
    const restore = phase === 'services' ? serviceRestorePatch(live) : undefined;
    if (restore) restores.push(restore);
    return live;
  });
  leaving.sort((a, b) => a.service.localeCompare(b.service));
  return { namespace, leaving, restores, services };
}

/**
 * The desired state with the plan laid over it: the gateway template labelled while a Service
 * leaves, leaving Services' caller rules dropped once the gateway is labelled, and their clients
 * admitted to the Windows pods (wpgw-direct-<name>) before they are restored.
 */
export function stageLeaving(state: DesiredState, plan: ServiceLeavePlan, input: NamespaceInput): DesiredState {
  if (plan.leaving.length === 0) return state;
  const { namespace } = plan;
  const dropRule = new Set(plan.leaving.filter((l) => l.phase !== 'gateway').map((l) => l.service));
  const objects = state.objects
    .filter((o) => ![...dropRule].some((name) => isCallerRule(o, name, namespace)))
    .map((o) => (o.kind === 'Deployment' && o.metadata.name === GATEWAY_SERVICE ? withTlsModeLabel(o) : o));
  const leavingNames = new Set(plan.leaving.map((l) => l.service));
  const restoredViews = plan.services
    .filter((s) => leavingNames.has(s.metadata?.name ?? ''))
    .map((s) => restoredService(s) ?? s);
  const have = new Set(objects.map((o) => `${o.kind}/${o.metadata.name}`));
  const direct = directAccess(namespace, restoredViews, input.pods, input.ingresses ?? []).objects.filter(
    (o) => !have.has(`${o.kind}/${o.metadata.name}`),
  );
  return { ...state, objects: [...objects, ...direct] };
}

function withTlsModeLabel(d: KubeObject): KubeObject {
  const spec = d.spec as V1Deployment['spec'];
  const template = spec?.template;
  return {
    ...d,
    spec: {
      ...spec,
      template: {
        ...template,
        metadata: { ...template?.metadata, labels: { ...template?.metadata?.labels, [TLS_MODE_LABEL]: 'istio' } },
      },
    },
  };
}
