// `wpgw status [-n NS]`: what wpgw did and sees in each opted-in namespace (and how far handing
// back an opted-out one has come), read straight from the API (no watch), plus a plain-text rendering.
import type { KubeConfig, V1Deployment, V1Ingress, V1Namespace, V1Pod, V1Service } from '@kubernetes/client-node';
import { clusterIPOf } from '../cluster/admission-context.js';
import { RawKubeClient, errorMessage, errorStatus, type KubeRest } from '../cluster/client.js';
import { collectionPath, kindInfo, objectPath } from '../cluster/kinds.js';
import { annotationsOf, isOptedIn } from '../cluster/objects.js';
import { desiredNamespaceState } from '../core/desired.js';
import { MANAGED_KINDS, type Conflict, type DesiredOptions, type KubeObject, type NamespaceInput } from '../core/desired-types.js';
import { RESTORE_PHASES, planRestore, type RestorePhase } from '../core/restore.js';
import { readOriginal } from '../core/service.js';
import { LEAVE_PHASES, leaveReasonText, planServiceLeaves, stageLeaving, type LeavingService } from '../core/service-leave.js';
import { computeWindowsLabelSets } from '../cluster/admission-context.js';
import { WORKLOAD_RESOURCES, type Workload, type WorkloadResource } from '../cluster/cache.js';
import {
  DNS_SERVICE,
  ISTIO_REV_LABEL,
  GATEWAY_SERVICE,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  MANAGED_LABEL,
  NS_INJECT_ENABLED,
  NS_INJECT_LABEL,
  OUTBOUND_ANNOTATION,
  RESTART_ON_IP_CHANGE_ANNOTATION,
  SERVICE_ORIGINAL_ANNOTATION,
  appServiceName,
} from '../names.js';
import { DEFAULT_DESIRED_OPTIONS } from './defaults.js';
import { CLUSTER_DNS } from './input.js';
import { findDrift, type DriftedPod } from './owners.js';
import type { DesiredFn } from './reconcile.js';

export interface GatewayStatus {
  serviceIP?: string;
  dnsIP?: string;
  deployment?: { name: string; ready: number; desired: number };
}

export interface NamespaceStatus {
  namespace: string;
  optedIn: boolean;
  gateway: GatewayStatus;
  /** Services the webhook re-pointed at the gateway, and the Service that now reaches the app. */
  repointed: Array<{ service: string; app: string; onlyManaged: boolean }>;
  /** Raw wpgw.io/outbound annotation values of managed pods. */
  destinations: Array<{ pod: string; outbound: string }>;
  /** hostAliases pods whose recorded gateway address is not the current one. */
  drift: DriftedPod[];
  restartOnIpChange: boolean;
  conflicts: Conflict[];
  notes: string[];
  /** Not opted in but wpgw's state remains: how far handing it back has come (core/restore.ts). */
  optOut?: { phase: RestorePhase; services: string[]; pods: string[] };
  /** Opted in: re-pointed Services being handed back alone (core/service-leave.ts). */
  leaving: LeavingService[];
}

export interface StatusReport {
  namespaces: NamespaceStatus[];
  /** Problems reading the cluster (e.g. RBAC), per namespace or global. */
  errors: string[];
}

export interface StatusOptions {
  namespace?: string;
  desired?: Partial<DesiredOptions>;
  rest?: KubeRest;
  desiredFn?: DesiredFn;
}

const byName = (a: { metadata?: { name?: string } }, b: { metadata?: { name?: string } }): number =>
  (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '');

