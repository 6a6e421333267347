// One truth for what the webhook knows about a namespace (issue 11): the watch cache's view (the
// real ClusterCache, Reflectors and stores, fed through in-memory list/watch sources) and render's
// view (src/render-context.ts over the same objects as input documents) must give the same answers,
// and so the same Service decisions. Both are built by src/core/namespace-view.ts; this proves the
// two feeds (cache indexes vs input lists) do not bend it.
//
// Cases per run (fast-check numRuns): generated namespaces of workloads, Pods, Services, Ingresses,
// each compared once as listed and once more after watch events change it (the cache's memoized
// view must follow) ................................................................... 120
import fc from 'fast-check';
import type { V1Ingress, V1ObjectMeta, V1PodSpec, V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { cacheAdmissionContext } from '../../src/cluster/admission-context.js';
import { WEBHOOK_RESOURCES } from '../../src/cluster/cache.js';
import type { AdmissionContext } from '../../src/core/context.js';
import { canonicalLabels } from '../../src/core/labels.js';
import { mutatePod, type PodLike } from '../../src/core/pod.js';
import { unmanagedBecause } from '../../src/core/workloads.js';
import { mutateService } from '../../src/core/service.js';
import { inputContext, type InputObject } from '../../src/render-context.js';
import { admit } from '../../src/core/admission.js';
import { devContext } from '../../src/webhook/dev-context.js';
import { DNS_IP, GATEWAY_IP, review, staticContext } from '../lib/admission.js';
import { startCache, World, type Obj } from './helpers/fake-cluster.js';

const NS = 'shop';
const INJECT = 'wpgw.io/inject';

// ---- arbitraries --------------------------------------------------------------------------------

const labelSet = fc.dictionary(fc.constantFrom('app', 'tier'), fc.constantFrom('a', 'b', 'wpgw'), {
  minKeys: 1,
  maxKeys: 2,
});

const windowsWays: Record<string, Partial<V1PodSpec>> = {
  none: {},
  os: { os: { name: 'windows' } },
  nodeSelector: { nodeSelector: { 'kubernetes.io/os': 'windows' } },
  linuxNodeSelector: { nodeSelector: { 'kubernetes.io/os': 'linux' } },
  affinity: {
    affinity: {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['windows'] }] }],
        },
      },
    },
  },
  windowsRuntimeClass: { runtimeClassName: 'win' },
  linuxRuntimeClass: { runtimeClassName: 'lin' },
  unknownRuntimeClass: { runtimeClassName: 'nope' },
};

/** A pod template (or a bare Pod's metadata + spec) as users write them. */
const templateArb = fc
  .record({
    labels: labelSet,
    way: fc.constantFrom(...Object.keys(windowsWays)),
    inject: fc.constantFrom('none', 'label-true', 'label-false', 'annotation-true', 'annotation-false'),
    hostNetwork: fc.constantFrom(false, false, false, true),
  })
  .map(({ labels, way, inject, hostNetwork }) => {
    const [where, value] = inject.split('-') as ['none' | 'label' | 'annotation', string | undefined];
    const metadata: V1ObjectMeta = {
      labels: where === 'label' ? { ...labels, [INJECT]: value! } : labels,
      ...(where === 'annotation' ? { annotations: { [INJECT]: value! } } : {}),
    };
    const spec: V1PodSpec = {
      containers: [{ name: 'app', image: 'example/app' }],
      ...windowsWays[way],
      ...(hostNetwork ? { hostNetwork: true } : {}),
    };
    return { metadata, spec };
  });

type Template = { metadata: V1ObjectMeta; spec: V1PodSpec };

const workloadKinds = ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob', 'Rollout'] as const;
const apiVersionOf = (kind: string) =>
  kind === 'Rollout' ? 'argoproj.io/v1alpha1' : kind === 'Job' || kind === 'CronJob' ? 'batch/v1' : 'apps/v1';

function workload(kind: string, name: string, template: Template, owner?: { kind: string; name: string }): Obj {
  const spec =
    kind === 'CronJob'
      ? { schedule: '* * * * *', jobTemplate: { spec: { template } } }
      : { selector: { matchLabels: template.metadata.labels }, template };
  const ownerReferences = owner
    ? [
        {
          apiVersion: apiVersionOf(owner.kind),
          kind: owner.kind,
          name: owner.name,
          uid: `uid-${owner.name}`,
          controller: true,
        },
      ]
    : undefined;
  return {
    apiVersion: apiVersionOf(kind),
    kind,
    metadata: { name, namespace: NS, resourceVersion: '1', ...(ownerReferences ? { ownerReferences } : {}) },
    spec,
  };
}

