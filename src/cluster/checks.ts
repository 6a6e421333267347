// `wpgw check`: every check queries the cluster for real (lists, server-side dry runs, a TLS
// handshake, access reviews); nothing is assumed. Each returns ok / warn / fail with what it saw
// and, when not ok, a hint saying what to do. Grouped like `linkerd check`; src/commands/check.ts
// prints them.
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { connect } from 'node:tls';
import type {
  V1Deployment,
  V1DaemonSet,
  V1EndpointSlice,
  V1Lease,
  V1MutatingWebhook,
  V1MutatingWebhookConfiguration,
  V1Namespace,
  V1Node,
  V1Pod,
  V1Secret,
} from '@kubernetes/client-node';
import { gatewayObjects } from '../core/desired/gateway.js';
import { MANAGED_KINDS } from '../core/desired-types.js';
import { coversPodCreate, unmetRequirement } from '../core/label-selector.js';
import { LEASE_TIMINGS } from '../defaults.js';
import { splitPemBundle } from '../tls/certs.js';
import {
  GATEWAY_POD_LABEL,
  GATEWAY_SERVICE,
  MANAGED_LABEL,
  NS_INJECT_ENABLED,
  NS_INJECT_LABEL,
  OS_LABEL,
  OUTBOUND_ANNOTATION,
  POD_STATUS_ANNOTATION,
} from '../names.js';
import { errorMessage, errorStatus, type KubeRest } from './client.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  group: string;
  name: string;
  status: CheckStatus;
  /** What was seen (versions, names, counts). */
  detail?: string;
  /** What to do about it; always set unless ok. */
  hint?: string;
}

export interface CheckOptions {
  rest: KubeRest;
  /** Where wpgw runs (default wpgw-system). */
  wpgwNamespace: string;
  /** Limit the per-namespace checks (and the admission probe) to this namespace. */
  namespace?: string;
  /** Before installing: the cluster's readiness only, not wpgw's own objects. */
  pre: boolean;
  now?: () => number;
  /** The revision the controller gives gateway pods (its --istio-revision); read from the controller Deployment when unset. */
  istioRevision?: string;
  /** Skip the two server-side dry runs (they need create on pods; the chart's helm test has no such right). */
  noDryRun?: boolean;
  /** wpgw status for one namespace (src/commands/status-report.ts, passed in by the command). */
  statusOf?: (namespace: string) => Promise<{ errors: string[]; drift: number; conflicts: number }>;
}

/** Webhook configuration and component names the manifests and the chart install. */
export const WEBHOOK_CONFIG = 'wpgw';
export const WEBHOOK_DEPLOYMENT = 'wpgw-webhook';
export const CONTROLLER_DEPLOYMENT = 'wpgw-controller';
const LEASE = 'wpgw-controller';
const MIN_KUBERNETES = { major: 1, minor: 29 };
const MIN_ISTIO = { major: 1, minor: 24 };
const EXPIRY_WARN_DAYS = 7;
const DAY_MS = 86_400_000;

interface List<T> {
  items?: T[];
}

type Emit = (r: Omit<CheckResult, 'group'>) => void;

export async function runChecks(opts: CheckOptions): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const group =
    (name: string): Emit =>
    (r) =>
      results.push({ group: name, ...r });
  const ctx = new Reader(opts.rest);

  const apiOk = await checkKubernetes(ctx, group('Kubernetes API'));
  if (!apiOk) return results; // nothing else can be read
  await checkNodes(ctx, group('Nodes'));
  await checkPermissions(ctx, opts, group('Permissions'));
  await checkIstio(ctx, opts, group('Istio'));
  await checkNamespacesOptedIn(ctx, opts, group('Opt-in'));
  if (opts.pre) return results;
  await checkControlPlane(ctx, opts, group('wpgw control plane'));
  await checkWebhookTls(ctx, opts, group('wpgw webhook certificate'));
  await checkAdmissionProbe(ctx, opts, group('wpgw admission'));
  await checkGateways(ctx, opts, group('Opted-in namespaces'));
  return results;
}

/** GETs that turn "not found" into undefined and remember the server's clock from dry runs. */
class Reader {
  serverTimeMs: number | undefined;
  constructor(readonly rest: KubeRest) {}
  get<T>(path: string): Promise<T> {
    return this.rest.request<T>('GET', path);
  }
  async maybe<T>(path: string): Promise<T | undefined> {
    try {
      return await this.get<T>(path);
    } catch (err) {
      if (errorStatus(err) === 404) return undefined;
      throw err;
    }
  }
  async items<T>(path: string, query: Record<string, string> = {}): Promise<T[]> {
    return (await this.rest.request<List<T>>('GET', path, { query })).items ?? [];
  }
}

/** Runs a check body; an API error becomes a failed check naming the error instead of ending the run. */
async function guarded(emit: Emit, name: string, hint: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    emit({
      name,
      status: 'fail',
      detail: errorMessage(err),
      hint: errorStatus(err) === 403 ? `${hint} (forbidden: run wpgw check with a user that may read it)` : hint,
    });
  }
}

function versionAtLeast(text: string | undefined, min: { major: number; minor: number }): boolean | undefined {
  const m = /(\d+)\.(\d+)/.exec(text ?? '');
  if (!m) return undefined;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > min.major || (major === min.major && minor >= min.minor);
}