/** Pure: the status of one namespace from its objects. */
export function summarizeNamespace(
  input: NamespaceInput,
  gatewayDeployment: V1Deployment | undefined,
  desired: DesiredFn = desiredNamespaceState,
  desiredOptions: DesiredOptions = DEFAULT_DESIRED_OPTIONS,
  /** Objects labelled managed-by=wpgw (for opted-in namespaces: at least the DestinationRules). */
  managed: readonly KubeObject[] = [],
  /** Label sets of the namespace's Windows workloads and managed pods (unknown: none counts as unbacked). */
  windowsLabelSets?: ReadonlyArray<Readonly<Record<string, string>>>,
): NamespaceStatus {
  const ns = input.namespace.metadata?.name ?? '';
  const optedIn = isOptedIn(input.namespace);
  const gatewaySvc = input.services.find((s) => s.metadata?.name === GATEWAY_SERVICE);
  const dnsSvc = input.services.find((s) => s.metadata?.name === DNS_SERVICE);
  const serviceIP = clusterIPOf(gatewaySvc);
  // status runs without the controller's --istio-revision: the live gateway's label says what it chose.
  const liveRevision = gatewayDeployment?.spec?.template?.metadata?.labels?.[ISTIO_REV_LABEL];
  const options = liveRevision && !desiredOptions.istioRevision ? { ...desiredOptions, istioRevision: liveRevision } : desiredOptions;
  const leave = optedIn
    ? planServiceLeaves({ namespace: ns, services: input.services, windowsLabelSets, managed: gatewayDeployment ? [...managed, { ...gatewayDeployment, apiVersion: 'apps/v1', kind: 'Deployment' } as KubeObject] : managed })
    : undefined;
  const state = leave ? stageLeaving(desired(input, options), leave, input) : { conflicts: [], notes: [] };
  const gateway: GatewayStatus = {};
  if (serviceIP) gateway.serviceIP = serviceIP;
  const dnsIP = clusterIPOf(dnsSvc);
  if (dnsIP) gateway.dnsIP = dnsIP;
  if (gatewayDeployment) {
    gateway.deployment = {
      name: gatewayDeployment.metadata?.name ?? GATEWAY_SERVICE,
      ready: gatewayDeployment.status?.readyReplicas ?? 0,
      desired: gatewayDeployment.spec?.replicas ?? 1,
    };
  }
  return {
    namespace: ns,
    optedIn,
    gateway,
    repointed: input.services
      .filter((s) => SERVICE_ORIGINAL_ANNOTATION in annotationsOf(s))
      .sort(byName)
      .map((s) => ({ service: s.metadata?.name ?? '', app: appServiceName(s.metadata?.name ?? ''), onlyManaged: readOriginal(s)?.onlyManaged === true })),
    destinations: [...input.pods]
      .sort(byName)
      .filter((p) => annotationsOf(p)[OUTBOUND_ANNOTATION] !== undefined)
      .map((p) => ({ pod: p.metadata?.name ?? '', outbound: annotationsOf(p)[OUTBOUND_ANNOTATION] ?? '' })),
    drift: findDrift(input.pods, serviceIP),
    restartOnIpChange: annotationsOf(input.namespace)[RESTART_ON_IP_CHANGE_ANNOTATION] !== 'false',
    conflicts: state.conflicts,
    notes: state.notes,
    leaving: leave?.leaving ?? [],
    ...(optedIn ? {} : optOutOf(input, managed)),
  };
}

function optOutOf(input: NamespaceInput, managed: readonly KubeObject[]): Pick<NamespaceStatus, 'optOut'> {
  const ns = input.namespace.metadata?.name ?? '';
  const plan = planRestore({ namespace: ns, services: input.services, pods: input.pods, managed });
  if (plan.phase === 'done') return {};
  const services = input.services.filter((s) => SERVICE_ORIGINAL_ANNOTATION in annotationsOf(s)).map((s) => s.metadata?.name ?? '');
  return { optOut: { phase: plan.phase, services, pods: plan.pointing.map((p) => p.metadata?.name ?? '') } };
}