const workloadsArb = fc
  .array(
    fc.record({
      kind: fc.constantFrom(...workloadKinds),
      template: templateArb,
      ownedReplicaSet: fc.constantFrom('none', 'none', 'owned', 'orphan'),
    }),
    { maxLength: 6 },
  )
  .map((list) =>
    list.flatMap(({ kind, template, ownedReplicaSet }, i) => {
      const name = `${kind.toLowerCase()}-${i}`;
      const out = [workload(kind, name, template)];
      // A Deployment's ReplicaSet (skipped: named by its owner) or one whose owner is not there (counts itself).
      if (ownedReplicaSet !== 'none') {
        const rsTemplate = {
          ...template,
          metadata: { ...template.metadata, labels: { ...template.metadata.labels, 'pod-template-hash': `h${i}` } },
        };
        out.push(
          workload('ReplicaSet', `${name}-h${i}`, rsTemplate, {
            kind: ownedReplicaSet === 'owned' ? kind : 'Deployment',
            name: ownedReplicaSet === 'owned' ? name : `gone-${i}`,
          }),
        );
      }
      return out;
    }),
  );

const serviceNames = ['web', 'web-app', 'api', 'api-app', 'wpgw', 'wpgw-dns', 'billing'];
const gatewaySelectors: Array<Record<string, string>> = [
  { 'wpgw.io/gateway': NS },
  { app: 'wpgw' },
  { 'wpgw.io/gateway': NS, extra: 'y' },
  { 'wpgw.io/gateway': 'other' },
];

const serviceArb = fc.record({
  name: fc.constantFrom(...serviceNames),
  selector: fc.oneof(
    { arbitrary: labelSet, weight: 4 },
    { arbitrary: fc.constantFrom(...gatewaySelectors), weight: 2 },
    { arbitrary: fc.constant(undefined), weight: 1 },
  ),
  ports: fc.uniqueArray(
    fc.record({
      port: fc.constantFrom(80, 443, 8080, 15021),
      targetPort: fc.oneof(fc.integer({ min: 20000, max: 20010 }), fc.constant(8080), fc.constant('http')),
    }),
    { selector: (p) => p.port, minLength: 1, maxLength: 3 },
  ),
  recorded: fc.constantFrom('none', 'none', 'valid', 'unparsable'),
  ours: fc.constantFrom(false, false, false, true),
  clusterIP: fc.constantFrom(undefined, '10.96.0.20', 'None'),
});

function serviceObject(s: {
  name: string;
  selector: Record<string, string> | undefined;
  ports: Array<{ port: number; targetPort: number | string }>;
  recorded: string;
  ours: boolean;
  clusterIP: string | undefined;
}): Obj {
  const annotations =
    s.recorded === 'valid'
      ? {
          'wpgw.io/original': JSON.stringify({
            selector: { app: 'a' },
            ports: s.ports.map((p) => ({ port: p.port, targetPort: 8080 })),
          }),
        }
      : s.recorded === 'unparsable'
        ? { 'wpgw.io/original': '{}' }
        : undefined;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: s.name,
      namespace: NS,
      resourceVersion: '1',
      ...(s.ours ? { labels: { 'app.kubernetes.io/managed-by': 'wpgw' } } : {}),
      ...(annotations ? { annotations } : {}),
    },
    // A valid record is what the webhook leaves: the Service then selects the gateway pods.
    spec: {
      ...(s.recorded === 'valid'
        ? { selector: { 'wpgw.io/gateway': NS } }
        : s.selector
          ? { selector: s.selector }
          : {}),
      ports: s.ports,
      ...(s.clusterIP ? { clusterIP: s.clusterIP } : {}),
    },
  };
}

const namespaceArb = fc.constantFrom<Record<string, string> | undefined>(
  undefined,
  { 'wpgw.io/resolver': 'dnsConfig' },
  { 'wpgw.io/gateway-replicas': '3' },
);

const ingressArb = fc.constantFrom(...serviceNames).map((backend): Obj => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'Ingress',
  metadata: { name: `ing-${backend}`, namespace: NS, resourceVersion: '1' },
  spec: {
    ingressClassName: 'nginx',
    rules: [
      {
        http: {
          paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: backend, port: { number: 80 } } } }],
        },
      },
    ],
  },
}));

