import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { cacheAdmissionContext } from '../../src/cluster/admission-context.js';
import { registerCacheMetrics } from '../../src/cluster/metrics.js';
import { CONTROLLER_RESOURCES, WEBHOOK_RESOURCES, watchSpecs } from '../../src/cluster/cache.js';
import { isWindowsPodSpec, podTemplateOf } from '../../src/cluster/windows.js';
import { runCache, startCache, World, type Obj } from './helpers/fake-cluster.js';

const OURS = { 'app.kubernetes.io/managed-by': 'wpgw' };
/** An opted-in namespace (the cache keeps Services and workloads of those only). */
const ns = (name: string, extra: Partial<Obj['metadata']> = {}): Obj => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, resourceVersion: '1', labels: { 'wpgw.io/inject': 'enabled' }, ...extra },
});
const svc = (
  name: string,
  spec: Record<string, unknown>,
  meta: Partial<NonNullable<Obj['metadata']>> = {},
  namespace = 'shop',
): Obj => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace, resourceVersion: '1', ...meta },
  spec,
});
const workload = (
  kind: string,
  name: string,
  podSpec: Record<string, unknown>,
  labels: Record<string, string>,
  namespace = 'shop',
): Obj => {
  const template = { metadata: { labels }, spec: { containers: [{ name: 'c', image: 'i' }], ...podSpec } };
  return {
    apiVersion: kind === 'Job' || kind === 'CronJob' ? 'batch/v1' : 'apps/v1',
    kind,
    metadata: { name, namespace, resourceVersion: '1' },
    spec:
      kind === 'CronJob'
        ? { schedule: '* * * * *', jobTemplate: { spec: { template } } }
        : { selector: { matchLabels: labels }, template },
  };
};
const WIN = { nodeSelector: { 'kubernetes.io/os': 'windows' } };

describe('watchSpecs', () => {
  it('the webhook set watches only what admission needs, managed pods by label', () => {
    const specs = watchSpecs(WEBHOOK_RESOURCES);
    expect(specs.map((s) => s.name)).toEqual([
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
    ]);
    expect(specs.find((s) => s.name === 'managedPods')?.labelSelector).toBe('wpgw.io/managed');
  });

  it('the controller set adds label-selected watches of its outputs, reusing full Service/Deployment watches', () => {
    const managed = watchSpecs(CONTROLLER_RESOURCES).filter((s) => s.resource === 'managedOutputs');
    expect(managed.map((s) => s.name)).toEqual([
      'managed:serviceaccounts',
      'managed:configmaps',
      'managed:poddisruptionbudgets',
      'managed:networkpolicies',
      'managed:gateways',
      // VirtualServices, DestinationRules, AuthorizationPolicies are watched in full (users' own shape the desired state)
      'managed:serviceentries',
    ]);
    expect(managed.every((s) => s.labelSelector === 'app.kubernetes.io/managed-by=wpgw')).toBe(true);
    expect(managed.find((s) => s.name === 'managed:gateways')?.info.crd).toBe(true);
  });
});

