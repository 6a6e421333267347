// The slim caches (src/cluster/slim.ts, the namespace scoping and backfill in cache.ts/reflector.ts)
// change no decision: property tests compare every decision the webhook and the controller make
// from the cache, on the real ClusterCache (slim, scoped) against a reference view over the full
// objects (what the cache kept before), for generated clusters full of fields nobody reads.
import fc from 'fast-check';
import type { V1Ingress, V1Namespace, V1Pod, V1Service } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { cacheAdmissionContext, type AdmissionCacheView } from '../../src/cluster/admission-context.js';
import {
  CONTROLLER_RESOURCES,
  ClusterCache,
  WEBHOOK_CACHE,
  WEBHOOK_RESOURCES,
  watchSpecs,
  type ClusterCacheOptions,
  type ResourceKey,
  type Workload,
  type WorkloadResource,
} from '../../src/cluster/cache.js';
import { slimObject } from '../../src/cluster/slim.js';
import { needsApply } from '../../src/controller/compare.js';
import { DEFAULT_DESIRED_OPTIONS } from '../../src/defaults.js';
import { buildNamespaceInput, type InputCacheView } from '../../src/controller/input.js';
import { selectNudges } from '../../src/controller/nudge.js';
import { cacheOwnerLookup, planOwnerRestarts } from '../../src/controller/owners.js';
import { admit } from '../../src/core/admission.js';
import { desiredNamespaceState } from '../../src/core/desired.js';
import type { KubeObject } from '../../src/core/desired-types.js';
import { planRestore, type RestorePlan } from '../../src/core/restore.js';
import { FIELD_MANAGER } from '../../src/names.js';
import { World, type Obj } from './helpers/fake-cluster.js';
import { injectedPod, repointedService, service } from './helpers/builders.js';
import { review, staticContext } from '../lib/admission.js';

const OPTED = { 'wpgw.io/inject': 'enabled' };
const OURS = { 'app.kubernetes.io/managed-by': 'wpgw' };
const NAMESPACES = ['shop', 'pay', 'elsewhere'] as const;

// ---- noise: fields no decision reads, as the API server sends them ------------------------------

const managedFields = [
  {
    manager: 'kubectl-client-side-apply',
    operation: 'Update',
    apiVersion: 'v1',
    time: '2026-01-01T00:00:00Z',
    fieldsType: 'FieldsV1',
    fieldsV1: { 'f:metadata': { 'f:labels': { '.': {} } } },
  },
  {
    manager: 'kube-controller-manager',
    operation: 'Update',
    apiVersion: 'v1',
    fieldsType: 'FieldsV1',
    fieldsV1: { 'f:status': {} },
  },
];
const noiseMeta = {
  managedFields,
  generation: 3,
  finalizers: ['example.com/keep'],
  annotations: {
    'kubectl.kubernetes.io/last-applied-configuration': '{"big":"object"}',
    'deployment.kubernetes.io/revision': '4',
  },
};
const bigContainer = (name: string, hostProcess: boolean | undefined) => ({
  name,
  image: `registry.example.com/${name}:1`,
  env: Array.from({ length: 6 }, (_, i) => ({ name: `E${i}`, value: `v${i}` })),
  resources: { requests: { cpu: '100m' }, limits: { memory: '128Mi' } },
  ports: [{ containerPort: 8080 }],
  readinessProbe: { httpGet: { path: '/healthz', port: 8080 } },
  ...(hostProcess === undefined ? {} : { securityContext: { windowsOptions: { hostProcess } } }),
});

/** Test objects carry fields KubeObjectLike does not name (managedFields, status, ...). */
const obj = (o: unknown): Obj => o as Obj;

// ---- arbitraries ---------------------------------------------------------------------------------

const app = fc.constantFrom('web', 'api', 'db');
const labelsArb = fc.record(
  { app, tier: fc.constantFrom('front', 'back'), 'wpgw.io/inject': fc.constantFrom('true', 'false') },
  { requiredKeys: ['app'] },
);

const windowsEvidence = fc.constantFrom(
  {},
  { os: { name: 'windows' } },
  { os: { name: 'linux' } },
  { nodeSelector: { 'kubernetes.io/os': 'windows', disk: 'ssd' } },
  { nodeSelector: { 'kubernetes.io/os': 'linux' } },
  { runtimeClassName: 'win' },
  { runtimeClassName: 'lin' },
  { runtimeClassName: 'absent' },
  {
    affinity: {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['windows'] }] }],
        },
      },
    },
  },
  {
    affinity: {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            { matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['windows'] }] },
            { matchExpressions: [{ key: 'x', operator: 'Exists' }] },
          ],
        },
      },
      podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] },
    },
  },
);