async function checkKubernetes(ctx: Reader, emit: Emit): Promise<boolean> {
  let version: { gitVersion?: string; major?: string; minor?: string };
  try {
    version = await ctx.get('/version');
  } catch (err) {
    emit({
      name: 'can reach the API server',
      status: 'fail',
      detail: errorMessage(err),
      hint: 'check the kubeconfig (--kubeconfig, --context) and that the API server is up',
    });
    return false;
  }
  emit({ name: 'can reach the API server', status: 'ok', detail: version.gitVersion ?? '' });
  const atLeast = versionAtLeast(version.gitVersion ?? `${version.major}.${version.minor}`, MIN_KUBERNETES);
  const min = `${MIN_KUBERNETES.major}.${MIN_KUBERNETES.minor}`;
  const name = `Kubernetes is ${min} or newer`;
  if (atLeast) emit({ name, status: 'ok', detail: version.gitVersion ?? '' });
  else if (atLeast === false)
    emit({
      name,
      status: 'warn',
      detail: version.gitVersion ?? '',
      hint: `native sidecars (which wpgw undoes on Windows pods) and the fields wpgw writes are tested from ${min}; upgrade the cluster`,
    });
  else
    emit({ name, status: 'warn', detail: 'unknown version', hint: 'the API server did not report a parsable version' });
  return true;
}

async function checkNodes(ctx: Reader, emit: Emit): Promise<void> {
  await guarded(emit, 'Windows nodes', 'wpgw needs to list nodes to check them', async () => {
    const windows = await ctx.items<V1Node>('/api/v1/nodes', { labelSelector: `${OS_LABEL}=windows` });
    if (windows.length === 0) {
      emit({
        name: 'Windows nodes',
        status: 'warn',
        detail: 'none',
        hint: `no node is labelled ${OS_LABEL}=windows: Windows pods have nowhere to run (add a Windows node pool)`,
      });
      return;
    }
    emit({
      name: 'Windows nodes',
      status: 'ok',
      detail: `${windows.length}: ${windows.map((n) => n.metadata?.name).join(', ')}`,
    });
    const notContainerd = windows.filter(
      (n) => !(n.status?.nodeInfo?.containerRuntimeVersion ?? '').startsWith('containerd://'),
    );
    emit(
      notContainerd.length === 0
        ? {
            name: 'Windows nodes run containerd',
            status: 'ok',
            detail: [...new Set(windows.map((n) => n.status?.nodeInfo?.containerRuntimeVersion))].join(', '),
          }
        : {
            name: 'Windows nodes run containerd',
            status: 'fail',
            detail: notContainerd
              .map((n) => `${n.metadata?.name}: ${n.status?.nodeInfo?.containerRuntimeVersion || 'unknown runtime'}`)
              .join(', '),
            hint: 'hostAliases reach the Windows hosts file only with containerd; move these nodes to containerd',
          },
    );
    // Heuristic: the Windows agents of the CNIs that enforce NetworkPolicy there.
    const daemonSets = await ctx.items<V1DaemonSet>('/apis/apps/v1/daemonsets');
    const enforcers = daemonSets.filter(
      (d) => /calico|azure-npm|antrea|cilium/.test(d.metadata?.name ?? '') && targetsWindows(d),
    );
    emit(
      enforcers.length > 0
        ? {
            name: 'a NetworkPolicy-enforcing CNI runs on Windows nodes (heuristic)',
            status: 'ok',
            detail: enforcers.map((d) => `${d.metadata?.namespace}/${d.metadata?.name}`).join(', '),
          }
        : {
            name: 'a NetworkPolicy-enforcing CNI runs on Windows nodes (heuristic)',
            status: 'warn',
            detail: 'no Calico, Azure NPM, Antrea or Cilium DaemonSet for Windows nodes found',
            hint: 'without NetworkPolicy enforcement on Windows nodes, Windows pods can bypass the gateway; enable one (AKS: --network-policy azure or calico)',
          },
    );
  });
}

function targetsWindows(d: V1DaemonSet): boolean {
  const spec = d.spec?.template?.spec;
  if (spec?.nodeSelector?.[OS_LABEL] === 'windows') return true;
  return JSON.stringify(spec?.affinity ?? {}).includes('"windows"') || /win/.test(d.metadata?.name ?? '');
}

interface AccessCheck {
  verb: string;
  group: string;
  resource: string;
  namespace?: string;
  name?: string;
}