describe('ClusterCache', () => {
  it('serves managed objects of every managed kind, only when labelled', async () => {
    const w = new World();
    w.objects = [
      ns('shop'),
      svc('wpgw', {}, { labels: OURS }),
      svc('legacy', {}),
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'wpgw', namespace: 'shop', labels: OURS, resourceVersion: '1' },
      },
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'user', namespace: 'shop', resourceVersion: '1' },
      },
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'wpgw-dns', namespace: 'shop', labels: OURS, resourceVersion: '1' },
      },
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'user-cm', namespace: 'shop', resourceVersion: '1' } },
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'Gateway',
        metadata: { name: 'wpgw', namespace: 'shop', labels: OURS, resourceVersion: '1' },
      },
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'left', namespace: 'old', labels: OURS, resourceVersion: '1' },
      },
    ];
    const c = await startCache(w, CONTROLLER_RESOURCES);
    expect(
      c
        .managedObjects('shop')
        .map((o) => `${o.kind}/${o.metadata.name}`)
        .sort(),
    ).toEqual(['ConfigMap/wpgw-dns', 'Deployment/wpgw', 'Gateway/wpgw', 'Service/wpgw']);
    expect(c.namespacesWithManagedObjects().sort()).toEqual(['old', 'shop']);
    expect(c.missingKinds()).toEqual([]);
  });

  it("serves a namespace's VirtualServices and DestinationRules in full, and only wpgw's as managed objects", async () => {
    const w = new World();
    w.objects = [
      ns('shop'),
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: 'wpgw-in-legacy', namespace: 'shop', labels: OURS, resourceVersion: '1' },
      },
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: 'legacy-routes', namespace: 'shop', resourceVersion: '1' },
      },
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'DestinationRule',
        metadata: { name: 'legacy-app', namespace: 'shop', resourceVersion: '1' },
      },
    ];
    const c = await startCache(w, CONTROLLER_RESOURCES);
    const r = c.istioObjects('shop');
    expect(r.virtualServices.map((o) => o.metadata.name).sort()).toEqual(['legacy-routes', 'wpgw-in-legacy']);
    expect(r.destinationRules.map((o) => o.metadata.name)).toEqual(['legacy-app']);
    expect(c.managedObjects('shop').map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'VirtualService/wpgw-in-legacy',
    ]);
  });

  it('reports a missing CRD kind without blocking sync', async () => {
    const w = new World();
    w.objects = [ns('shop')];
    w.missing.add('Gateway');
    w.missing.add('VirtualService');
    const c = await startCache(w, CONTROLLER_RESOURCES);
    expect(c.synced()).toBe(true);
    expect(c.isKindMissing('networking.istio.io/v1', 'Gateway')).toBe(true);
    expect(c.isKindMissing('v1', 'ConfigMap')).toBe(false);
    expect(c.isKindMissing('networking.istio.io/v1', 'VirtualService')).toBe(true); // its full watch
    expect(c.missingKinds().sort()).toEqual([
      'networking.istio.io/v1 Gateway',
      'networking.istio.io/v1 VirtualService',
    ]);
  });

  it('exports watch metrics for the webhook', async () => {
    const w = new World();
    w.objects = [ns('shop')];
    w.missing.add('Gateway');
    const c = await startCache(w, ['namespaces', 'managedOutputs']);
    const registry = new Registry();
    registerCacheMetrics(registry, c);
    w.emit('ADDED', ns('new'));
    const text = await registry.metrics();
    expect(text).toContain('wpgw_webhook_watch_events_total{resource="namespaces",type="add"} 1');
    expect(text).toContain('wpgw_webhook_cache_synced 1');
    expect(text).toContain('wpgw_webhook_cache_missing_kinds 1');
  });

  it('refuses reads of resources it does not watch (a wiring bug, not an empty answer)', async () => {
    const c = await startCache(new World(), ['namespaces']);
    expect(() => c.services('shop')).toThrow(/not watched/);
  });

  it('bumps the per-namespace generation on changes and emits events', async () => {
    const w = new World();
    w.objects = [ns('shop'), ns('other')];
    const c = await startCache(w, ['namespaces', 'services']);
    const seen: string[] = [];
    c.on((e) => seen.push(`${e.resource}:${e.type}:${e.obj.metadata?.name}`));
    const g0 = c.generation('shop');
    const gOther = c.generation('other');
    w.emit('ADDED', svc('a', {}));
    expect(c.generation('shop')).toBe(g0 + 1);
    expect(c.generation('other')).toBe(gOther);
    expect(seen).toEqual(['services:add:a']);
    expect(c.eventCount()).toBe(3);
  });
});