const podTemplate = fc
  .record({
    labels: labelsArb,
    evidence: windowsEvidence,
    hostNetwork: fc.boolean(),
    podHostProcess: fc.option(fc.boolean(), { nil: undefined }),
    containerHostProcess: fc.option(fc.boolean(), { nil: undefined }),
    init: fc.boolean(),
    templateAnnotations: fc.constantFrom(
      {},
      { 'wpgw.io/inject': 'false' },
      { 'wpgw.io/restartedAt': '2026-01-01T00:00:00Z' },
      { 'prometheus.io/scrape': 'true' },
    ),
  })
  .map((t) => ({
    metadata: { labels: t.labels, annotations: t.templateAnnotations },
    spec: {
      ...t.evidence,
      ...(t.hostNetwork ? { hostNetwork: true } : {}),
      ...(t.podHostProcess === undefined
        ? {}
        : { securityContext: { windowsOptions: { hostProcess: t.podHostProcess }, runAsNonRoot: true } }),
      containers: [bigContainer('app', t.containerHostProcess), bigContainer('side', undefined)],
      ...(t.init ? { initContainers: [bigContainer('init', t.containerHostProcess)] } : {}),
      volumes: [{ name: 'data', emptyDir: {} }],
      tolerations: [{ key: 'os', value: 'windows', effect: 'NoSchedule' }],
      dnsPolicy: 'ClusterFirst',
    },
  }));

const WORKLOAD_KINDS = [
  ['Deployment', 'apps/v1'],
  ['StatefulSet', 'apps/v1'],
  ['DaemonSet', 'apps/v1'],
  ['ReplicaSet', 'apps/v1'],
  ['Job', 'batch/v1'],
  ['CronJob', 'batch/v1'],
  ['Rollout', 'argoproj.io/v1alpha1'],
] as const;

const workloadArb = (namespace: string, i: number) =>
  fc
    .record({ kind: fc.constantFrom(...WORKLOAD_KINDS), template: podTemplate, owned: fc.boolean() })
    .map(({ kind: k, template, owned }): Obj => {
      const kind: string = k[0];
      const apiVersion: string = k[1];
      return obj({
        apiVersion,
        kind,
        metadata: {
          name: `${kind.toLowerCase()}-${i}`,
          namespace,
          uid: `${namespace}-${kind}-${i}`,
          resourceVersion: '1',
          labels: { app: template.metadata.labels.app },
          creationTimestamp: '2026-01-01T00:00:00Z',
          ...noiseMeta,
          ...(owned && kind === 'ReplicaSet'
            ? {
                ownerReferences: [
                  { apiVersion: 'apps/v1', kind: 'Deployment', name: 'deployment-0', uid: 'd0', controller: true },
                ],
              }
            : {}),
        },
        spec:
          kind === 'CronJob'
            ? { schedule: '* * * * *', jobTemplate: { spec: { template } } }
            : {
                replicas: 0,
                selector: { matchLabels: template.metadata.labels },
                template,
                revisionHistoryLimit: 10,
                ...(kind === 'Rollout' ? { restartAt: owned ? '2026-02-01T00:00:00Z' : undefined } : {}),
              },
        status: { replicas: 0, observedGeneration: 3, conditions: [{ type: 'Available', status: 'True' }] },
      });
    });

const serviceArb = (namespace: string, i: number) =>
  fc
    .record({
      selector: fc.option(labelsArb, { nil: undefined }),
      type: fc.constantFrom('ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'),
      headless: fc.boolean(),
      targetPort: fc.constantFrom(8080, 9090, 'http'),
      repointed: fc.boolean(),
      nonMesh: fc.boolean(),
      affinity: fc.boolean(),
    })
    .map((s): Obj => {
      const base = service(`svc-${i}`, namespace, s.selector ?? {}, [
        { name: 'http', port: 80 + i, targetPort: s.targetPort, protocol: 'TCP' },
      ]);
      base.spec = {
        ...base.spec,
        ...(s.selector ? {} : { selector: undefined }),
        type: s.type as V1Service['spec'] extends infer X ? (X extends { type?: infer T } ? T : never) : never,
        clusterIP: s.headless ? 'None' : `10.96.${i}.1`,
        ...(s.affinity
          ? { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } } }
          : {}),
        ...(s.type === 'ExternalName' ? { externalName: 'db.example.com' } : {}),
        ipFamilies: ['IPv4'],
      };
      base.metadata = {
        ...base.metadata,
        uid: `${namespace}-svc-${i}`,
        resourceVersion: '1',
        ...(s.nonMesh ? { annotations: { 'wpgw.io/non-mesh-clients': 'true' } } : {}),
      };
      const svc =
        s.repointed && s.selector && s.type === 'ClusterIP' && !s.headless ? tryRepoint(base, s.selector) : base;
      return obj({
        ...svc,
        metadata: {
          ...svc.metadata,
          ...noiseMeta,
          annotations: { ...noiseMeta.annotations, ...svc.metadata?.annotations },
        },
        status: { loadBalancer: { ingress: [{ ip: '1.2.3.4' }] } },
      });
    });