const runtimeClasses: Obj[] = [
  {
    apiVersion: 'node.k8s.io/v1',
    kind: 'RuntimeClass',
    metadata: { name: 'win', resourceVersion: '1' },
    handler: 'x',
    scheduling: { nodeSelector: { 'kubernetes.io/os': 'windows' } },
  },
  {
    apiVersion: 'node.k8s.io/v1',
    kind: 'RuntimeClass',
    metadata: { name: 'lin', resourceVersion: '1' },
    handler: 'x',
    scheduling: { nodeSelector: { 'kubernetes.io/os': 'linux' } },
  },
];

/** A Windows workload elsewhere: neither view may let it leak into NS. */
const elsewhere: Obj = {
  ...workload('Deployment', 'other-win', {
    metadata: { labels: { app: 'a' } },
    spec: { containers: [{ name: 'c', image: 'i' }], os: { name: 'windows' } },
  }),
  metadata: { name: 'other-win', namespace: 'other', resourceVersion: '1' },
};

// ---- the two views --------------------------------------------------------------------------------

/** Pods as the API server stores them after the webhook admitted them (the real mutatePod). */
function admittedPods(pods: Template[]): Obj[] {
  const admission = staticContext({ runtimeClasses: { win: 'windows', lin: 'linux' } });
  return pods.map((p, i) => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { ...p.metadata, name: `pod-${i}`, namespace: NS },
      spec: p.spec,
    };
    const outcome = mutatePod({ pod, namespace: NS, ctx: admission });
    const stored = outcome.action === 'mutate' ? outcome.pod : pod;
    return {
      ...stored,
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { ...stored.metadata, name: `pod-${i}`, namespace: NS, resourceVersion: '1' },
    } as Obj;
  });
}

/** Every answer the core reads for NS, in comparable form. */
function answers(ctx: AdmissionContext, services: readonly V1Service[], pods: readonly Obj[]) {
  const names = [...serviceNames, 'fresh'];
  const sortNum = (s: ReadonlySet<number>) => [...s].sort((a, b) => a - b);
  return {
    windowsLabelSets: ctx.windowsLabelSets(NS).map(canonicalLabels).sort(),
    unmanaged: ctx.unmanagedWorkloads(NS),
    taken: names.map((n) => sortNum(ctx.takenInboundPorts(NS, n))),
    gatewaySelecting: names.map((n) => sortNum(ctx.gatewaySelectingServicePorts(NS, n))),
    owners: names.map((n) => ctx.serviceOwner(NS, n) ?? '-'),
    annotations: ctx.namespaceAnnotations(NS),
    runtimeClassOS: ['win', 'lin', 'nope'].map((n) => ctx.runtimeClassOS(n) ?? '-'),
    ingresses: ctx
      .ingresses(NS)
      .map((i: V1Ingress) => i.metadata?.name)
      .sort(),
    // The decisions these answers feed: every Service of NS, admitted again.
    decisions: services.map((s) => JSON.stringify(mutateService(s, NS, ctx))),
    repointed: ctx.repointedServices?.(NS),
    // Pods wpgw leaves unmanaged (their admission reads no address): the same outcome and warnings.
    unmanagedPods: pods
      .filter((p) => unmanagedBecause(p as PodLike, (n) => ctx.runtimeClassOS(n)) !== undefined)
      .map((p) => JSON.stringify(mutatePod({ pod: p as PodLike, namespace: NS, ctx }))),
  };
}