/** Live objects of one kind labelled managed-by=wpgw (none when the kind's CRD is not installed). */
export async function listManaged(rest: KubeRest, apiVersion: string, kind: string, ns: string | undefined): Promise<KubeObject[]> {
  try {
    const list = await rest.request<List<KubeObject>>('GET', collectionPath(kindInfo(apiVersion, kind), ns), { query: { labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}` } });
    // Lists carry no apiVersion/kind per item.
    return (list.items ?? []).map((o) => ({ ...o, apiVersion, kind }));
  } catch (err) {
    if (errorStatus(err) === 404) return [];
    throw err;
  }
}

/** Every kind the controller makes, in one namespace (or all). */
export async function listAllManaged(rest: KubeRest, ns: string | undefined): Promise<KubeObject[]> {
  return (await Promise.all(MANAGED_KINDS.map((k) => listManaged(rest, k.apiVersion, k.kind, ns)))).flat();
}

interface List<T> {
  items?: T[];
}

/** Reads the cluster and summarizes each opted-in namespace (or just `namespace`). */
export async function collectStatus(kc: KubeConfig, opts: StatusOptions = {}): Promise<StatusReport> {
  const rest = opts.rest ?? new RawKubeClient(kc);
  const desiredOptions = { ...DEFAULT_DESIRED_OPTIONS, ...opts.desired };
  const errors: string[] = [];
  const nsInfo = kindInfo('v1', 'Namespace');
  let namespaces: V1Namespace[];
  if (opts.namespace) {
    try {
      namespaces = [await rest.request<V1Namespace>('GET', objectPath(nsInfo, undefined, opts.namespace))];
    } catch (err) {
      return { namespaces: [], errors: [errorStatus(err) === 404 ? `namespace ${opts.namespace} not found` : `namespace ${opts.namespace}: ${errorMessage(err)}`] };
    }
  } else {
    const list = await rest.request<List<V1Namespace>>('GET', collectionPath(nsInfo), {
      query: { labelSelector: `${NS_INJECT_LABEL}=${NS_INJECT_ENABLED}` },
    });
    namespaces = list.items ?? [];
    // Namespaces that opted out but still hold a gateway of ours: show how far the hand-back is.
    const gateways = await listManaged(rest, 'apps/v1', 'Deployment', undefined);
    const listed = new Set(namespaces.map((n) => n.metadata?.name));
    for (const g of gateways) {
      const name = g.metadata.namespace;
      if (g.metadata.name !== GATEWAY_SERVICE || !name || listed.has(name)) continue;
      listed.add(name);
      namespaces.push(await rest.request<V1Namespace>('GET', objectPath(nsInfo, undefined, name)));
    }
    namespaces.sort(byName);
  }

  let clusterDnsIP: string | undefined;
  try {
    clusterDnsIP = clusterIPOf(await rest.request<V1Service>('GET', objectPath(kindInfo('v1', 'Service'), CLUSTER_DNS.namespace, CLUSTER_DNS.name)));
  } catch (err) {
    if (errorStatus(err) !== 404) errors.push(`kube-system/kube-dns: ${errorMessage(err)}`);
  }

  const out: NamespaceStatus[] = [];
  for (const namespace of namespaces) {
    const ns = namespace.metadata?.name ?? '';
    try {
      const [services, pods, deployment, ingresses] = await Promise.all([
        rest.request<List<V1Service>>('GET', collectionPath(kindInfo('v1', 'Service'), ns)),
        rest.request<List<V1Pod>>('GET', collectionPath(kindInfo('v1', 'Pod'), ns), { query: { labelSelector: MANAGED_LABEL } }),
        rest.request<V1Deployment>('GET', objectPath(kindInfo('apps/v1', 'Deployment'), ns, GATEWAY_SERVICE)).catch((err: unknown) => {
          if (errorStatus(err) === 404) return undefined;
          throw err;
        }),
        rest.request<List<V1Ingress>>('GET', collectionPath(kindInfo('networking.k8s.io/v1', 'Ingress'), ns)),
      ]);
      const input: NamespaceInput = {
        namespace,
        pods: (pods.items ?? []).sort(byName),
        services: (services.items ?? []).sort(byName),
        ingresses: (ingresses.items ?? []).sort(byName),
        ...(clusterDnsIP ? { clusterDnsIP } : {}),
      };
      const optedIn = isOptedIn(namespace);
      const anyRepointed = input.services.some((s) => readOriginal(s));
      const managed = !optedIn ? await listAllManaged(rest, ns) : anyRepointed ? await listManaged(rest, 'networking.istio.io/v1', 'DestinationRule', ns) : [];
      const windows = optedIn && anyRepointed ? await windowsLabelSetsOf(rest, ns, input.pods) : undefined;
      out.push(summarizeNamespace(input, deployment, opts.desiredFn ?? desiredNamespaceState, desiredOptions, managed, windows));
    } catch (err) {
      errors.push(`namespace ${ns}: ${errorMessage(err)}`);
    }
  }
  return { namespaces: out, errors };
}

const WORKLOAD_KINDS: Record<WorkloadResource, [string, string]> = {
  deployments: ['apps/v1', 'Deployment'],
  statefulsets: ['apps/v1', 'StatefulSet'],
  daemonsets: ['apps/v1', 'DaemonSet'],
  replicasets: ['apps/v1', 'ReplicaSet'],
  jobs: ['batch/v1', 'Job'],
  cronjobs: ['batch/v1', 'CronJob'],
  rollouts: ['argoproj.io/v1alpha1', 'Rollout'],
};

/** The webhook's and controller's view of which labels are Windows, from one read of the namespace's workloads. */
async function windowsLabelSetsOf(rest: KubeRest, ns: string, pods: V1Pod[]): Promise<ReadonlyArray<Readonly<Record<string, string>>>> {
  const lists = await Promise.all(
    WORKLOAD_RESOURCES.map(async (r) => {
      const [apiVersion, kind] = WORKLOAD_KINDS[r];
      try {
        return [r, (await rest.request<List<Workload>>('GET', collectionPath(kindInfo(apiVersion, kind), ns))).items ?? []] as const;
      } catch (err) {
        // Argo Rollouts not installed, or not readable with this kubeconfig: no such workloads.
        if (errorStatus(err) === 404 || (r === 'rollouts' && errorStatus(err) === 403)) return [r, []] as const;
        throw err;
      }
    }),
  );
  const byResource = new Map<WorkloadResource, readonly Workload[]>(lists);
  const classes = (await rest.request<List<{ metadata?: { name?: string }; scheduling?: { nodeSelector?: Record<string, string> } }>>('GET', collectionPath(kindInfo('node.k8s.io/v1', 'RuntimeClass'))).catch(() => ({ items: [] }))).items ?? [];
  return computeWindowsLabelSets(
    { managedPods: () => pods, workloads: (r) => [...(byResource.get(r) ?? [])] },
    ns,
    (name) => classes.find((c) => c.metadata?.name === name)?.scheduling?.nodeSelector?.['kubernetes.io/os'],
  );
}

/** Human-readable report, one block per namespace. */
export function formatStatus(report: StatusReport): string {
  const lines: string[] = [];
  if (report.namespaces.length === 0 && report.errors.length === 0) {
    lines.push(`no namespace is labelled ${NS_INJECT_LABEL}=${NS_INJECT_ENABLED}`);
  }
  for (const s of report.namespaces) {
    if (lines.length > 0) lines.push('');
    lines.push(`Namespace ${s.namespace}${s.optedIn ? '' : ` (not opted in: label ${NS_INJECT_LABEL}=${NS_INJECT_ENABLED} missing)`}`);
    const g = s.gateway;
    const dep = g.deployment ? `deployment ${g.deployment.name} ${g.deployment.ready}/${g.deployment.desired} ready` : 'deployment missing';
    lines.push(`  gateway:      Service ${GATEWAY_SERVICE} ${g.serviceIP ?? '(no address)'}${g.dnsIP ? `, dns ${g.dnsIP}` : ''}; ${dep}`);
    if (s.repointed.length === 0) lines.push('  re-pointed:   none');
    else {
      for (const r of s.repointed) {
        const only = r.onlyManaged ? '; only its wpgw-managed pods: the selector also matches workloads wpgw does not manage' : '';
        lines.push(`  re-pointed:   ${r.service} -> gateway (app reachable as ${r.app}${only})`);
      }
    }
    if (s.destinations.length === 0) lines.push('  destinations: none declared');
    else for (const d of s.destinations) lines.push(`  destinations: pod ${d.pod}: ${d.outbound}`);
    if (s.drift.length === 0) lines.push('  drift:        none');
    else {
      for (const d of s.drift) {
        lines.push(`  drift:        pod ${d.pod} points at ${d.recordedIP}, gateway is ${d.currentIP}${s.restartOnIpChange ? '' : ' (auto-restart disabled)'}`);
      }
    }
    if (s.conflicts.length === 0) lines.push('  conflicts:    none');
    else for (const c of s.conflicts) lines.push(`  conflict:     ${c.subject}: ${c.reason}: ${c.message}`);
    for (const n of s.notes) lines.push(`  note:         ${n}`);
    for (const l of s.leaving) {
      lines.push(`  leaving:      Service ${l.service} (${leaveReasonText(l.reason)}): phase ${l.phase} (${LEAVE_PHASES.join(' -> ')}); then its Windows pods are reached directly, without mTLS: under STRICT PeerAuthentication for its callers those calls fail`);
    }
    if (s.optOut) {
      const o = s.optOut;
      lines.push(`  opting out:   phase ${o.phase} (${RESTORE_PHASES.filter((p) => p !== 'done').join(' -> ')})`);
      if (o.services.length > 0) lines.push(`  opting out:   Services still re-pointed: ${o.services.join(', ')}`);
      if (o.pods.length > 0) {
        const how = s.restartOnIpChange ? 'their owners are rolled' : `restart them (${RESTART_ON_IP_CHANGE_ANNOTATION}=false)`;
        lines.push(`  opting out:   pods still resolving through the gateway: ${o.pods.join(', ')}; ${how}`);
      }
      lines.push('  opting out:   replaced Windows pods call their destinations directly, without mTLS: under STRICT PeerAuthentication those calls fail');
    }
  }
  for (const e of report.errors) lines.push(`error: ${e}`);
  return `${lines.join('\n')}\n`;
}