function tryRepoint(svc: V1Service, labels: Record<string, string>): V1Service {
  try {
    return repointedService(svc, labels);
  } catch {
    return svc; // the webhook would not re-point it (e.g. opted out by label): a plain Service
  }
}

const podArb = (namespace: string, i: number) =>
  fc
    .record({
      labels: labelsArb,
      owner: fc.constantFrom('rs', 'ss', 'none'),
      phase: fc.constantFrom('Running', 'Succeeded', 'Pending'),
    })
    .map(({ labels, owner, phase }): Obj => {
      const { ['wpgw.io/inject']: _drop, ...podLabels } = labels;
      const pod = injectedPod({
        name: `pod-${i}`,
        namespace,
        labels: podLabels,
        ip: `10.1.${i}.1`,
        outbound: 'db.example.com:5432',
      });
      return obj({
        apiVersion: 'v1',
        kind: 'Pod',
        ...pod,
        metadata: {
          ...pod.metadata,
          uid: `${namespace}-pod-${i}`,
          resourceVersion: '1',
          creationTimestamp: '2026-01-15T00:00:00Z',
          managedFields,
          ownerReferences:
            owner === 'rs'
              ? [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'replicaset-1', uid: 'rs1', controller: true }]
              : owner === 'ss'
                ? [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'statefulset-2', uid: 'ss2', controller: true }]
                : [],
        },
        status: {
          ...pod.status,
          phase,
          hostIP: '10.0.0.1',
          conditions: [{ type: 'Ready', status: 'True' }],
          containerStatuses: [{ name: 'app', ready: true }],
        },
      });
    });

const ingressArb = (namespace: string) =>
  fc.constantFrom<Obj[]>(
    [],
    [
      obj({
        apiVersion: 'networking.k8s.io/v1',
        kind: 'Ingress',
        metadata: { name: 'ing', namespace, resourceVersion: '1', managedFields },
        spec: { ingressClassName: 'nginx', defaultBackend: { service: { name: 'svc-0', port: { number: 80 } } } },
        status: { loadBalancer: {} },
      }),
    ],
  );

function managedOutputs(namespace: string): Obj[] {
  const apply = {
    manager: FIELD_MANAGER,
    operation: 'Apply',
    fieldsType: 'FieldsV1',
    fieldsV1: { 'f:metadata': { 'f:labels': { 'f:app.kubernetes.io/managed-by': {} } }, 'f:spec': { 'f:extra': {} } },
  };
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: 'wpgw',
        namespace,
        resourceVersion: '1',
        labels: { ...OURS },
        managedFields: [...managedFields, apply],
      },
      spec: { clusterIP: '10.96.200.10', selector: { 'wpgw.io/gateway': namespace }, ports: [{ port: 15021 }] },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {
        name: 'wpgw',
        namespace,
        resourceVersion: '1',
        labels: { ...OURS },
        managedFields: [...managedFields, apply],
      },
      spec: {
        replicas: 2,
        template: {
          metadata: { labels: { 'wpgw.io/gateway': namespace } },
          spec: { containers: [{ name: 'istio-proxy', image: 'auto' }] },
        },
      },
      status: { readyReplicas: 2 },
    },
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'wpgw', namespace, resourceVersion: '1', labels: { ...OURS }, managedFields: [apply] },
    },
  ].map(obj);
}

interface Cluster {
  objects: Obj[];
}