describe('cacheAdmissionContext', () => {
  async function ctx(objects: Obj[]) {
    const w = new World();
    w.objects = objects;
    const c = await startCache(w, WEBHOOK_RESOURCES);
    return { w, c, ctx: cacheAdmissionContext(c) };
  }

  it('answers addresses, runtime class OS and namespace annotations', async () => {
    const { ctx: x } = await ctx([
      ns('shop', { annotations: { 'wpgw.io/resolver': 'dnsConfig' } }),
      svc('wpgw', { clusterIP: '10.96.0.10' }, { labels: OURS }),
      svc('wpgw-dns', { clusterIP: '10.96.0.53' }, { labels: OURS }),
      svc('wpgw', { clusterIP: 'None' }, {}, 'headless'),
      {
        apiVersion: 'node.k8s.io/v1',
        kind: 'RuntimeClass',
        metadata: { name: 'win', resourceVersion: '1' },
        handler: 'x',
        scheduling: { nodeSelector: { 'kubernetes.io/os': 'windows' } },
      },
    ]);
    expect(x.gatewayIP('shop')).toBe('10.96.0.10');
    expect(x.dnsIP('shop')).toBe('10.96.0.53');
    expect(x.gatewayIP('headless')).toBeUndefined();
    expect(x.gatewayIP('nowhere')).toBeUndefined();
    expect(x.runtimeClassOS('win')).toBe('windows');
    expect(x.runtimeClassOS('nope')).toBeUndefined();
    expect(x.namespaceAnnotations('shop')).toEqual({ 'wpgw.io/resolver': 'dnsConfig' });
    expect(x.namespaceAnnotations('nowhere')).toEqual({});
  });

  it('collects Windows label sets from managed pods and Windows workload templates of the namespace', async () => {
    const { ctx: x } = await ctx([
      ns('shop'),
      {
        apiVersion: 'node.k8s.io/v1',
        kind: 'RuntimeClass',
        metadata: { name: 'win', resourceVersion: '1' },
        handler: 'x',
        scheduling: { nodeSelector: { 'kubernetes.io/os': 'windows' } },
      },
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: 'p1',
          namespace: 'shop',
          resourceVersion: '1',
          labels: { 'wpgw.io/managed': 'true', app: 'legacy' },
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: 'p2',
          namespace: 'shop',
          resourceVersion: '1',
          labels: { 'wpgw.io/managed': 'true', app: 'legacy' },
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'linux', namespace: 'shop', resourceVersion: '1', labels: { app: 'nginx' } },
      },
      workload('Deployment', 'd', WIN, { app: 'deploy' }),
      workload('StatefulSet', 's', { os: { name: 'windows' } }, { app: 'sts' }),
      workload('DaemonSet', 'ds', { runtimeClassName: 'win' }, { app: 'ds' }),
      workload(
        'CronJob',
        'cj',
        {
          affinity: {
            nodeAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: {
                nodeSelectorTerms: [
                  { matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['windows'] }] },
                ],
              },
            },
          },
        },
        { app: 'cron' },
      ),
      workload('Deployment', 'linux', {}, { app: 'linux' }),
      workload('Deployment', 'elsewhere', WIN, { app: 'elsewhere' }, 'other'),
    ]);
    const sets = x
      .windowsLabelSets('shop')
      .map((l) => l.app)
      .sort();
    expect(sets).toEqual(['cron', 'deploy', 'ds', 'legacy', 'sts']);
  });

  it('counts Argo Rollout templates as Windows workloads; without the Rollout CRD it starts, reports nothing missing, and picks Rollouts up once served', async () => {
    const rollout = (name: string, labels: Record<string, string>): Obj => ({
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Rollout',
      metadata: { name, namespace: 'shop', resourceVersion: '1' },
      spec: {
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: { containers: [{ name: 'c', image: 'i' }], ...WIN } },
      },
    });
    const w = new World();
    w.objects = [ns('shop'), rollout('web', { app: 'web' })];
    w.missing.add('Rollout');
    const c = await startCache(w, WEBHOOK_RESOURCES);
    const x = cacheAdmissionContext(c);
    expect(c.synced()).toBe(true);
    expect(c.missingKinds()).toEqual([]);
    expect(x.windowsLabelSets('shop')).toEqual([]);
    // The CRD is installed: the next re-check (backoff maxMs, 20 ms here) lists Rollouts.
    w.missing.delete('Rollout');
    const deadline = Date.now() + 5000;
    while (x.windowsLabelSets('shop').length === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    expect(x.windowsLabelSets('shop')).toEqual([{ app: 'web' }]);
  });

  it('an optional kind the RBAC does not grant (403) does not block sync; a required one does', async () => {
    const w = new World();
    w.objects = [ns('shop')];
    w.forbidden.add('Rollout');
    w.forbidden.add('Ingress');
    const c = await startCache(w, WEBHOOK_RESOURCES);
    expect(c.synced()).toBe(true);
    const w2 = new World();
    w2.objects = [ns('shop')];
    w2.forbidden.add('Deployment');
    const c2 = runCache(w2, WEBHOOK_RESOURCES);
    await new Promise((r) => setTimeout(r, 100));
    expect(c2.synced()).toBe(false);
  });

  it('memoizes label sets per namespace and recomputes after a change there', async () => {
    const { w, ctx: x } = await ctx([ns('shop'), workload('Deployment', 'd', WIN, { app: 'a' })]);
    const first = x.windowsLabelSets('shop');
    expect(x.windowsLabelSets('shop')).toBe(first);
    w.emit('ADDED', workload('Deployment', 'e', WIN, { app: 'b' }));
    expect(
      x
        .windowsLabelSets('shop')
        .map((l) => l.app)
        .sort(),
    ).toEqual(['a', 'b']);
  });

  it('computes taken inbound ports and gateway-selecting Service ports, excluding the named Service', async () => {
    const gw = { 'wpgw.io/gateway': 'shop' };
    const { ctx: x } = await ctx([
      ns('shop'),
      svc(
        'legacy',
        {
          selector: gw,
          ports: [
            { port: 8080, targetPort: 30000 },
            { port: 8443, targetPort: 30001 },
          ],
        },
        { annotations: { 'wpgw.io/original': '{}' } },
      ),
      svc(
        'billing',
        { selector: gw, ports: [{ port: 80, targetPort: 30002 }] },
        { annotations: { 'wpgw.io/original': '{}' } },
      ),
      svc(
        'named',
        { selector: { app: 'x' }, ports: [{ port: 81, targetPort: 'http' }] },
        { annotations: { 'wpgw.io/original': '{}' } },
      ),
      svc(
        'wpgw',
        {
          selector: gw,
          ports: [
            { port: 80, targetPort: 20000 },
            { port: 15021, targetPort: 15021 },
          ],
        },
        { labels: OURS },
      ),
      svc('superset', { selector: { ...gw, extra: 'y' }, ports: [{ port: 9999 }] }),
      svc('plain', { selector: { app: 'legacy' }, ports: [{ port: 7000, targetPort: 7000 }] }),
    ]);
    expect([...x.takenInboundPorts('shop', 'legacy')].sort()).toEqual([30002]);
    expect([...x.takenInboundPorts('shop', 'new')].sort()).toEqual([30000, 30001, 30002]);
    expect([...x.gatewaySelectingServicePorts('shop', 'legacy')].sort((a, b) => a - b)).toEqual([80, 15021]);
    expect([...x.gatewaySelectingServicePorts('shop', 'x')].sort((a, b) => a - b)).toEqual([80, 8080, 8443, 15021]);
  });

  it('stays flat: answers for one namespace do not depend on the size of others', async () => {
    const objects: Obj[] = [ns('shop'), svc('wpgw', { clusterIP: '10.0.0.1' })];
    for (let i = 0; i < 3000; i++)
      objects.push(
        svc(
          `s${i}`,
          { selector: { app: 'x' }, ports: [{ port: 80 }] },
          { annotations: { 'wpgw.io/original': '{}' } },
          `ns${i % 300}`,
        ),
      );
    const { ctx: x } = await ctx(objects);
    const t0 = performance.now();
    for (let i = 0; i < 1000; i++) x.takenInboundPorts('shop', 'a');
    expect(performance.now() - t0).toBeLessThan(200);
  });
});