describe('the cache view and the render view of a namespace agree (one AdmissionContext)', () => {
  it('property: same answers and same Service decisions on generated namespaces', async () => {
    const seen = { windows: 0, unmanaged: 0, taken: 0, selecting: 0, repointed: 0, reachedPods: 0, runs: 0 };
    await fc.assert(
      fc.asyncProperty(
        namespaceArb,
        workloadsArb,
        fc.array(templateArb, { maxLength: 5 }),
        fc.uniqueArray(serviceArb, { selector: (s) => s.name, maxLength: 5 }),
        fc.array(ingressArb, { maxLength: 2 }),
        fc.record({
          kind: fc.constantFrom(...workloadKinds),
          template: templateArb,
          service: serviceArb,
          dropFirstService: fc.boolean(),
        }),
        async (nsAnnotations, workloads, podTemplates, services, ingresses, later) => {
          const namespace: Obj = {
            apiVersion: 'v1',
            kind: 'Namespace',
            metadata: {
              name: NS,
              resourceVersion: '1',
              labels: { 'wpgw.io/inject': 'enabled' },
              ...(nsAnnotations ? { annotations: nsAnnotations } : {}),
            },
          };
          const svcObjects = services.map(serviceObject);
          const ingressObjects = ingresses.map((o, i): Obj => ({
            ...o,
            metadata: { ...o.metadata, name: `${o.metadata?.name}-${i}` },
          }));
          const common = [namespace, ...runtimeClasses, ...workloads, ...svcObjects, ...ingressObjects, elsewhere];

          // The cluster after admission: the cache watches managed Pods only (by label), like the webhook's.
          const world = new World();
          world.objects = structuredClone([...common, ...admittedPods(podTemplates)]);
          const cacheCtx = cacheAdmissionContext(await startCache(world, WEBHOOK_RESOURCES));

          // Render's input: the Pods as written, before admission.
          const rawPods = podTemplates.map((p, i): Obj => ({
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { ...p.metadata, name: `pod-${i}`, namespace: NS },
            spec: p.spec,
          }));
          const docs = structuredClone([...common, ...rawPods]) as InputObject[];
          const renderCtx = inputContext(docs, {
            gatewayIP: GATEWAY_IP,
            dnsIP: DNS_IP,
            defaultNamespace: 'default',
            clusterDomain: 'cluster.local',
          }).ctx;

          const fromCache = answers(cacheCtx, svcObjects as V1Service[], rawPods);
          const fromRender = answers(renderCtx, svcObjects as V1Service[], rawPods);
          expect(fromRender).toEqual(fromCache);

          // Then the namespace changes under the memoized cache view (watch events): a workload
          // added, a Service added or replaced, maybe one deleted; the cache must answer as
          // render does over the changed objects.
          const lateWorkload = workload(later.kind, 'late', later.template);
          const lateService = serviceObject(later.service);
          const dropped =
            later.dropFirstService && svcObjects[0] && svcObjects[0].metadata?.name !== lateService.metadata?.name
              ? svcObjects[0]
              : undefined;
          world.emit('ADDED', structuredClone(lateWorkload));
          world.emit(
            svcObjects.some((o) => o.metadata?.name === lateService.metadata?.name) ? 'MODIFIED' : 'ADDED',
            structuredClone(lateService),
          );
          if (dropped) world.emit('DELETED', structuredClone(dropped));
          const svcsAfter = [
            ...svcObjects.filter((o) => o !== dropped && o.metadata?.name !== lateService.metadata?.name),
            lateService,
          ];
          const docsAfter = structuredClone([
            ...common.filter((o) => !svcObjects.includes(o)),
            ...svcsAfter,
            lateWorkload,
            ...rawPods,
          ]) as InputObject[];
          const renderAfter = inputContext(docsAfter, {
            gatewayIP: GATEWAY_IP,
            dnsIP: DNS_IP,
            defaultNamespace: 'default',
            clusterDomain: 'cluster.local',
          }).ctx;
          expect(answers(renderAfter, svcsAfter as V1Service[], rawPods)).toEqual(
            answers(cacheCtx, svcsAfter as V1Service[], rawPods),
          );

          seen.runs++;
          if (fromCache.windowsLabelSets.length > 0) seen.windows++;
          if (fromCache.unmanaged.length > 0) seen.unmanaged++;
          if (fromCache.taken.some((t) => t.length > 0)) seen.taken++;
          if (fromCache.gatewaySelecting.some((t) => t.length > 0)) seen.selecting++;
          if (fromCache.decisions.some((d) => d.includes('"reason":"repointed"'))) seen.repointed++;
          if (fromCache.unmanagedPods.some((d) => d.includes('yet the re-pointed Service'))) seen.reachedPods++;
        },
      ),
      { numRuns: 120 },
    );
    // Not vacuous: each kind of answer was exercised. The rarest (reachedPods) averages ~14 of 120
    // runs (10-19 measured), so a floor of 3 fails only when a kind stops being generated, not by chance.
    expect(seen.runs).toBe(120);
    for (const k of ['windows', 'unmanaged', 'taken', 'selecting', 'repointed', 'reachedPods'] as const)
      expect(seen[k], k).toBeGreaterThanOrEqual(3);
  }, 120_000);
});