const clusterArb: fc.Arbitrary<Cluster> = fc
  .tuple(
    ...NAMESPACES.map((namespace) =>
      fc.record({
        optedIn: namespace === 'elsewhere' ? fc.constant(false) : fc.boolean(),
        annotations: fc.constantFrom(
          { 'openshift.io/sa.scc.uid-range': '1000/10000' },
          { 'wpgw.io/resolver': 'dnsConfig', 'kubectl.kubernetes.io/last-applied-configuration': '{}' },
          { 'wpgw.io/restart-on-ip-change': 'false', 'wpgw.io/gateway-replicas': '3', 'wpgw.io/dns-server': 'enabled' },
        ),
        workloads: fc
          .array(fc.nat(), { maxLength: 7 })
          .chain((xs) => fc.tuple(...xs.map((_, i) => workloadArb(namespace, i)))),
        services: fc
          .array(fc.nat(), { maxLength: 5 })
          .chain((xs) => fc.tuple(...xs.map((_, i) => serviceArb(namespace, i)))),
        pods: fc.array(fc.nat(), { maxLength: 4 }).chain((xs) => fc.tuple(...xs.map((_, i) => podArb(namespace, i)))),
        ingresses: ingressArb(namespace),
        outputs: fc.boolean(),
      }),
    ),
  )
  .map((perNs) => {
    const objects: Obj[] = [
      {
        apiVersion: 'node.k8s.io/v1',
        kind: 'RuntimeClass',
        metadata: { name: 'win', resourceVersion: '1', managedFields },
        handler: 'runhcs-wcow-process',
        scheduling: { nodeSelector: { 'kubernetes.io/os': 'windows' } },
      },
      {
        apiVersion: 'node.k8s.io/v1',
        kind: 'RuntimeClass',
        metadata: { name: 'lin', resourceVersion: '1' },
        handler: 'runc',
        scheduling: { nodeSelector: { 'kubernetes.io/os': 'linux' } },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'kube-dns', namespace: 'kube-system', resourceVersion: '1', managedFields },
        spec: { clusterIP: '10.96.0.10', ports: [{ port: 53 }] },
      },
    ].map(obj);
    perNs.forEach((n, i) => {
      const name = NAMESPACES[i]!;
      objects.push(
        obj({
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: {
            name,
            resourceVersion: '1',
            uid: `ns-${name}`,
            labels: { 'kubernetes.io/metadata.name': name, ...(n.optedIn ? OPTED : {}) },
            annotations: n.annotations,
            managedFields,
          },
          spec: { finalizers: ['kubernetes'] },
          status: { phase: 'Active' },
        }),
      );
      objects.push(...n.workloads, ...n.services, ...n.ingresses);
      // Managed pods and outputs in a namespace that is not opted in: what an opt-out leaves to undo.
      if (n.optedIn || n.outputs) objects.push(...n.pods);
      if (n.outputs) objects.push(...managedOutputs(name));
    });
    return { objects };
  });

// ---- the reference: the full objects, read the way the cache served them before ------------------

const WORKLOAD_KIND = Object.fromEntries(watchSpecs(WEBHOOK_RESOURCES).map((w) => [w.resource, w.info.kind])) as Record<
  WorkloadResource,
  string
>;

type View = AdmissionCacheView & InputCacheView & Pick<ClusterCache, 'workload' | 'managedObjects' | 'namespace'>;

function fullView(objects: readonly Obj[]): View {
  const of = (kind: string, ns: string) =>
    objects.filter((o) => o.kind === kind && (o.metadata?.namespace ?? '') === ns);
  const one = (kind: string, ns: string, name: string) => of(kind, ns).find((o) => o.metadata?.name === name);
  return {
    namespace: (name) => one('Namespace', '', name) as V1Namespace | undefined,
    service: (ns, name) => one('Service', ns, name) as V1Service | undefined,
    services: (ns) => of('Service', ns) as V1Service[],
    managedPods: (ns) => of('Pod', ns).filter((p) => p.metadata?.labels?.['wpgw.io/managed'] !== undefined) as V1Pod[],
    runtimeClass: (name) => one('RuntimeClass', '', name) as never,
    workloads: (r, ns) => of(WORKLOAD_KIND[r], ns) as Workload[],
    workload: <T extends Workload>(r: WorkloadResource, ns: string, name: string) =>
      one(WORKLOAD_KIND[r], ns, name) as T | undefined,
    ingresses: (ns) => of('Ingress', ns) as V1Ingress[],
    generation: () => 0,
    allServices: () => objects.filter((o) => o.kind === 'Service') as V1Service[],
    sidecars: (ns) => of('Sidecar', ns) as never,
    istioObjects: (ns) => ({
      virtualServices: of('VirtualService', ns) as KubeObject[],
      destinationRules: of('DestinationRule', ns) as KubeObject[],
      authorizationPolicies: of('AuthorizationPolicy', ns) as KubeObject[],
      peerAuthentications: of('PeerAuthentication', ns) as KubeObject[],
      requestAuthentications: of('RequestAuthentication', ns) as KubeObject[],
    }),
    allRouting: () => ({
      virtualServices: objects.filter((o) => o.kind === 'VirtualService') as KubeObject[],
      destinationRules: objects.filter((o) => o.kind === 'DestinationRule') as KubeObject[],
    }),
    managedObjects: (ns) =>
      objects.filter(
        (o) =>
          (o.metadata?.namespace ?? '') === ns &&
          o.kind !== 'Pod' &&
          o.metadata?.labels?.['app.kubernetes.io/managed-by'] === 'wpgw',
      ) as KubeObject[],
  };
}