const INSTALL_ACCESS: AccessCheck[] = [
  { verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'clusterroles' },
  { verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings' },
  { verb: 'create', group: 'admissionregistration.k8s.io', resource: 'mutatingwebhookconfigurations' },
  { verb: 'create', group: 'apps', resource: 'deployments' },
];

/** A subset of manifests/rbac-*.yaml, one rule per thing each component cannot work without. */
const COMPONENT_ACCESS: Record<string, AccessCheck[]> = {
  [WEBHOOK_DEPLOYMENT]: [
    { verb: 'watch', group: '', resource: 'pods' },
    { verb: 'watch', group: 'apps', resource: 'deployments' },
    { verb: 'watch', group: '', resource: 'namespaces' },
  ],
  [CONTROLLER_DEPLOYMENT]: [
    { verb: 'patch', group: 'apps', resource: 'deployments' },
    { verb: 'create', group: 'networking.istio.io', resource: 'gateways' },
    { verb: 'create', group: 'security.istio.io', resource: 'authorizationpolicies' },
    { verb: 'create', group: 'networking.k8s.io', resource: 'networkpolicies' },
    { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', name: LEASE },
  ],
};

async function checkPermissions(ctx: Reader, opts: CheckOptions, emit: Emit): Promise<void> {
  const review = async (a: AccessCheck, user?: string): Promise<{ allowed?: boolean; reason?: string }> => {
    const attributes = {
      verb: a.verb,
      group: a.group,
      resource: a.resource,
      ...(a.namespace ? { namespace: a.namespace } : {}),
      ...(a.name ? { name: a.name } : {}),
    };
    const kind = user ? 'SubjectAccessReview' : 'SelfSubjectAccessReview';
    const body = {
      apiVersion: 'authorization.k8s.io/v1',
      kind,
      spec: {
        resourceAttributes: attributes,
        ...(user
          ? {
              user,
              groups: [
                'system:serviceaccounts',
                `system:serviceaccounts:${opts.wpgwNamespace}`,
                'system:authenticated',
              ],
            }
          : {}),
      },
    };
    const r = await ctx.rest.request<{ status?: { allowed?: boolean; reason?: string } }>(
      'POST',
      `/apis/authorization.k8s.io/v1/${user ? 'subjectaccessreviews' : 'selfsubjectaccessreviews'}`,
      { body },
    );
    return r.status ?? {};
  };
  const describe = (a: AccessCheck) =>
    `${a.verb} ${a.group ? `${a.resource}.${a.group}` : a.resource}${a.name ? `/${a.name}` : ''}`;
  if (opts.pre) {
    await guarded(emit, 'you may install wpgw', 'SelfSubjectAccessReview failed', async () => {
      const denied: string[] = [];
      for (const a of INSTALL_ACCESS)
        if (
          !(
            await review({
              ...a,
              namespace: a.resource === 'deployments' ? opts.wpgwNamespace : undefined,
            } as AccessCheck)
          ).allowed
        )
          denied.push(describe(a));
      emit(
        denied.length === 0
          ? { name: 'you may install wpgw', status: 'ok', detail: INSTALL_ACCESS.map(describe).join(', ') }
          : {
              name: 'you may install wpgw',
              status: 'fail',
              detail: `denied: ${denied.join(', ')}`,
              hint: 'installing needs cluster-admin (cluster-scoped RBAC and a MutatingWebhookConfiguration)',
            },
      );
    });
    return;
  }
  for (const [component, checks] of Object.entries(COMPONENT_ACCESS)) {
    const user = `system:serviceaccount:${opts.wpgwNamespace}:${component}`;
    const name = `ServiceAccount ${component} has its RBAC`;
    await guarded(emit, name, 'checking another identity needs create on subjectaccessreviews', async () => {
      const denied: string[] = [];
      for (const a of checks)
        if (!(await review(a.resource === 'leases' ? { ...a, namespace: opts.wpgwNamespace } : a, user)).allowed)
          denied.push(describe(a));
      emit(
        denied.length === 0
          ? { name, status: 'ok', detail: checks.map(describe).join(', ') }
          : {
              name,
              status: 'fail',
              detail: `denied: ${denied.join(', ')}`,
              hint: `re-apply manifests/rbac-*.yaml or the chart (helm upgrade) for ${opts.wpgwNamespace}`,
            },
      );
    });
  }
}

const INJECTOR_NAME = /sidecar-injector/;

function istioInjectors(configs: V1MutatingWebhookConfiguration[]): V1MutatingWebhookConfiguration[] {
  return configs.filter(
    (c) =>
      INJECTOR_NAME.test(c.metadata?.name ?? '') ||
      (c.webhooks ?? []).some((w) => w.name.endsWith('sidecar-injector.istio.io')),
  );
}

async function checkIstio(ctx: Reader, opts: CheckOptions, emit: Emit): Promise<void> {
  await guarded(emit, 'Istio CRDs wpgw writes', 'install Istio (its CRDs)', async () => {
    const missing: string[] = [];
    for (const apiVersion of [
      ...new Set(MANAGED_KINDS.map((k) => k.apiVersion).filter((v) => v.includes('istio.io'))),
    ]) {
      const served = await ctx.maybe<{ resources?: Array<{ name: string }> }>(`/apis/${apiVersion}`);
      for (const k of MANAGED_KINDS.filter((m) => m.apiVersion === apiVersion)) {
        if (!served?.resources?.some((r) => r.name === k.plural)) missing.push(`${apiVersion} ${k.kind}`);
      }
    }
    emit(
      missing.length === 0
        ? {
            name: 'Istio CRDs wpgw writes',
            status: 'ok',
            detail: `${MANAGED_KINDS.filter((k) => k.apiVersion.includes('istio.io'))
              .map((k) => k.kind)
              .join(', ')} (v1)`,
          }
        : {
            name: 'Istio CRDs wpgw writes',
            status: 'fail',
            detail: `not served: ${missing.join(', ')}`,
            hint: 'install Istio 1.24 or newer (its CRDs serve the v1 APIs)',
          },
    );
  });
  await guarded(emit, "Istio's sidecar injector", 'wpgw needs to list mutatingwebhookconfigurations', async () => {
    const injectors = istioInjectors(
      await ctx.items<V1MutatingWebhookConfiguration>(
        '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations',
      ),
    );
    if (injectors.length === 0) {
      emit({
        name: "Istio's sidecar injector",
        status: 'fail',
        detail: 'no sidecar-injector MutatingWebhookConfiguration',
        hint: "the gateway pods need Istio's injector (image: auto); install istiod with its injector",
      });
      return;
    }
    const revisions = [...new Set(injectors.map((c) => c.metadata?.labels?.['istio.io/rev'] ?? 'default'))];
    const tags = [...new Set(injectors.map((c) => c.metadata?.labels?.['istio.io/tag']).filter(Boolean))];
    const hasDefault = injectors.some((c) =>
      (c.webhooks ?? []).some(
        (w) => w.name === 'namespace.sidecar-injector.istio.io' || w.name === 'object.sidecar-injector.istio.io',
      ),
    );
    emit({
      name: "Istio's sidecar injector",
      status: 'ok',
      detail: `${injectors.map((c) => c.metadata?.name).join(', ')}; revisions: ${revisions.join(', ')}${tags.length ? `; tags: ${tags.join(', ')}` : ''}`,
    });
    // Which injector webhook a gateway pod meets, as the controller labels it, in a namespace with
    // only wpgw's label (a namespace's own istio.io/rev or istio-injection is checked per namespace).
    const revision = opts.istioRevision ?? (await controllerRevision(ctx, opts));
    const deployment = gatewayObjects('wpgw-check', 1, revision).find((o) => o.kind === 'Deployment') as V1Deployment;
    const podLabels = deployment.spec?.template?.metadata?.labels ?? {};
    const nsLabels = { [NS_INJECT_LABEL]: NS_INJECT_ENABLED, 'kubernetes.io/metadata.name': 'wpgw-check' };
    const selecting = injectors.flatMap((c) =>
      (c.webhooks ?? [])
        .filter(
          (w) =>
            coversPodCreate(w.rules) &&
            !unmetRequirement(w.namespaceSelector as never, nsLabels) &&
            !unmetRequirement(w.objectSelector as never, podLabels),
        )
        .map((w) => `${c.metadata?.name}/${w.name}`),
    );
    const name = `gateway pods are injected (${revision ? `revision ${revision}` : 'no revision set'})`;
    emit(
      selecting.length > 0
        ? { name, status: 'ok', detail: `by ${selecting.join(', ')}` }
        : {
            name,
            status: 'fail',
            detail: `no injector webhook selects a pod labelled ${Object.entries(podLabels)
              .filter(([k]) => k.includes('istio'))
              .map(([k, v]) => `${k}=${v}`)
              .join(', ')}`,
            hint: `the gateway pods would stay on image "auto": set the controller's --istio-revision (Helm: istio.revision) to one of ${revisions.join(', ')}${tags.length ? ` or a tag (${tags.join(', ')})` : ''}, or annotate namespaces wpgw.io/istio-revision`,
          },
    );
    if (!hasDefault) {
      emit({
        name: 'a default revision or tag',
        status: 'warn',
        detail: `revision-only injectors (${revisions.join(', ')})`,
        hint: `gateway pods are injected only with a revision: set the controller's --istio-revision (Helm: istio.revision=${revisions[0]}) or annotate namespaces wpgw.io/istio-revision`,
      });
    }
  });
  await guarded(emit, "the injector's gateway template", 'wpgw needs to list configmaps', async () => {
    // istiod's chart keeps the injection templates in ConfigMap istio-sidecar-injector[-<rev>].
    const maps = (
      await ctx.items<{ metadata?: { name?: string; namespace?: string }; data?: Record<string, string> }>(
        '/api/v1/configmaps',
        { labelSelector: 'istio.io/rev' },
      )
    ).filter((m) => /^istio-sidecar-injector/.test(m.metadata?.name ?? ''));
    if (maps.length === 0) {
      emit({
        name: "the injector's gateway template",
        status: 'warn',
        detail: 'no istio-sidecar-injector ConfigMap found',
        hint: 'istiod keeps its templates elsewhere; the per-namespace checks dry-run a gateway pod through the injector instead',
      });
      return;
    }
    const without = maps.filter((m) => !/^ {2}gateway:/m.test(m.data?.config ?? ''));
    emit(
      without.length === 0
        ? {
            name: "the injector's gateway template",
            status: 'ok',
            detail: maps.map((m) => `${m.metadata?.namespace}/${m.metadata?.name}`).join(', '),
          }
        : {
            name: "the injector's gateway template",
            status: 'fail',
            detail: `no gateway template in ${without.map((m) => `${m.metadata?.namespace}/${m.metadata?.name}`).join(', ')}`,
            hint: "wpgw's gateway pods use Istio's gateway injection template (inject.istio.io/templates: gateway); restore istiod's default templates",
          },
    );
  });
  await guarded(emit, 'istiod version', 'wpgw needs to list deployments', async () => {
    const istiods = await ctx.items<V1Deployment>('/apis/apps/v1/deployments', { labelSelector: 'app=istiod' });
    if (istiods.length === 0) {
      emit({
        name: 'istiod version',
        status: 'warn',
        detail: 'no Deployment labelled app=istiod',
        hint: 'istiod runs outside the cluster or under another label; check its version is 1.24 or newer yourself',
      });
      return;
    }
    const versions = istiods.map((d) => ({
      where: `${d.metadata?.namespace}/${d.metadata?.name}`,
      tag: (d.spec?.template?.spec?.containers?.[0]?.image ?? '').split(':').pop() ?? '',
    }));
    const old = versions.filter((v) => versionAtLeast(v.tag, MIN_ISTIO) === false);
    emit({
      name: 'istiod version',
      status: old.length ? 'warn' : 'ok',
      detail: versions.map((v) => `${v.where} ${v.tag}`).join(', '),
      ...(old.length
        ? { hint: `wpgw needs Istio ${MIN_ISTIO.major}.${MIN_ISTIO.minor}+ (v1 APIs, the gateway injection template)` }
        : {}),
    });
  });
}

/** The --istio-revision the installed controller runs with, if any. */
async function controllerRevision(ctx: Reader, opts: CheckOptions): Promise<string | undefined> {
  if (opts.pre) return undefined;
  const d = await ctx.maybe<V1Deployment>(
    `/apis/apps/v1/namespaces/${opts.wpgwNamespace}/deployments/${CONTROLLER_DEPLOYMENT}`,
  );
  const arg = d?.spec?.template?.spec?.containers?.[0]?.args?.find((a) => a.startsWith('--istio-revision='));
  return arg?.slice('--istio-revision='.length) || undefined;
}

async function checkNamespacesOptedIn(ctx: Reader, opts: CheckOptions, emit: Emit): Promise<void> {
  await guarded(emit, 'system namespaces are not opted in', 'wpgw needs to list namespaces', async () => {
    const opted = await ctx.items<V1Namespace>('/api/v1/namespaces', {
      labelSelector: `${NS_INJECT_LABEL}=${NS_INJECT_ENABLED}`,
    });
    const bad = opted.map((n) => n.metadata?.name ?? '').filter((n) => n === 'kube-system' || n === opts.wpgwNamespace);
    emit(
      bad.length === 0
        ? { name: 'system namespaces are not opted in', status: 'ok', detail: `${opted.length} namespace(s) opted in` }
        : {
            name: 'system namespaces are not opted in',
            status: 'fail',
            detail: bad.join(', '),
            hint: `kubectl label namespace ${bad[0]} ${NS_INJECT_LABEL}- (the webhook excludes them anyway; the controller would run a gateway there)`,
          },
    );
  });
}

async function deploymentCheck(
  ctx: Reader,
  opts: CheckOptions,
  emit: Emit,
  name: string,
  external: boolean,
): Promise<void> {
  const d = await ctx.maybe<V1Deployment>(`/apis/apps/v1/namespaces/${opts.wpgwNamespace}/deployments/${name}`);
  if (!d) {
    emit(
      external
        ? {
            name: `Deployment ${name}`,
            status: 'warn',
            detail: `not in ${opts.wpgwNamespace}; the webhook configuration calls a URL`,
            hint: 'wpgw runs outside the cluster (a development setup); install the chart for production',
          }
        : {
            name: `Deployment ${name}`,
            status: 'fail',
            detail: `not found in ${opts.wpgwNamespace}`,
            hint: `install wpgw (helm install wpgw charts/wpgw -n ${opts.wpgwNamespace}) or pass --wpgw-namespace`,
          },
    );
    return;
  }
  const available = d.status?.availableReplicas ?? 0;
  const desired = d.spec?.replicas ?? 1;
  if (available === 0) {
    emit({
      name: `Deployment ${name}`,
      status: 'fail',
      detail: `0/${desired} available`,
      hint: `kubectl -n ${opts.wpgwNamespace} describe deployment ${name}; kubectl -n ${opts.wpgwNamespace} logs deploy/${name}`,
    });
  } else if (desired < 2 || available < desired) {
    emit({
      name: `Deployment ${name}`,
      status: 'warn',
      detail: `${available}/${desired} available`,
      hint:
        desired < 2
          ? 'run 2 or more replicas: one pod down stops admission (failurePolicy Fail) or leadership'
          : 'some replicas are not available yet',
    });
  } else {
    emit({ name: `Deployment ${name}`, status: 'ok', detail: `${available}/${desired} available` });
  }
  const pdb = await ctx.maybe(`/apis/policy/v1/namespaces/${opts.wpgwNamespace}/poddisruptionbudgets/${name}`);
  emit(
    pdb
      ? { name: `PodDisruptionBudget ${name}`, status: 'ok' }
      : {
          name: `PodDisruptionBudget ${name}`,
          status: 'warn',
          detail: 'none',
          hint: "a node drain may take every replica at once; enable the chart's pdb",
        },
  );
}

async function webhookConfig(ctx: Reader): Promise<V1MutatingWebhookConfiguration | undefined> {
  return ctx.maybe<V1MutatingWebhookConfiguration>(
    `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${WEBHOOK_CONFIG}`,
  );
}

async function checkControlPlane(ctx: Reader, opts: CheckOptions, emit: Emit): Promise<void> {
  let mwc: V1MutatingWebhookConfiguration | undefined;
  await guarded(
    emit,
    `MutatingWebhookConfiguration ${WEBHOOK_CONFIG}`,
    'wpgw needs to read mutatingwebhookconfigurations',
    async () => {
      mwc = await webhookConfig(ctx);
      const names = (mwc?.webhooks ?? []).map((w) => w.name).sort();
      if (!mwc)
        emit({
          name: `MutatingWebhookConfiguration ${WEBHOOK_CONFIG}`,
          status: 'fail',
          detail: 'not found',
          hint: 'install wpgw: without it no pod is routed',
        });
      else if (names.join() !== 'pods.wpgw.io,services.wpgw.io')
        emit({
          name: `MutatingWebhookConfiguration ${WEBHOOK_CONFIG}`,
          status: 'fail',
          detail: `webhooks: ${names.join(', ') || 'none'}`,
          hint: 'expected pods.wpgw.io and services.wpgw.io: re-apply the chart or manifests/',
        });
      else
        emit({
          name: `MutatingWebhookConfiguration ${WEBHOOK_CONFIG}`,
          status: 'ok',
          detail: (mwc.webhooks ?? []).map((w) => `${w.name} failurePolicy=${w.failurePolicy}`).join(', '),
        });
    },
  );
  const external = Boolean(mwc?.webhooks?.[0]?.clientConfig?.url);
  await guarded(emit, `Deployment ${WEBHOOK_DEPLOYMENT}`, 'wpgw needs to read deployments', () =>
    deploymentCheck(ctx, opts, emit, WEBHOOK_DEPLOYMENT, external),
  );
  await guarded(emit, `Deployment ${CONTROLLER_DEPLOYMENT}`, 'wpgw needs to read deployments', () =>
    deploymentCheck(ctx, opts, emit, CONTROLLER_DEPLOYMENT, external),
  );
  await guarded(emit, 'the controller has a leader', 'wpgw needs to read leases', async () => {
    const lease = await ctx.maybe<V1Lease>(
      `/apis/coordination.k8s.io/v1/namespaces/${opts.wpgwNamespace}/leases/${LEASE}`,
    );
    const holder = lease?.spec?.holderIdentity;
    const renewed = lease?.spec?.renewTime ? Date.parse(String(lease.spec.renewTime)) : undefined;
    const durationMs = lease?.spec?.leaseDurationSeconds
      ? lease.spec.leaseDurationSeconds * 1000
      : LEASE_TIMINGS.durationMs;
    const age = renewed === undefined ? undefined : (opts.now ?? Date.now)() - renewed;
    if (!holder || age === undefined)
      emit({
        name: 'the controller has a leader',
        status: 'fail',
        detail: lease ? 'Lease has no holder' : `no Lease ${opts.wpgwNamespace}/${LEASE}`,
        hint: `no controller replica runs: kubectl -n ${opts.wpgwNamespace} get pods -l app.kubernetes.io/name=${CONTROLLER_DEPLOYMENT}`,
      });
    else if (age > 2 * durationMs)
      emit({
        name: 'the controller has a leader',
        status: 'fail',
        detail: `held by ${holder}, last renewed ${Math.round(age / 1000)}s ago (lease ${durationMs / 1000}s)`,
        hint: `the leader stopped renewing: kubectl -n ${opts.wpgwNamespace} logs deploy/${CONTROLLER_DEPLOYMENT}`,
      });
    else
      emit({
        name: 'the controller has a leader',
        status: 'ok',
        detail: `${holder}, renewed ${Math.max(0, Math.round(age / 1000))}s ago`,
      });
  });
  await guarded(emit, 'webhook endpoints', 'wpgw needs to list endpointslices', async () => {
    const ref = mwc?.webhooks?.[0]?.clientConfig?.service;
    if (!mwc || !ref) {
      if (mwc)
        emit({
          name: 'webhook endpoints',
          status: 'ok',
          detail: `URL ${mwc.webhooks?.[0]?.clientConfig?.url} (handshake checked below)`,
        });
      return;
    }
    const slices = await ctx.items<V1EndpointSlice>(
      `/apis/discovery.k8s.io/v1/namespaces/${ref.namespace}/endpointslices`,
      { labelSelector: `kubernetes.io/service-name=${ref.name}` },
    );
    const ready = slices.flatMap((s) =>
      (s.endpoints ?? []).filter((e) => e.conditions?.ready !== false).flatMap((e) => e.addresses),
    );
    emit(
      ready.length > 0
        ? {
            name: 'webhook endpoints',
            status: 'ok',
            detail: `Service ${ref.namespace}/${ref.name}: ${ready.join(', ')}`,
          }
        : {
            name: 'webhook endpoints',
            status: 'fail',
            detail: `Service ${ref.namespace}/${ref.name} has no ready endpoint`,
            hint: 'the API server cannot call the webhook: pods and Services in opted-in namespaces are refused (failurePolicy Fail)',
          },
    );
  });
}

/** The certificate a TLS server presents; verified by the caller against the caBundle, not this machine's trust store. */
function presentedCertificate(host: string, port: number): Promise<X509Certificate[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host, port, ...(isIP(host) ? {} : { servername: host }), rejectUnauthorized: false, timeout: 5_000 },
      () => {
        const peer = socket.getPeerX509Certificate();
        socket.end();
        resolve(peer ? [peer] : []);
      },
    );
    socket.on('error', reject);
    socket.on('timeout', () => socket.destroy(new Error(`no TLS answer from ${host}:${port} within 5s`)));
  });
}

