// `wpgw status [-n NS]`: what wpgw did and sees in each opted-in namespace (and how far handing
// back an opted-out one has come), read straight from the API (no watch), plus a plain-text rendering.
import type {
  KubeConfig,
  V1Deployment,
  V1Ingress,
  V1Namespace,
  V1Pod,
  V1RuntimeClass,
  V1Service,
} from '@kubernetes/client-node';
import { clusterIPOf } from '../cluster/admission-context.js';
import { RawKubeClient, errorMessage, errorStatus, type KubeRest } from '../cluster/client.js';
import { ROLLOUT_KIND, SIDECAR_KIND, collectionPath, kindInfo, objectPath, type KindInfo } from '../cluster/kinds.js';
import { scopeInUse } from '../core/desired/mesh.js';
import { istioRootNamespace } from '../core/desired/egress.js';
import { callerObjects } from '../core/desired/user-conflicts.js';
import type { Sidecar } from '../core/mesh-scope.js';
import { annotationsOf, isOptedIn } from '../cluster/objects.js';
import { desiredNamespaceState } from '../core/desired.js';
import { namespaceHints, settingHints } from '../core/hints.js';
import type { WorkloadObject } from '../core/workloads.js';
import {
  MANAGED_KINDS,
  subjectText,
  type Conflict,
  type DesiredOptions,
  type KubeObject,
  type NamespaceInput,
  type UserIstioObjects,
} from '../core/desired-types.js';
import { RESTORE_PHASES, planRestore, type RestorePhase } from '../core/restore.js';
import { findDrift, readOriginal, type DriftedPod } from '../core/records.js';
import {
  LEAVE_PHASES,
  leaveReasonText,
  planServiceLeaves,
  stageLeaving,
  type LeavingService,
} from '../core/service-leave.js';
import { fromLists, namespaceView } from '../core/namespace-view.js';
import {
  EGRESS_REPORT,
  formatEgressReport,
  readEgressReport,
  type EgressReport,
} from '../core/desired/egress-report.js';
import {
  DNS_SERVICE,
  ISTIO_REV_LABEL,
  GATEWAY_SERVICE,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  MANAGED_LABEL,
  NS_INJECT_ENABLED,
  NS_INJECT_LABEL,
  OS_LABEL,
  OUTBOUND_ANNOTATION,
  RESTART_ON_IP_CHANGE_ANNOTATION,
  SERVICE_ORIGINAL_ANNOTATION,
  appServiceName,
} from '../names.js';
import { DEFAULT_DESIRED_OPTIONS } from '../defaults.js';
import { CLUSTER_DNS } from '../cluster/cache.js';

type DesiredFn = typeof desiredNamespaceState;

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
  /** Settings written where wpgw does not read them (core/hints.ts); absent when there are none. */
  hints?: Array<{ subject: string; message: string }>;
  /** Opted in: re-pointed Services being handed back alone (core/service-leave.ts). */
  leaving: LeavingService[];
  /** The controller's egress report (refused names, cluster ranges in force); absent: not readable or not written yet. */
  egress?: EgressReport;
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
  /** The namespace's workloads and how RuntimeClasses pin an OS (misplaced-setting hints), and the
   * label sets of its Windows workloads and managed pods (unknown: no Service counts as unbacked). */
  more: {
    workloads?: readonly WorkloadObject[];
    allPods?: readonly V1Pod[];
    runtimeClassOS?: (name: string) => string | undefined;
    windowsLabelSets?: ReadonlyArray<Readonly<Record<string, string>>>;
  } = {},
): NamespaceStatus {
  const ns = input.namespace.metadata?.name ?? '';
  const optedIn = isOptedIn(input.namespace);
  const gatewaySvc = input.services.find((s) => s.metadata?.name === GATEWAY_SERVICE);
  const dnsSvc = input.services.find((s) => s.metadata?.name === DNS_SERVICE);
  const serviceIP = clusterIPOf(gatewaySvc);
  // status runs without the controller's --istio-revision: the live gateway's label says what it chose.
  const liveRevision = gatewayDeployment?.spec?.template?.metadata?.labels?.[ISTIO_REV_LABEL];
  const options =
    liveRevision && !desiredOptions.istioRevision ? { ...desiredOptions, istioRevision: liveRevision } : desiredOptions;
  const leave = optedIn
    ? planServiceLeaves({
        namespace: ns,
        services: input.services,
        windowsLabelSets: more.windowsLabelSets,
        managed: gatewayDeployment
          ? [...managed, { ...gatewayDeployment, apiVersion: 'apps/v1', kind: 'Deployment' } as KubeObject]
          : managed,
      })
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
  const hints = settingHints(
    input.namespace,
    { workloads: more.workloads, pods: more.allPods, services: input.services },
    more.runtimeClassOS ?? (() => undefined),
  ).map((h) => ({ subject: `${h.kind}/${h.name}`, message: h.message }));
  return {
    namespace: ns,
    optedIn,
    gateway,
    repointed: input.services
      .filter((s) => SERVICE_ORIGINAL_ANNOTATION in annotationsOf(s))
      .sort(byName)
      .map((s) => ({
        service: s.metadata?.name ?? '',
        app: appServiceName(s.metadata?.name ?? ''),
        onlyManaged: readOriginal(s)?.onlyManaged === true,
      })),
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
    ...(hints.length > 0 ? { hints } : {}),
  };
}