// ---- every decision read from the cache ---------------------------------------------------------

/** Probes admitted against the context: a Windows pod and a Service per label set. */
function probes(namespace: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const a of ['web', 'api', 'db']) {
    out.push(
      review({
        kind: 'Pod',
        namespace,
        object: {
          metadata: {
            name: `p-${a}`,
            namespace,
            labels: { app: a },
            annotations: { 'wpgw.io/outbound': `svc-0.${namespace}:80,db.example.com:5432` },
          },
          spec: {
            nodeSelector: { 'kubernetes.io/os': 'windows' },
            runtimeClassName: 'win',
            containers: [{ name: 'c', image: 'i' }],
          },
        },
      }),
    );
    out.push(
      review({
        kind: 'Service',
        namespace,
        object: service(`probe-${a}`, namespace, { app: a }, [{ port: 8080, targetPort: 8080 }]),
      }),
    );
    out.push(
      review({
        kind: 'Service',
        namespace,
        object: service('svc-0', namespace, { app: a }, [{ port: 80, targetPort: 9090 }]),
        operation: 'UPDATE',
        oldObject: service('svc-0', namespace, { app: a }, [{ port: 80, targetPort: 9090 }]),
      }),
    );
  }
  return out;
}

/** What the webhook decides in the namespace (all it reads goes through the AdmissionContext). */
function admissionDecisions(v: AdmissionCacheView, namespace: string): Record<string, unknown> {
  const ctx = cacheAdmissionContext(v);
  const services = v.services(namespace);
  return {
    gatewayIP: ctx.gatewayIP(namespace),
    dnsIP: ctx.dnsIP(namespace),
    runtimeClassOS: ['win', 'lin', 'absent'].map((n) => ctx.runtimeClassOS(n)),
    // Only wpgw.io/* namespace annotations are read (and kept): slim.ts.
    namespaceAnnotations: Object.entries(ctx.namespaceAnnotations(namespace)).filter(([k]) => k.startsWith('wpgw.io/')),
    windowsLabelSets: [...ctx.windowsLabelSets(namespace)].map((l) => JSON.stringify(l)).sort(),
    unmanaged: ctx.unmanagedWorkloads(namespace),
    taken: services.map((s) => [...ctx.takenInboundPorts(namespace, s.metadata?.name ?? '')].sort()),
    gatewayPorts: [...ctx.gatewaySelectingServicePorts(namespace, '')].sort(),
    owners: services.map((s) => ctx.serviceOwner(namespace, s.metadata?.name ?? '')),
    admissions: probes(namespace).map((r) => admit(r, ctx)),
  };
}