/**
 * The serving chain as the API server would see it: a TLS handshake with the URL, or with the
 * Service by its DNS name (in the cluster, e.g. the chart's helm test); outside the cluster, where
 * that name does not resolve, the certificate in the Secret the webhook Deployment serves from.
 */
async function servingChain(
  ctx: Reader,
  opts: CheckOptions,
  hook: V1MutatingWebhook,
): Promise<{ certs: X509Certificate[]; source: string; host: string } | string> {
  const url = hook.clientConfig.url;
  if (url) {
    const u = new URL(url);
    return {
      certs: await presentedCertificate(u.hostname, Number(u.port || 443)),
      source: `TLS handshake with ${u.host}`,
      host: u.hostname,
    };
  }
  const svc = hook.clientConfig.service!;
  const host = `${svc.name}.${svc.namespace}.svc`;
  try {
    return {
      certs: await presentedCertificate(host, svc.port ?? 443),
      source: `TLS handshake with ${host}:${svc.port ?? 443}`,
      host,
    };
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOTFOUND' && (err as { code?: string }).code !== 'EAI_AGAIN') throw err;
  }
  const d = await ctx.maybe<V1Deployment>(
    `/apis/apps/v1/namespaces/${opts.wpgwNamespace}/deployments/${WEBHOOK_DEPLOYMENT}`,
  );
  const args = d?.spec?.template?.spec?.containers?.[0]?.args ?? [];
  const secretArg = args.find((a) => a.startsWith('--tls-secret='))?.slice('--tls-secret='.length);
  const mounted = d?.spec?.template?.spec?.volumes?.find((v) => v.name === 'tls')?.secret?.secretName;
  const [ns, name] = secretArg ? secretArg.split('/') : [opts.wpgwNamespace, mounted ?? 'wpgw-webhook-tls'];
  const secret = await ctx.maybe<V1Secret>(`/api/v1/namespaces/${ns}/secrets/${name}`);
  const pem = secret?.data?.['tls.crt'] ? Buffer.from(secret.data['tls.crt'], 'base64').toString('utf8') : undefined;
  if (!pem) return `${host} does not resolve here and Secret ${ns}/${name} has no tls.crt`;
  return {
    certs: splitPemBundle(pem).map((p) => new X509Certificate(p)),
    source: `Secret ${ns}/${name} (${host} does not resolve here)`,
    host,
  };
}