describe('the disagreements issue 11 names, in both views', () => {
  const tpl = (labels: Record<string, string>, spec: Partial<V1PodSpec> = {}): Template => ({
    metadata: { labels },
    spec: { containers: [{ name: 'c', image: 'i' }], ...spec },
  });
  const gw = { 'wpgw.io/gateway': NS };
  const objects: Obj[] = [
    // opted in: the webhook only admits there, and its caches keep workloads only of namespaces wpgw works in
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: NS, resourceVersion: '1', labels: { 'wpgw.io/inject': 'enabled' } },
    },
    workload('Deployment', 'win-opted-out', tpl({ app: 'out', [INJECT]: 'false' }, { os: { name: 'windows' } })),
    workload('Deployment', 'linux-opted-in', tpl({ app: 'in', [INJECT]: 'true' })),
    workload('Deployment', 'win-host', tpl({ app: 'host' }, { os: { name: 'windows' }, hostNetwork: true })),
    serviceObject({
      name: 'web',
      selector: gw,
      ports: [{ port: 8080, targetPort: 20001 }],
      recorded: 'valid',
      ours: false,
      clusterIP: undefined,
    }),
    serviceObject({
      name: 'by-app',
      selector: { app: 'wpgw' },
      ports: [{ port: 9090, targetPort: 15021 }],
      recorded: 'none',
      ours: false,
      clusterIP: undefined,
    }),
    serviceObject({
      name: 'left',
      selector: { app: 'x' },
      ports: [{ port: 7070, targetPort: 20002 }],
      recorded: 'unparsable',
      ours: false,
      clusterIP: undefined,
    }),
  ];

  it('opted-out Windows templates are not Windows, opted-in ones are, host-network ones are unmanaged; gateway selection is by the gateway pods labels', async () => {
    const world = new World();
    world.objects = structuredClone(objects);
    const views = {
      cache: cacheAdmissionContext(await startCache(world, WEBHOOK_RESOURCES)),
      render: inputContext(structuredClone(objects) as InputObject[], {
        gatewayIP: GATEWAY_IP,
        dnsIP: DNS_IP,
        defaultNamespace: 'default',
        clusterDomain: 'cluster.local',
      }).ctx,
    };
    for (const [which, ctx] of Object.entries(views)) {
      expect(ctx.windowsLabelSets(NS), which).toEqual([{ app: 'in', [INJECT]: 'true' }]);
      expect(
        ctx.unmanagedWorkloads(NS).map((w) => `${w.workload} (${w.why})`),
        which,
      ).toEqual(['Deployment/win-host (host network)', 'Deployment/win-opted-out (opted out)']);
      // `web` (re-pointed) and `by-app` (app=wpgw is a gateway pod label) select the gateway pods; `left` does not.
      expect([...ctx.gatewaySelectingServicePorts(NS, 'new')].sort(), which).toEqual([8080, 9090]);
      // Any recorded original holds its targetPorts, even one that no longer parses.
      expect([...ctx.takenInboundPorts(NS, 'new')].sort(), which).toEqual([20001, 20002]);
      expect([...ctx.takenInboundPorts(NS, 'web')], which).toEqual([20002]);
    }
  });
});

describe('dev mode (wpgw webhook --dev) answers from what it admitted, through the same view', () => {
  it('re-points a Service posted after its Windows pod, gives a second Service other gateway pod ports, and knows who owns <name>-app', () => {
    const dev = devContext(GATEWAY_IP, DNS_IP);
    const post = (kind: 'Pod' | 'Service', object: Record<string, unknown>) => {
      const body = review({ kind, namespace: NS, object });
      const result = admit(body, dev, { clusterDomain: 'cluster.local' });
      dev.remember(body, result);
      return result;
    };
    const pod = post('Pod', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'legacy-1', namespace: NS, labels: { app: 'legacy' } },
      spec: { containers: [{ name: 'c', image: 'i' }], os: { name: 'windows' } },
    });
    expect(pod.ok && pod.decision.reason).toBe('injected');
    expect(dev.windowsLabelSets(NS).map((l) => l.app)).toEqual(['legacy']);
    const ports = [{ port: 8080, targetPort: 8080 }];
    const first = post('Service', {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'legacy', namespace: NS },
      spec: { selector: { app: 'legacy' }, ports },
    });
    const second = post('Service', {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'legacy2', namespace: NS },
      spec: { selector: { app: 'legacy' }, ports },
    });
    expect(first.ok && first.decision.reason).toBe('repointed');
    expect(second.ok && second.decision.reason).toBe('repointed');
    const taken = [...dev.takenInboundPorts(NS, 'none')];
    expect(taken).toHaveLength(2);
    expect(new Set(taken).size).toBe(2);
    // A user's own legacy3-app blocks re-pointing legacy3, as with the real caches.
    post('Service', {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'legacy3-app', namespace: NS },
      spec: { selector: { app: 'other' }, ports },
    });
    expect(dev.serviceOwner(NS, 'legacy3-app')).toBe('user');
    const third = post('Service', {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'legacy3', namespace: NS },
      spec: { selector: { app: 'legacy' }, ports },
    });
    expect(third.ok && third.decision.reason).toBe('app_service_taken');
  });
});