/** The restore plan as decided: which pods still point at the gateway, not the pod objects themselves. */
function restoreDecision(plan: RestorePlan): Record<string, unknown> {
  const { pointing, ...rest } = plan;
  return { ...rest, pointing: pointing.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`) };
}

function decisions(v: View, namespace: string): Record<string, unknown> {
  const services = v.services(namespace);
  const nsObj = v.namespace(namespace);
  const pods = v.managedPods(namespace);
  const desired = nsObj ? desiredNamespaceState(buildNamespaceInput(v, nsObj), DEFAULT_DESIRED_OPTIONS) : undefined;
  const managed = v.managedObjects(namespace);
  const byKey = (o: { kind?: string; metadata?: { name?: string } }) => `${o.kind}/${o.metadata?.name}`;
  const live = new Map(managed.map((o) => [byKey(o), o]));
  const sortObj = <T extends { metadata?: { name?: string } }>(xs: T[]) =>
    [...xs].sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  return {
    ...admissionDecisions(v, namespace),
    desired,
    applies: desired?.objects.map((d) => needsApply(d, live.get(byKey(d)), FIELD_MANAGER)),
    restore: restoreDecision(
      planRestore({ namespace, services: sortObj(services), pods: sortObj(pods), managed: sortObj(managed) }),
    ),
    nudges: selectNudges(sortObj(services), sortObj(pods), undefined, v.ingresses(namespace)),
    restarts: planOwnerRestarts(sortObj(pods), '10.96.9.9', { restartEnabled: true, lookup: cacheOwnerLookup(v) }),
  };
}

// ---- the slim, scoped cache ---------------------------------------------------------------------

const caches: ClusterCache[] = [];
afterEach(async () => {
  await Promise.all(caches.splice(0).map((c) => c.stop()));
});

async function slimCache(
  world: World,
  resources: readonly ResourceKey[],
  scoped?: readonly ResourceKey[],
  slim?: ClusterCacheOptions['slim'],
): Promise<ClusterCache> {
  const c = new ClusterCache({
    resources,
    ...(scoped ? { scoped } : {}),
    ...(slim ? { slim } : {}),
    sourceFactory: (info, sel) => world.source(info, sel),
    relistIntervalMs: 0,
    backoff: { initialMs: 5, maxMs: 20, jitter: 0 },
  });
  caches.push(c);
  c.start();
  await c.waitForSync();
  return c;
}

/** Opted-in namespaces: where the webhook is called. */
function optedIn(objects: readonly Obj[]): string[] {
  return NAMESPACES.filter((n) =>
    objects.some(
      (o) => o.kind === 'Namespace' && o.metadata?.name === n && o.metadata.labels?.['wpgw.io/inject'] === 'enabled',
    ),
  );
}

/** Namespaces wpgw works in: opted in, or holding managed pods or outputs. */
function workedIn(objects: readonly Obj[]): string[] {
  return NAMESPACES.filter((n) =>
    objects.some(
      (o) =>
        (o.kind === 'Namespace' && o.metadata?.name === n && o.metadata.labels?.['wpgw.io/inject'] === 'enabled') ||
        (o.metadata?.namespace === n &&
          (o.metadata.labels?.['wpgw.io/managed'] !== undefined ||
            o.metadata.labels?.['app.kubernetes.io/managed-by'] === 'wpgw')),
    ),
  );
}

describe('slim caches change no decision', () => {
  it('webhook and controller decisions on the slim, scoped cache equal those on the full objects', async () => {
    let compared = 0;
    let patched = 0;
    let desiredObjects = 0;
    let managedPods = 0;
    await fc.assert(
      fc.asyncProperty(clusterArb, async ({ objects }) => {
        const world = new World();
        world.objects = structuredClone(objects);
        const cache = await slimCache(world, CONTROLLER_RESOURCES);
        const full = fullView(objects);
        for (const ns of workedIn(objects)) {
          const want = decisions(full, ns);
          managedPods += full.managedPods(ns).length;
          const got = decisions(cache as unknown as View, ns);
          // Decision by decision, so a failure names the one that differs.
          for (const k of Object.keys(want)) expect({ [k]: got[k] }).toEqual({ [k]: want[k] });
          expect(Object.keys(got)).toEqual(Object.keys(want));
          compared++;
          patched += (want.admissions as Array<{ ok: boolean; review?: { response: { patch?: string } } }>).filter(
            (a) => a.ok && a.review?.response.patch,
          ).length;
          desiredObjects += (want.desired as { objects: unknown[] } | undefined)?.objects.length ?? 0;
        }
        // Start-up: one cluster-wide list per kind, no per-namespace round trips.
        expect(world.lists.filter((l) => l.namespace !== '')).toEqual([]);
        await cache.stop();
      }),
      { numRuns: 120 },
    );
    // Not vacuous: most runs have namespaces to compare, admissions that patch, desired objects.
    expect(compared).toBeGreaterThan(120);
    expect(patched).toBeGreaterThan(compared);
    expect(desiredObjects).toBeGreaterThan(compared * 5);
    // Managed pods reach the decisions (restore, nudges, restarts, the policies' source IPs).
    expect(managedPods).toBeGreaterThan(compared);
  });

  it("the webhook's cache (Services scoped too) decides admissions as the full objects do where it is called", async () => {
    let compared = 0;
    await fc.assert(
      fc.asyncProperty(clusterArb, async ({ objects }) => {
        const world = new World();
        world.objects = structuredClone(objects);
        const webhook = await slimCache(world, WEBHOOK_CACHE.resources, WEBHOOK_CACHE.scoped, WEBHOOK_CACHE.slim);
        const full = fullView(objects);
        // The MutatingWebhookConfiguration selects opted-in namespaces only.
        for (const ns of optedIn(objects)) {
          expect(admissionDecisions(webhook, ns)).toEqual(admissionDecisions(full, ns));
          compared++;
        }
        // Services of namespaces it is never called for are not kept, unless a decision reads them anywhere.
        const kept = NAMESPACES.filter((n) => !workedIn(objects).includes(n)).flatMap((n) => webhook.services(n));
        expect(
          kept.every(
            (s) =>
              s.metadata?.labels?.['app.kubernetes.io/managed-by'] === 'wpgw' ||
              'wpgw.io/original' in (s.metadata?.annotations ?? {}) ||
              'wpgw.io/repointed' in (s.metadata?.labels ?? {}),
          ),
        ).toBe(true);
        await webhook.stop();
      }),
      { numRuns: 60 },
    );
    expect(compared).toBeGreaterThan(40);
  });

  it("the webhook keeps of a managed pod its identity and labels, and a bare pod's labels still make its Service Windows", async () => {
    const world = new World();
    const injected = injectedPod({
      name: 'legacy-0',
      namespace: 'shop',
      labels: { app: 'legacy' },
      ip: '10.1.0.9',
      outbound: 'db.example.com:5432',
    });
    const pod = obj({
      ...injected,
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { ...injected.metadata, uid: 'p1', resourceVersion: '1', managedFields },
    });
    world.objects = [
      obj({
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: 'shop', uid: 'ns', resourceVersion: '1', labels: { 'wpgw.io/inject': 'enabled' } },
      }),
      pod,
    ];
    const webhook = await slimCache(world, WEBHOOK_CACHE.resources, WEBHOOK_CACHE.scoped, WEBHOOK_CACHE.slim);
    const [cached] = webhook.managedPods('shop');
    expect(cached?.metadata?.labels).toEqual(pod.metadata?.labels);
    expect(cached?.spec).toBeUndefined();
    expect(cached?.metadata?.annotations).toBeUndefined();
    const windows = [...cacheAdmissionContext(webhook).windowsLabelSets('shop')].map((l) => JSON.stringify(l));
    const full = [...cacheAdmissionContext(fullView(world.objects)).windowsLabelSets('shop')].map((l) =>
      JSON.stringify(l),
    );
    expect(windows).toEqual(full);
    expect(windows.some((l) => JSON.parse(l).app === 'legacy')).toBe(true);
  });

  it('after an opt-in, the backfilled namespace decides exactly as the full objects do', async () => {
    await fc.assert(
      fc.asyncProperty(clusterArb, async ({ objects }) => {
        const world = new World();
        // "elsewhere" is a namespace wpgw has never worked in: no managed pods (those make a
        // namespace kept whole from the start, as after an opt-out).
        world.objects = structuredClone(objects).filter(
          (o) => !(o.kind === 'Pod' && o.metadata?.namespace === 'elsewhere'),
        );
        const cache = await slimCache(world, WEBHOOK_CACHE.resources, WEBHOOK_CACHE.scoped, WEBHOOK_CACHE.slim);
        const elsewhere = world.objects.find((o) => o.kind === 'Namespace' && o.metadata?.name === 'elsewhere')!;
        const hadObjects = cache.workloads('deployments', 'elsewhere').length;
        const hadServices = cache
          .services('elsewhere')
          .map((o) => o.metadata?.name)
          .sort();
        world.emit('MODIFIED', {
          ...elsewhere,
          metadata: { ...elsewhere.metadata, labels: { ...elsewhere.metadata?.labels, ...OPTED } },
        });
        expect(cache.namespaceSynced('elsewhere')).toBe(false);
        await expect.poll(() => cache.namespaceSynced('elsewhere'), { timeout: 2000, interval: 5 }).toBe(true);
        // One namespaced list per scoped kind, of that namespace only.
        const backfills = world.lists.filter((l) => l.namespace !== '');
        expect(backfills.every((l) => l.namespace === 'elsewhere')).toBe(true);
        expect(backfills.length).toBe(9); // workloads (7 kinds), Ingresses and (the webhook's) Services
        const ctx = (v: AdmissionCacheView) => {
          const c = cacheAdmissionContext(v);
          return {
            sets: [...c.windowsLabelSets('elsewhere')].map((l) => JSON.stringify(l)).sort(),
            unmanaged: c.unmanagedWorkloads('elsewhere'),
            admissions: probes('elsewhere').map((r) => admit(r, c)),
          };
        };
        expect(ctx(cache)).toEqual(ctx(fullView(world.objects)));
        // Before the opt-in only the workloads and Services a decision reads anywhere were kept.
        const keptAnywhere = (o: Obj) =>
          o.metadata?.namespace === 'elsewhere' &&
          (o.metadata.labels?.['app.kubernetes.io/managed-by'] === 'wpgw' ||
            'wpgw.io/original' in (o.metadata.annotations ?? {}) ||
            'wpgw.io/repointed' in (o.metadata.labels ?? {}));
        expect(hadServices).toEqual(
          world.objects
            .filter((o) => o.kind === 'Service' && keptAnywhere(o))
            .map((o) => o.metadata?.name)
            .sort(),
        );
        expect(hadObjects).toBe(
          world.objects.filter(
            (o) =>
              o.metadata?.namespace === 'elsewhere' &&
              o.kind === 'Deployment' &&
              (o.metadata.labels?.['app.kubernetes.io/managed-by'] === 'wpgw' ||
                'wpgw.io/original' in (o.metadata.annotations ?? {})),
          ).length,
        );
        await cache.stop();
      }),
      { numRuns: 40 },
    );
  });
});

describe('slimObject', () => {
  it('is idempotent and keeps field paths (same shape, fewer fields)', () => {
    fc.assert(
      fc.property(clusterArb, ({ objects }) => {
        for (const o of objects) {
          const kind =
            o.kind === 'Namespace'
              ? 'namespace'
              : o.kind === 'Service'
                ? 'service'
                : o.kind === 'Pod'
                  ? 'managedPod'
                  : o.kind === 'Ingress'
                    ? 'ingress'
                    : o.kind === 'RuntimeClass'
                      ? 'runtimeClass'
                      : o.kind === 'ServiceAccount'
                        ? 'managedOutput'
                        : 'workload';
          const s = slimObject(kind, o);
          expect(slimObject(kind, s)).toEqual(s);
          expect(isSubtree(s, o)).toBe(true);
          if (kind === 'managedPod') {
            const a = slimObject('admissionPod', o);
            expect(slimObject('admissionPod', a)).toEqual(a);
            expect(isSubtree(a, o)).toBe(true);
          }
          // managedFields go, except the Apply entries of objects we manage (compare.ts reads those).
          const mf = (s.metadata as { managedFields?: Array<{ operation: string }> }).managedFields;
          expect(mf === undefined || mf.every((e) => e.operation === 'Apply')).toBe(true);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('drops what no decision reads from a user workload', () => {
    const d = fc.sample(workloadArb('shop', 0), { numRuns: 1, seed: 7 })[0]!;
    const s = slimObject('workload', d) as Obj & {
      spec: { template?: { spec: { containers: unknown[]; volumes?: unknown } } };
    };
    expect(s.status).toBeUndefined();
    // of the workload's own annotations only wpgw's (the misplaced-setting hints read them)
    expect(Object.keys(s.metadata?.annotations ?? {}).filter((k) => !k.startsWith('wpgw.io/'))).toEqual([]);
    const own = slimObject('workload', {
      ...d,
      metadata: {
        ...d.metadata,
        annotations: {
          'wpgw.io/outbound': 'example.com:443',
          'kubectl.kubernetes.io/last-applied-configuration': '{}',
        },
      },
    });
    expect(own.metadata?.annotations).toEqual({ 'wpgw.io/outbound': 'example.com:443' });
    expect(JSON.stringify(s).length).toBeLessThan(JSON.stringify(d).length / 3);
  });
});

/** Every value in `part` is at the same path in `whole` (arrays element-wise). */
function isSubtree(part: unknown, whole: unknown): boolean {
  if (part === whole) return true;
  if (Array.isArray(part))
    return Array.isArray(whole) && part.length === whole.length && part.every((p, i) => isSubtree(p, whole[i]));
  if (part && typeof part === 'object') {
    if (!whole || typeof whole !== 'object') return false;
    // managedFields keep a subset of the entries (the Apply ones), checked separately.
    return Object.entries(part).every(
      ([k, v]) => k in whole && (k === 'managedFields' || isSubtree(v, (whole as Record<string, unknown>)[k])),
    );
  }
  return false;
}