async function checkWebhookTls(ctx: Reader, opts: CheckOptions, emit: Emit): Promise<void> {
  const name = 'the caBundle verifies the serving certificate';
  await guarded(emit, name, 'wpgw check reads the webhook configuration and the serving Secret', async () => {
    const mwc = await webhookConfig(ctx);
    if (!mwc?.webhooks?.length) return; // reported above
    const bundles = [...new Set(mwc.webhooks.map((w) => w.clientConfig.caBundle ?? ''))];
    const hook = mwc.webhooks[0]!;
    const cas = splitPemBundle(Buffer.from(bundles[0] ?? '', 'base64').toString('utf8')).map(
      (p) => new X509Certificate(p),
    );
    if (cas.length === 0 || bundles.length > 1) {
      emit({
        name,
        status: 'fail',
        detail:
          cas.length === 0 ? 'no caBundle in the webhook configuration' : 'the two webhooks carry different caBundles',
        hint: 'tls.mode self: the webhook patches it (label wpgw.io/ca-bundle=webhook needed); certManager: is the cainjector running?',
      });
      return;
    }
    const chain = await servingChain(ctx, opts, hook);
    if (typeof chain === 'string') {
      emit({
        name,
        status: 'fail',
        detail: chain,
        hint: 'the webhook has not created its certificate yet, or the Secret was deleted',
      });
      return;
    }
    const leaf = chain.certs[0];
    if (!leaf) {
      emit({
        name,
        status: 'fail',
        detail: `${chain.source}: no certificate`,
        hint: 'the webhook serves no certificate',
      });
      return;
    }
    const issuer = [...cas, ...chain.certs.slice(1)].find((ca) => leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
    const trusted =
      issuer && (cas.includes(issuer) || cas.some((ca) => issuer.checkIssued(ca) && issuer.verify(ca.publicKey)));
    const named = leaf.checkHost(chain.host) !== undefined || leaf.checkIP(chain.host) !== undefined;
    if (!trusted || !named) {
      emit({
        name,
        status: 'fail',
        detail: `${chain.source}: ${!trusted ? `issuer "${leaf.issuer.replace(/\n/g, ', ')}" is not in the caBundle` : `certificate is not for ${chain.host}`}`,
        hint: 'the API server rejects this webhook (x509 error): for tls.mode self restart the webhook so it re-patches the caBundle; for GitOps, ignore caBundle diffs so a sync does not reset it',
      });
      return;
    }
    emit({ name, status: 'ok', detail: `${chain.source}, for ${chain.host}` });
    const now = ctx.serverTimeMs ?? (opts.now ?? Date.now)();
    const days = (leaf.validToDate.getTime() - now) / DAY_MS;
    emit(
      days <= 0
        ? {
            name: 'serving certificate not expired',
            status: 'fail',
            detail: `expired ${leaf.validTo}`,
            hint: 'rotation failed: check the webhook logs (self) or the Certificate (cert-manager)',
          }
        : days < EXPIRY_WARN_DAYS
          ? {
              name: 'serving certificate not expired',
              status: 'warn',
              detail: `${days.toFixed(1)} days left`,
              hint: 'rotation should have renewed it by now: check the webhook logs or the Certificate',
            }
          : { name: 'serving certificate not expired', status: 'ok', detail: `${Math.floor(days)} days left` },
    );
  });
}

function probePod(ns: string): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: 'wpgw-check-', namespace: ns, annotations: { [OUTBOUND_ANNOTATION]: 'example.com:80' } },
    spec: {
      os: { name: 'windows' },
      nodeSelector: { [OS_LABEL]: 'windows' },
      containers: [{ name: 'probe', image: 'mcr.microsoft.com/windows/nanoserver:ltsc2022' }],
    },
  };
}