function optOutOf(input: NamespaceInput, managed: readonly KubeObject[]): Pick<NamespaceStatus, 'optOut'> {
  const ns = input.namespace.metadata?.name ?? '';
  const plan = planRestore({ namespace: ns, services: input.services, pods: input.pods, managed });
  if (plan.phase === 'done') return {};
  const services = input.services
    .filter((s) => SERVICE_ORIGINAL_ANNOTATION in annotationsOf(s))
    .map((s) => s.metadata?.name ?? '');
  return { optOut: { phase: plan.phase, services, pods: plan.pointing.map((p) => p.metadata?.name ?? '') } };
}

/** Live objects of one kind labelled managed-by=wpgw (none when the kind's CRD is not installed). */
export async function listManaged(
  rest: KubeRest,
  apiVersion: string,
  kind: string,
  ns: string | undefined,
): Promise<KubeObject[]> {
  try {
    const list = await rest.request<List<KubeObject>>('GET', collectionPath(kindInfo(apiVersion, kind), ns), {
      query: { labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}` },
    });
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

/** The namespace's Istio Sidecars; none when the CRD is not installed. */
async function listSidecars(rest: KubeRest, ns: string): Promise<Sidecar[]> {
  try {
    return (
      (
        await rest.request<List<Sidecar>>(
          'GET',
          collectionPath(kindInfo(SIDECAR_KIND.apiVersion, SIDECAR_KIND.kind), ns),
        )
      ).items ?? []
    );
  } catch (err) {
    if (errorStatus(err) === 404) return [];
    throw err;
  }
}

interface List<T> {
  items?: T[];
}

/** The workload kinds whose pod templates and metadata the hints read (as the webhook's cache watches them). */
const WORKLOAD_KINDS = [
  { apiVersion: 'apps/v1', kind: 'Deployment' },
  { apiVersion: 'apps/v1', kind: 'StatefulSet' },
  { apiVersion: 'apps/v1', kind: 'DaemonSet' },
  { apiVersion: 'apps/v1', kind: 'ReplicaSet' },
  { apiVersion: 'batch/v1', kind: 'Job' },
  { apiVersion: 'batch/v1', kind: 'CronJob' },
  { apiVersion: ROLLOUT_KIND.apiVersion, kind: ROLLOUT_KIND.kind },
];

/**
 * A list's items; none when the kind is not served (a CRD not installed) or may not be listed
 * (then `errors` says which hints are not shown, instead of failing the whole report).
 */
async function listOrNone<T>(rest: KubeRest, info: KindInfo, ns: string | undefined, errors: string[]): Promise<T[]> {
  try {
    return (await rest.request<List<T>>('GET', collectionPath(info, ns))).items ?? [];
  } catch (err) {
    if (errorStatus(err) === 404) return [];
    if (errorStatus(err) === 403) {
      errors.push(
        `cannot list ${info.plural}${ns ? ` in ${ns}` : ''} (forbidden): misplaced-setting hints for them are not shown`,
      );
      return [];
    }
    throw err;
  }
}
/** Every Service of the cluster, read on first use only (mesh-wide outbound picks from them). */
export function clusterServicesOnce(rest: KubeRest): () => Promise<V1Service[]> {
  let all: Promise<V1Service[]> | undefined;
  return () =>
    (all ??= rest
      .request<List<V1Service>>('GET', collectionPath(kindInfo('v1', 'Service')))
      .then((l) => l.items ?? []));
}

/**
 * The Istio objects every namespace's input shares, read on first use: the root namespace's
 * policies, and every VirtualService and DestinationRule (callers' objects naming a Service).
 */
export function sharedIstioOnce(
  rest: KubeRest,
  rootNamespace: string,
): {
  root: string;
  mesh: () => Promise<UserIstioObjects>;
  routing: () => Promise<Pick<UserIstioObjects, 'virtualServices' | 'destinationRules'>>;
} {
  let mesh: Promise<UserIstioObjects> | undefined;
  let routing: Promise<Pick<UserIstioObjects, 'virtualServices' | 'destinationRules'>> | undefined;
  return {
    root: rootNamespace,
    mesh: () => (mesh ??= userIstio(rest, rootNamespace)),
    routing: () =>
      (routing ??= userIstio(rest, undefined).then((u) => ({
        virtualServices: u.virtualServices,
        destinationRules: u.destinationRules,
      }))),
  };
}

/** One namespace's desired-state input and its gateway Deployment, read straight from the API (no watch). */
export async function readNamespaceInput(
  rest: KubeRest,
  namespace: V1Namespace,
  clusterDnsIP: string | undefined,
  meshServices: () => Promise<V1Service[]>,
  shared?: ReturnType<typeof sharedIstioOnce>,
): Promise<{ input: NamespaceInput; deployment: V1Deployment | undefined; allPods: V1Pod[] }> {
  const ns = namespace.metadata?.name ?? '';
  const [services, pods, deployment, ingresses] = await Promise.all([
    rest.request<List<V1Service>>('GET', collectionPath(kindInfo('v1', 'Service'), ns)),
    // Every Pod, not only managed ones: unmanaged Pods a re-pointed Service reaches are hints.
    rest.request<List<V1Pod>>('GET', collectionPath(kindInfo('v1', 'Pod'), ns)),
    rest
      .request<V1Deployment>('GET', objectPath(kindInfo('apps/v1', 'Deployment'), ns, GATEWAY_SERVICE))
      .catch((err: unknown) => {
        if (errorStatus(err) === 404) return undefined;
        throw err;
      }),
    rest.request<List<V1Ingress>>('GET', collectionPath(kindInfo('networking.k8s.io/v1', 'Ingress'), ns)),
  ]);
  const podList = (pods.items ?? []).filter((p) => p.metadata?.labels?.[MANAGED_LABEL] !== undefined).sort(byName);
  const mesh = scopeInUse(ns, annotationsOf(namespace), podList).length > 0;
  const input: NamespaceInput = {
    namespace,
    pods: podList,
    services: (services.items ?? []).sort(byName),
    ingresses: (ingresses.items ?? []).sort(byName),
    ...(clusterDnsIP ? { clusterDnsIP } : {}),
    istio: await userIstio(rest, ns),
    ...(shared ? { callerIstio: callerObjects(await shared.routing(), ns) } : {}),
    ...(shared && shared.root !== ns ? { meshIstio: { namespace: shared.root, objects: await shared.mesh() } } : {}),
    ...(deployment?.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE ? { gatewayDeployment: deployment } : {}),
    ...(mesh ? { clusterServices: await meshServices(), sidecars: await listSidecars(rest, ns) } : {}),
  };
  return { input, deployment, allPods: pods.items ?? [] };
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
      return {
        namespaces: [],
        errors: [
          errorStatus(err) === 404
            ? `namespace ${opts.namespace} not found`
            : `namespace ${opts.namespace}: ${errorMessage(err)}`,
        ],
      };
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
    // Namespaces that meant to opt in but wrote it where wpgw does not read it (an annotation,
    // wpgw.io/inject=true): the controller never reconciles them, so only status can say so.
    for (const n of (await rest.request<List<V1Namespace>>('GET', collectionPath(nsInfo))).items ?? []) {
      if (listed.has(n.metadata?.name) || namespaceHints(n.metadata?.name ?? '', n.metadata).length === 0) continue;
      listed.add(n.metadata?.name);
      namespaces.push(n);
    }
    namespaces.sort(byName);
  }

  let clusterDnsIP: string | undefined;
  try {
    clusterDnsIP = clusterIPOf(
      await rest.request<V1Service>(
        'GET',
        objectPath(kindInfo('v1', 'Service'), CLUSTER_DNS.namespace, CLUSTER_DNS.name),
      ),
    );
  } catch (err) {
    if (errorStatus(err) !== 404) errors.push(`kube-system/kube-dns: ${errorMessage(err)}`);
  }

  const runtimeClasses = await listOrNone<V1RuntimeClass>(
    rest,
    kindInfo('node.k8s.io/v1', 'RuntimeClass'),
    undefined,
    errors,
  );
  const runtimeClassOS = (name: string) =>
    runtimeClasses.find((rc) => rc.metadata?.name === name)?.scheduling?.nodeSelector?.[OS_LABEL];

  const meshServices = clusterServicesOnce(rest);
  const shared = sharedIstioOnce(rest, istioRootNamespace(desiredOptions));
  const out: NamespaceStatus[] = [];
  for (const namespace of namespaces) {
    const ns = namespace.metadata?.name ?? '';
    try {
      const { input, deployment, allPods } = await readNamespaceInput(
        rest,
        namespace,
        clusterDnsIP,
        meshServices,
        shared,
      );
      const optedIn = isOptedIn(namespace);
      const anyRepointed = input.services.some((s) => readOriginal(s));
      const managed = !optedIn
        ? await listAllManaged(rest, ns)
        : anyRepointed
          ? await listManaged(rest, 'networking.istio.io/v1', 'DestinationRule', ns)
          : [];
      const workloads = (
        await Promise.all(
          WORKLOAD_KINDS.map((k) =>
            listOrNone<WorkloadObject>(rest, kindInfo(k.apiVersion, k.kind), ns, errors).then((items) =>
              items.map((w) => ({ ...w, apiVersion: k.apiVersion, kind: k.kind })),
            ),
          ),
        )
      ).flat();
      // Which re-pointed Services no Windows pods back any more: the webhook's own classification.
      const windowsLabelSets =
        optedIn && anyRepointed
          ? namespaceView(
              ns,
              fromLists({
                namespace,
                services: input.services,
                pods: input.pods,
                workloads,
                ingresses: input.ingresses ?? [],
              }),
              runtimeClassOS,
            ).windowsLabelSets
          : undefined;
      const summary = summarizeNamespace(
        input,
        deployment,
        opts.desiredFn ?? desiredNamespaceState,
        desiredOptions,
        managed,
        { workloads, allPods, runtimeClassOS, ...(windowsLabelSets ? { windowsLabelSets } : {}) },
      );
      const egress = optedIn ? await readEgress(rest, ns, summary, errors) : undefined;
      out.push(egress ? { ...summary, egress } : summary);
    } catch (err) {
      errors.push(`namespace ${ns}: ${errorMessage(err)}`);
    }
  }
  return { namespaces: out, errors };
}

/**
 * The controller's egress report in the namespace (core/desired/egress-report.ts): what it refused
 * and the cluster ranges in force, which only the controller knows (its resolver, flags, watches).
 */
async function readEgress(
  rest: KubeRest,
  ns: string,
  summary: NamespaceStatus,
  errors: string[],
): Promise<EgressReport | undefined> {
  try {
    const report = readEgressReport(
      await rest.request<{ data?: Record<string, string> }>(
        'GET',
        objectPath(kindInfo('v1', 'ConfigMap'), ns, EGRESS_REPORT),
      ),
    );
    if (!report)
      summary.notes.push(
        `ConfigMap ${EGRESS_REPORT} is not a report this wpgw version reads: refused names and cluster ranges are not shown`,
      );
    return report;
  } catch (err) {
    if (errorStatus(err) === 404)
      summary.notes.push(
        `no ConfigMap ${EGRESS_REPORT} yet (the controller writes it with its first reconcile): refused names and cluster ranges are not shown`,
      );
    else if (errorStatus(err) === 403)
      errors.push(
        `cannot read ConfigMap ${ns}/${EGRESS_REPORT} (forbidden): refused external names and the cluster ranges in force are not shown`,
      );
    else throw err;
    return undefined;
  }
}

/** The namespace's (or, without one, the cluster's) Istio objects the desired state reads (a kind whose CRD is missing: none). */
async function userIstio(rest: KubeRest, ns: string | undefined): Promise<UserIstioObjects> {
  const read = async (apiVersion: string, kind: string): Promise<KubeObject[]> => {
    try {
      return (
        (await rest.request<List<KubeObject>>('GET', collectionPath(kindInfo(apiVersion, kind), ns))).items ?? []
      ).sort(byName);
    } catch (err) {
      if (errorStatus(err) === 404) return [];
      throw err;
    }
  };
  const [virtualServices, destinationRules, authorizationPolicies, peerAuthentications, requestAuthentications] =
    await Promise.all([
      read('networking.istio.io/v1', 'VirtualService'),
      read('networking.istio.io/v1', 'DestinationRule'),
      read('security.istio.io/v1', 'AuthorizationPolicy'),
      read('security.istio.io/v1', 'PeerAuthentication'),
      read('security.istio.io/v1', 'RequestAuthentication'),
    ]);
  return { virtualServices, destinationRules, authorizationPolicies, peerAuthentications, requestAuthentications };
}

/** Human-readable report, one block per namespace. */
export function formatStatus(report: StatusReport): string {
  const lines: string[] = [];
  if (report.namespaces.length === 0 && report.errors.length === 0) {
    lines.push(`no namespace is labelled ${NS_INJECT_LABEL}=${NS_INJECT_ENABLED}`);
  }
  for (const s of report.namespaces) {
    if (lines.length > 0) lines.push('');
    lines.push(
      `Namespace ${s.namespace}${s.optedIn ? '' : ` (not opted in: label ${NS_INJECT_LABEL}=${NS_INJECT_ENABLED} missing)`}`,
    );
    const g = s.gateway;
    const dep = g.deployment
      ? `deployment ${g.deployment.name} ${g.deployment.ready}/${g.deployment.desired} ready`
      : 'deployment missing';
    lines.push(
      `  gateway:      Service ${GATEWAY_SERVICE} ${g.serviceIP ?? '(no address)'}${g.dnsIP ? `, dns ${g.dnsIP}` : ''}; ${dep}`,
    );
    if (s.repointed.length === 0) lines.push('  re-pointed:   none');
    else {
      for (const r of s.repointed) {
        const only = r.onlyManaged
          ? '; only its wpgw-managed pods: the selector also matches workloads wpgw does not manage'
          : '';
        lines.push(`  re-pointed:   ${r.service} -> gateway (app reachable as ${r.app}${only})`);
      }
    }
    if (s.destinations.length === 0) lines.push('  destinations: none declared');
    else for (const d of s.destinations) lines.push(`  destinations: pod ${d.pod}: ${d.outbound}`);
    if (s.drift.length === 0) lines.push('  drift:        none');
    else {
      for (const d of s.drift) {
        lines.push(
          `  drift:        pod ${d.pod} points at ${d.recordedIP}, gateway is ${d.currentIP}${s.restartOnIpChange ? '' : ' (auto-restart disabled)'}`,
        );
      }
    }
    if (s.conflicts.length === 0) lines.push('  conflicts:    none');
    else for (const c of s.conflicts) lines.push(`  conflict:     ${subjectText(c)}: ${c.reason}: ${c.message}`);
    if (s.egress) for (const l of formatEgressReport(s.namespace, s.egress)) lines.push(`  ${l}`);
    for (const n of s.notes) lines.push(`  note:         ${n}`);
    for (const h of s.hints ?? []) lines.push(`  hint:         ${h.subject}: ${h.message}`);
    for (const l of s.leaving) {
      lines.push(
        `  leaving:      Service ${l.service} (${leaveReasonText(l.reason)}): phase ${l.phase} (${LEAVE_PHASES.join(' -> ')}); then its Windows pods are reached directly, without mTLS: under STRICT PeerAuthentication for its callers those calls fail`,
      );
    }
    if (s.optOut) {
      const o = s.optOut;
      lines.push(`  opting out:   phase ${o.phase} (${RESTORE_PHASES.filter((p) => p !== 'done').join(' -> ')})`);
      if (o.services.length > 0) lines.push(`  opting out:   Services still re-pointed: ${o.services.join(', ')}`);
      if (o.pods.length > 0) {
        const how = s.restartOnIpChange
          ? 'their owners are rolled'
          : `restart them (${RESTART_ON_IP_CHANGE_ANNOTATION}=false)`;
        lines.push(`  opting out:   pods still resolving through the gateway: ${o.pods.join(', ')}; ${how}`);
      }
      lines.push(
        '  opting out:   replaced Windows pods call their destinations directly, without mTLS: under STRICT PeerAuthentication those calls fail',
      );
    }
  }
  for (const e of report.errors) lines.push(`error: ${e}`);
  return `${lines.join('\n')}\n`;
}