describe('isWindowsPodSpec / podTemplateOf', () => {
  it('detects the four kinds of Windows evidence and nothing else', () => {
    expect(isWindowsPodSpec({ containers: [], os: { name: 'windows' } })).toBe(true);
    expect(isWindowsPodSpec({ containers: [], nodeSelector: { 'kubernetes.io/os': 'windows' } })).toBe(true);
    expect(
      isWindowsPodSpec({ containers: [], runtimeClassName: 'w' }, (n) => (n === 'w' ? 'windows' : undefined)),
    ).toBe(true);
    const term = (values: string[]) => ({ matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values }] });
    const aff = (terms: ReturnType<typeof term>[]) => ({
      containers: [],
      affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } } },
    });
    expect(isWindowsPodSpec(aff([term(['windows'])]))).toBe(true);
    expect(isWindowsPodSpec(aff([term(['windows']), term(['linux'])]))).toBe(false);
    expect(isWindowsPodSpec(aff([term(['windows', 'linux'])]))).toBe(false);
    expect(isWindowsPodSpec({ containers: [], runtimeClassName: 'w' })).toBe(false);
    expect(isWindowsPodSpec({ containers: [], nodeSelector: { 'kubernetes.io/os': 'linux' } })).toBe(false);
    expect(isWindowsPodSpec(undefined)).toBe(false);
  });

  it('finds templates of workloads and CronJobs', () => {
    expect(podTemplateOf({ spec: { template: { metadata: { labels: { a: '1' } } } } })?.metadata?.labels).toEqual({
      a: '1',
    });
    expect(
      podTemplateOf({ spec: { jobTemplate: { spec: { template: { metadata: { labels: { b: '1' } } } } } } })?.metadata
        ?.labels,
    ).toEqual({ b: '1' });
    expect(podTemplateOf({})).toBeUndefined();
  });
});