async function optedInNamespaces(ctx: Reader, opts: CheckOptions): Promise<string[]> {
  const all = (
    await ctx.items<V1Namespace>('/api/v1/namespaces', { labelSelector: `${NS_INJECT_LABEL}=${NS_INJECT_ENABLED}` })
  )
    .filter((n) => !n.metadata?.deletionTimestamp)
    .map((n) => n.metadata?.name ?? '');
  return opts.namespace ? all.filter((n) => n === opts.namespace) : all.sort();
}

async function checkAdmissionProbe(ctx: Reader, opts: CheckOptions, emit: Emit): Promise<void> {
  const name = 'a Windows pod is admitted with its routing (server-side dry run)';
  if (opts.noDryRun) {
    emit({
      name,
      status: 'warn',
      detail: 'skipped (--no-dry-run)',
      hint: 'run wpgw check without --no-dry-run, as a user who may create pods, to probe admission end to end',
    });
    return;
  }
  await guarded(emit, name, 'the dry run needs create on pods in the probed namespace', async () => {
    const namespaces = await optedInNamespaces(ctx, opts);
    const ns = namespaces[0];
    if (!ns) {
      emit({
        name,
        status: 'warn',
        detail: opts.namespace ? `${opts.namespace} is not opted in` : 'no namespace is opted in',
        hint: `kubectl label namespace <namespace> ${NS_INJECT_LABEL}=${NS_INJECT_ENABLED}, then run wpgw check again`,
      });
      return;
    }
    let pod: V1Pod;
    try {
      pod = await ctx.rest.request<V1Pod>('POST', `/api/v1/namespaces/${ns}/pods`, {
        query: { dryRun: 'All' },
        body: probePod(ns),
      });
    } catch (err) {
      emit({
        name,
        status: 'fail',
        detail: `${ns}: ${errorMessage(err)}`,
        hint: /failed calling webhook/.test(errorMessage(err))
          ? 'the API server cannot call the webhook: see the endpoint and certificate checks'
          : 'the webhook refused the probe pod: the message says why',
      });
      return;
    }
    const created = Date.parse(String(pod.metadata?.creationTimestamp ?? ''));
    if (Number.isFinite(created)) ctx.serverTimeMs = created;
    const patched =
      pod.metadata?.labels?.[MANAGED_LABEL] === 'true' &&
      Boolean(pod.metadata?.annotations?.[POD_STATUS_ANNOTATION]) &&
      (pod.spec?.hostAliases?.length ?? 0) + (pod.spec?.dnsConfig ? 1 : 0) > 0;
    emit(
      patched
        ? {
            name,
            status: 'ok',
            detail: `${ns}: labelled ${MANAGED_LABEL}, routed via ${pod.spec?.hostAliases?.[0]?.ip ?? 'dnsConfig'}`,
          }
        : {
            name,
            status: 'fail',
            detail: `${ns}: the probe pod came back without wpgw's changes`,
            hint: `the webhook was not called: check MutatingWebhookConfiguration ${WEBHOOK_CONFIG}'s selectors and the namespace label`,
          },
    );
    if (Number.isFinite(created)) {
      const skew = Math.abs((opts.now ?? Date.now)() - created);
      emit(
        skew < 30_000
          ? { name: 'clock skew with the API server', status: 'ok', detail: `${Math.round(skew / 1000)}s` }
          : {
              name: 'clock skew with the API server',
              status: 'warn',
              detail: `${Math.round(skew / 1000)}s`,
              hint: 'certificate validity is judged by each clock: sync this machine and the nodes with NTP',
            },
      );
    }
  });
}

async function checkGateways(ctx: Reader, opts: CheckOptions, emit: Emit): Promise<void> {
  let namespaces: string[] = [];
  await guarded(emit, 'opted-in namespaces', 'wpgw needs to list namespaces', async () => {
    namespaces = await optedInNamespaces(ctx, opts);
  });
  for (const ns of namespaces) {
    await guarded(emit, `${ns}: gateway`, `wpgw needs to read deployments and pods in ${ns}`, async () => {
      const d = await ctx.maybe<V1Deployment>(`/apis/apps/v1/namespaces/${ns}/deployments/${GATEWAY_SERVICE}`);
      if (!d) {
        emit({
          name: `${ns}: gateway`,
          status: 'fail',
          detail: `no Deployment ${GATEWAY_SERVICE}`,
          hint: 'the controller creates it within seconds of the label: is the controller running (leader check)?',
        });
        return;
      }
      const available = d.status?.availableReplicas ?? 0;
      emit({
        name: `${ns}: gateway`,
        status: available > 0 ? 'ok' : 'fail',
        detail: `${available}/${d.spec?.replicas ?? 1} available`,
        ...(available > 0 ? {} : { hint: `kubectl -n ${ns} describe deployment ${GATEWAY_SERVICE}` }),
      });
      const pods = await ctx.items<V1Pod>(`/api/v1/namespaces/${ns}/pods`, {
        labelSelector: `${GATEWAY_POD_LABEL}=${ns}`,
      });
      const auto = pods.filter((p) => p.spec?.containers?.some((c) => c.image === 'auto'));
      if (pods.length > 0) {
        emit(
          auto.length === 0
            ? { name: `${ns}: gateway pods injected`, status: 'ok', detail: `${pods.length} pod(s)` }
            : {
                name: `${ns}: gateway pods injected`,
                status: 'fail',
                detail: `${auto.length}/${pods.length} still on image "auto"`,
                hint: "Istio's injector did not inject them: set the Istio revision (--istio-revision, wpgw.io/istio-revision) to one the Istio check lists",
              },
        );
      }
      // What the installed webhooks would do to a new gateway pod right now.
      const template = d.spec?.template;
      if (template && !opts.noDryRun) {
        const probe = {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { ...template.metadata, generateName: 'wpgw-check-gateway-', namespace: ns },
          spec: template.spec,
        };
        const out = await ctx.rest.request<V1Pod>('POST', `/api/v1/namespaces/${ns}/pods`, {
          query: { dryRun: 'All' },
          body: probe,
        });
        const proxy = out.spec?.containers?.find((c) => c.name === 'istio-proxy');
        const injected = proxy && proxy.image !== 'auto';
        emit(
          injected
            ? {
                name: `${ns}: a new gateway pod would be injected`,
                status: 'ok',
                detail: `${proxy.image}${(proxy.args ?? []).includes('router') ? ' (gateway template)' : ''}`,
              }
            : {
                name: `${ns}: a new gateway pod would be injected`,
                status: 'fail',
                detail: `labels ${JSON.stringify(template.metadata?.labels ?? {})} match no injector webhook`,
                hint: "no Istio injector selects this namespace and pod: check the namespace's istio.io/rev / istio-injection labels against the Istio check's revisions",
              },
        );
      }
    });
    const statusOf = opts.statusOf;
    if (!statusOf) continue;
    await guarded(emit, `${ns}: drift and conflicts`, `wpgw needs to read ${ns}`, async () => {
      const s = await statusOf(ns);
      if (s.errors.length)
        emit({
          name: `${ns}: drift and conflicts`,
          status: 'fail',
          detail: s.errors.join('; '),
          hint: `wpgw status -n ${ns}`,
        });
      else if (s.drift || s.conflicts)
        emit({
          name: `${ns}: drift and conflicts`,
          status: 'warn',
          detail: `${s.drift} pod(s) with a stale gateway address, ${s.conflicts} conflict(s)`,
          hint: `wpgw status -n ${ns} lists them`,
        });
      else emit({ name: `${ns}: drift and conflicts`, status: 'ok', detail: 'none' });
    });
  }
}
