import {
  ApiException,
  type V1Deployment,
  type V1Ingress,
  type V1Namespace,
  type V1Pod,
  type V1RuntimeClass,
  type V1Service,
} from '@kubernetes/client-node';
import type { Sidecar } from '../../src/core/mesh-scope.js';
import { pino } from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { FakeApiServer, type Obj } from '../lib/fake-api.js';
import type { DesiredState, KubeObject, NamespaceInput } from '../../src/core/desired-types.js';
import { EventRecorder } from '../../src/controller/events.js';
import { ReconcileError, Reconciler, type ReconcileCacheView } from '../../src/controller/reconcile.js';
import { NotLeaderError, Writer } from '../../src/controller/writer.js';
import { ExternalResolver } from '../../src/controller/resolver.js';
import { desiredNamespaceState } from '../../src/core/desired.js';
import { injectedPod } from './helpers/builders.js';

// ---- the toolkit's in-memory API server: the cache view reads it and the real Writer writes ----

const MANAGED = new Set([
  'ServiceAccount',
  'Service',
  'ConfigMap',
  'Deployment',
  'Gateway',
  'VirtualService',
  'DestinationRule',
]);
const MISSING = new Set<string>();

function cacheView(api: FakeApiServer): ReconcileCacheView {
  const workload = (kind: string) => (ns: string, name: string) => api.get(kind, ns, name);
  const kinds: Record<string, string> = {
    deployments: 'Deployment',
    replicasets: 'ReplicaSet',
    statefulsets: 'StatefulSet',
    daemonsets: 'DaemonSet',
    rollouts: 'Rollout',
    jobs: 'Job',
    cronjobs: 'CronJob',
  };
  return {
    namespace: (n) => api.get('Namespace', '', n) as V1Namespace | undefined,
    services: (ns) => api.list('Service', ns) as V1Service[],
    service: (ns, n) => api.get('Service', ns, n) as V1Service | undefined,
    managedPods: (ns) => api.list('Pod', ns).filter((p) => p.metadata.labels?.['wpgw.io/managed']) as V1Pod[],
    managedObjects: (ns) =>
      [...api.objects.values()].filter(
        (o) =>
          MANAGED.has(o.kind) &&
          o.metadata.namespace === ns &&
          o.metadata.labels?.['app.kubernetes.io/managed-by'] === 'wpgw',
      ) as KubeObject[],
    workload: ((resource: string, ns: string, name: string) =>
      workload(kinds[resource]!)(ns, name)) as ReconcileCacheView['workload'],
    isKindMissing: (_v, kind) => MISSING.has(kind),
    ingresses: (ns) => api.list('Ingress', ns) as V1Ingress[],
    workloads: ((resource: string, ns: string) => api.list(kinds[resource]!, ns)) as ReconcileCacheView['workloads'],
    runtimeClass: (n) => api.get('RuntimeClass', '', n) as V1RuntimeClass | undefined,
    istioObjects: (ns) => ({
      virtualServices: api.list('VirtualService', ns) as KubeObject[],
      destinationRules: api.list('DestinationRule', ns) as KubeObject[],
      authorizationPolicies: api.list('AuthorizationPolicy', ns) as KubeObject[],
    }),
    allRouting: () => ({
      virtualServices: api.list('VirtualService') as KubeObject[],
      destinationRules: api.list('DestinationRule') as KubeObject[],
    }),
    allServices: () => [...api.objects.values()].filter((o) => o.kind === 'Service') as V1Service[],
    sidecars: (ns) => api.list('Sidecar', ns) as Sidecar[],
  };
}

// ---- a stand-in for desiredNamespaceState ------------------------------------------------------

const OURS = (owner = 'namespace') => ({ 'app.kubernetes.io/managed-by': 'wpgw', 'wpgw.io/for': owner });

function fakeDesired(input: NamespaceInput): DesiredState {
  const ns = input.namespace.metadata!.name!;
  const objects: KubeObject[] = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'wpgw', namespace: ns, labels: OURS() } },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'wpgw', namespace: ns, labels: OURS() },
      spec: {
        replicas: 2,
        selector: { matchLabels: { 'wpgw.io/gateway': ns } },
        template: {
          metadata: { labels: { 'wpgw.io/gateway': ns } },
          spec: { containers: [{ name: 'istio-proxy', image: 'auto', resources: { requests: { cpu: '0.1' } } }] },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'wpgw', namespace: ns, labels: OURS() },
      spec: { selector: { 'wpgw.io/gateway': ns }, ports: [{ name: 'http-out-80', port: 80, targetPort: 20000 }] },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'Gateway',
      metadata: { name: 'wpgw', namespace: ns, labels: OURS() },
      spec: { selector: { 'wpgw.io/gateway': ns } },
    },
  ];
  for (const s of input.services) {
    if (s.metadata?.annotations?.['wpgw.io/original']) {
      objects.push({
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: `${s.metadata.name}-app`, namespace: ns, labels: OURS(`service.${s.metadata.name}`) },
        spec: { selector: { app: 'legacy' }, ports: [{ port: 8080, targetPort: 80 }] },
      });
    }
  }
  const conflicts = input.pods
    .filter((p) => p.metadata?.annotations?.['wpgw.io/outbound'] === 'bad')
    .map((p) => ({ subject: `Pod/${p.metadata!.name}`, reason: 'InvalidOutbound', message: 'cannot parse "bad"' }));
  return { objects, conflicts, notes: [] };
}

// ---- fixtures ------------------------------------------------------------------------------------

const log = pino({ level: 'silent' });

function setup(opts: { leader?: () => boolean } = {}) {
  const api = new FakeApiServer();
  const writer = new Writer(api, { isLeader: opts.leader ?? (() => true) });
  const events = new EventRecorder(api, writer, {
    instance: 'test',
    logger: log,
    now: () => new Date('2026-03-01T00:00:00Z'),
  });
  const r = new Reconciler({
    cache: cacheView(api),
    writer,
    events,
    desired: fakeDesired,
    desiredOptions: { clusterDomain: 'cluster.local', defaultGatewayReplicas: 2, corednsImage: 'coredns' },
    logger: log,
    now: () => new Date('2026-03-01T00:00:00Z'),
  });
  api.onChange = (o) => r.observe(o);
  api.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'wpgw.io/inject': 'enabled' } } });
  return { api, writer, r };
}

function eventsOf(api: FakeApiServer, reason?: string): Obj[] {
  return [...api.objects.values()].filter((o) => o.kind === 'Event' && (!reason || o.reason === reason));
}

function windowsPod(
  name: string,
  extra: { labels?: Record<string, string>; annotations?: Record<string, string>; owner?: [string, string] } = {},
): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'shop',
      labels: { 'wpgw.io/managed': 'true', app: 'legacy', ...extra.labels },
      annotations: extra.annotations ?? {},
      ...(extra.owner
        ? {
            ownerReferences: [
              { apiVersion: 'apps/v1', kind: extra.owner[0], name: extra.owner[1], uid: 'x', controller: true },
            ],
          }
        : {}),
    },
  };
}

beforeEach(() => MISSING.clear());

describe('Reconciler: apply', () => {
  it('applies every desired object with SSA, then a resync makes zero API writes', async () => {
    const { api, writer, r } = setup();
    const first = await r.reconcile('shop');
    expect(first.applied).toEqual(['ServiceAccount/wpgw', 'Deployment/wpgw', 'Service/wpgw', 'Gateway/wpgw']);
    expect(writer.writeCounts().byVerbKind).toEqual({
      'apply/ServiceAccount': 1,
      'apply/Deployment': 1,
      'apply/Service': 1,
      'apply/Gateway': 1,
    });
    expect(api.writes().every((w) => w.startsWith('PATCH') && w.endsWith('application/apply-patch+yaml'))).toBe(true);

    const before = writer.writeCounts().total;
    const again = await r.reconcile('shop');
    expect(again.applied).toEqual([]);
    expect(again.unchanged).toBe(4);
    expect(writer.writeCounts().total).toBe(before);
    // Nor any Event: nothing changed.
    expect(eventsOf(api)).toEqual([]);
  });

  it('re-applies only the object that drifted', async () => {
    const { api, writer, r } = setup();
    await r.reconcile('shop');
    api.update('Service', 'shop', 'wpgw', (svc) => (svc.spec.ports[0].targetPort = 12345));
    const before = writer.writeCounts().total;
    const res = await r.reconcile('shop');
    expect(res.applied).toEqual(['Service/wpgw']);
    expect(writer.writeCounts().total).toBe(before + 1);
    expect(api.get('Service', 'shop', 'wpgw')!.spec.ports[0].targetPort).toBe(20000);
  });

  it('skips kinds whose CRD is missing, reports degraded and warns once', async () => {
    const { api, r } = setup();
    MISSING.add('Gateway');
    const res = await r.reconcile('shop');
    expect(res.outcome).toBe('degraded');
    expect(res.missingKinds).toEqual(['networking.istio.io/v1 Gateway']);
    expect(res.applied).not.toContain('Gateway/wpgw');
    await r.reconcile('shop');
    expect(eventsOf(api, 'MissingCRD')).toHaveLength(1);
    expect(eventsOf(api, 'MissingCRD')[0]!.type).toBe('Warning');
  });

  it('keeps going after one failed apply and reports the failure for a retry', async () => {
    const { api, r } = setup();
    api.failApplyFor.add('Service/wpgw');
    const err = await r.reconcile('shop').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReconcileError);
    expect((err as ReconcileError).failures).toHaveLength(1);
    expect((err as ReconcileError).report.applied).toEqual(['ServiceAccount/wpgw', 'Deployment/wpgw', 'Gateway/wpgw']);
  });

  it('writes nothing when not the leader', async () => {
    const { api, r } = setup({ leader: () => false });
    await expect(r.reconcile('shop')).rejects.toBeInstanceOf(NotLeaderError);
    expect(api.writes()).toEqual([]);
  });

  it('skips terminating and missing namespaces', async () => {
    const { api, r } = setup();
    api.get('Namespace', '', 'shop')!.metadata.deletionTimestamp = '2026-03-01T00:00:00Z';
    expect((await r.reconcile('shop')).outcome).toBe('skipped');
    expect((await r.reconcile('nope')).outcome).toBe('skipped');
    expect(api.writes()).toEqual([]);
  });
});

describe('Reconciler: re-created gateway Service', () => {
  it('falls back to a fresh ClusterIP when the recorded one is refused, with a Warning', async () => {
    const { api } = setup();
    const desiredWithIP = (input: NamespaceInput): DesiredState => {
      const d = fakeDesired(input);
      const svc = d.objects.find((o) => o.kind === 'Service' && o.metadata.name === 'wpgw')!;
      if (!api.get('Service', 'shop', 'wpgw')) (svc.spec as Record<string, unknown>).clusterIP = '10.96.99.99';
      return d;
    };
    const writer = new Writer(api, { isLeader: () => true });
    const r2 = new Reconciler({
      cache: cacheView(api),
      writer,
      events: new EventRecorder(api, writer, { instance: 'x', logger: log }),
      desired: desiredWithIP,
      desiredOptions: { clusterDomain: 'cluster.local', defaultGatewayReplicas: 2, corednsImage: 'coredns' },
      logger: log,
    });
    api.onChange = (o) => r2.observe(o);
    api.takenIPs.add('10.96.99.99');
    const res = await r2.reconcile('shop');
    expect(res.applied).toContain('Service/wpgw');
    expect(api.get('Service', 'shop', 'wpgw')!.spec.clusterIP).not.toBe('10.96.99.99');
    expect(eventsOf(api, 'GatewayAddressChanged')).toHaveLength(1);
  });
});

describe('Reconciler: prune', () => {
  it('deletes our objects that are no longer desired, never unlabelled ones', async () => {
    const { api, r } = setup();
    await r.reconcile('shop');
    api.put({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'stale', namespace: 'shop', labels: OURS() } });
    api.put({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'users', namespace: 'shop', labels: { app: 'x' } },
    });
    api.put({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'legacy', namespace: 'shop' },
      spec: { selector: { app: 'other' } },
    });
    const res = await r.reconcile('shop');
    expect(res.pruned).toEqual(['ConfigMap/stale']);
    expect(api.get('ConfigMap', 'shop', 'stale')).toBeUndefined();
    expect(api.get('ConfigMap', 'shop', 'users')).toBeDefined();
    expect(api.get('Service', 'shop', 'legacy')).toBeDefined();
    expect(api.writes().filter((w) => w.startsWith('DELETE'))).toEqual([
      'DELETE /api/v1/namespaces/shop/configmaps/stale',
    ]);
    expect(eventsOf(api, 'Pruned')).toHaveLength(1);
  });

  it('hands an opted-out namespace back in order: gateway labelled, caller rule, Services, pods, then the rest', async () => {
    const { api, r } = setup();
    const original = { selector: { app: 'legacy' }, ports: [{ name: 'http', port: 8080, targetPort: 80 }] };
    // As a client-side apply leaves it: the user's key merged back beside the gateway's.
    api.put({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: 'legacy',
        namespace: 'shop',
        labels: { 'wpgw.io/repointed': 'true', team: 'a' },
        annotations: { 'wpgw.io/original': JSON.stringify(original), 'wpgw.io/nudge': 'abc', note: 'x' },
      },
      spec: {
        selector: { 'wpgw.io/gateway': 'shop', app: 'legacy' },
        ports: [{ name: 'http', port: 8080, targetPort: 30001 }],
      },
    });
    api.put({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'legacy', namespace: 'shop' },
      spec: { template: { metadata: {} } },
    });
    const status = JSON.stringify({
      v: 1,
      mode: 'hostAliases',
      gatewayIP: '10.96.0.12',
      hostnames: ['orders'],
      outbound: ['orders:80'],
    });
    api.put(windowsPod('legacy-1', { annotations: { 'wpgw.io/status': status }, owner: ['Deployment', 'legacy'] }));
    await r.reconcile('shop');
    api.put({
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'wpgw-in-legacy', namespace: 'shop', labels: OURS('service.legacy') },
      spec: { host: 'legacy.shop.svc.cluster.local' },
    });
    api.put({
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'wpgw-app-legacy', namespace: 'shop', labels: OURS('service.legacy') },
      spec: { host: 'legacy-app.shop.svc.cluster.local' },
    });
    delete api.get('Namespace', '', 'shop')!.metadata.labels['wpgw.io/inject'];

    let res = await r.reconcile('shop');
    expect(res.restorePhase).toBe('gateway');
    expect(api.get('Deployment', 'shop', 'wpgw')!.spec.template.metadata.labels['security.istio.io/tlsMode']).toBe(
      'istio',
    );
    expect(api.get('DestinationRule', 'shop', 'wpgw-in-legacy')).toBeDefined();
    // Waits for the labelled gateway pods to roll out.
    const writes = api.writes().length;
    expect((await r.reconcile('shop')).restorePhase).toBe('gateway');
    expect(api.writes().length).toBe(writes);
    api.update(
      'Deployment',
      'shop',
      'wpgw',
      (d) => (d.status = { replicas: 2, readyReplicas: 2, updatedReplicas: 2, availableReplicas: 2 }),
    );

    res = await r.reconcile('shop');
    expect(res.restorePhase).toBe('callers');
    expect(res.pruned).toEqual(['DestinationRule/wpgw-in-legacy']);
    expect(api.get('Service', 'shop', 'legacy')!.spec.selector['wpgw.io/gateway']).toBe('shop');

    res = await r.reconcile('shop');
    expect(res.restorePhase).toBe('services');
    expect(res.restored).toEqual(['legacy']);
    expect(res.pruned).toEqual([]);
    const svc = api.get('Service', 'shop', 'legacy')!;
    expect(svc.spec.selector).toEqual({ app: 'legacy' });
    expect(svc.spec.ports).toEqual([{ name: 'http', port: 8080, targetPort: 80, protocol: 'TCP' }]);
    expect(svc.metadata.labels).toEqual({ team: 'a' });
    expect(svc.metadata.annotations).toEqual({ note: 'x' });
    expect(eventsOf(api, 'ServiceRestored')).toHaveLength(1);

    // The gateway stays while the pod's hostAliases point at it; its owner is rolled once.
    res = await r.reconcile('shop');
    expect(res.restorePhase).toBe('pods');
    expect(res.restarted).toEqual(['Deployment/legacy']);
    expect(res.pruned).toEqual([]);
    expect(
      api.get('Deployment', 'shop', 'legacy')!.spec.template.metadata.annotations['wpgw.io/restartedAt'],
    ).toBeDefined();
    expect((await r.reconcile('shop')).restarted).toEqual([]);
    expect(api.get('Service', 'shop', 'wpgw')).toBeDefined();

    api.objects.delete('Pod/shop/legacy-1');
    res = await r.reconcile('shop');
    expect(res.restorePhase).toBe('cleanup');
    expect(res.pruned.sort()).toEqual([
      'Deployment/wpgw',
      'DestinationRule/wpgw-app-legacy',
      'Gateway/wpgw',
      'Service/legacy-app',
      'Service/wpgw',
      'ServiceAccount/wpgw',
    ]);
    expect(api.get('Deployment', 'shop', 'legacy')).toBeDefined();
    const phases = eventsOf(api, 'OptingOut').map((e) => e.message as string);
    expect(phases.some((m) => m.includes('STRICT'))).toBe(true);
    res = await r.reconcile('shop');
    expect(res.restorePhase).toBe('done');
    const after = api.writes().filter((w) => !w.includes('/events')).length;
    await r.reconcile('shop');
    expect(api.writes().filter((w) => !w.includes('/events')).length).toBe(after);
  });

  it('reports instead of rolling when wpgw.io/restart-on-ip-change is "false"', async () => {
    const { api, r } = setup();
    api.get('Namespace', '', 'shop')!.metadata.annotations = { 'wpgw.io/restart-on-ip-change': 'false' };
    api.put({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'legacy', namespace: 'shop' },
      spec: { template: { metadata: {} } },
    });
    const status = JSON.stringify({ v: 1, mode: 'dnsConfig', dnsIP: '10.96.0.13', outbound: [] });
    api.put(windowsPod('legacy-1', { annotations: { 'wpgw.io/status': status }, owner: ['Deployment', 'legacy'] }));
    await r.reconcile('shop');
    delete api.get('Namespace', '', 'shop')!.metadata.labels['wpgw.io/inject'];
    const res = await r.reconcile('shop');
    expect(res.restorePhase).toBe('pods');
    expect(res.restarted).toEqual([]);
    expect(eventsOf(api, 'OptOutPodsRemain')).toHaveLength(1);
    expect(api.get('Deployment', 'shop', 'wpgw')).toBeDefined();
  });
});

describe('Reconciler: nudges', () => {
  it('nudges a Service selecting managed pods once, with an Event', async () => {
    const { api, r } = setup();
    api.put(windowsPod('legacy-1'));
    api.put({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'legacy', namespace: 'shop' },
      spec: { selector: { app: 'legacy' }, ports: [{ port: 80 }] },
    });
    const res = await r.reconcile('shop');
    expect(res.nudged).toEqual(['legacy']);
    expect(api.get('Service', 'shop', 'legacy')!.metadata.annotations['wpgw.io/nudge']).toMatch(/^[0-9a-f]{16}$/);
    expect(api.writes()).toContain('PATCH /api/v1/namespaces/shop/services/legacy application/merge-patch+json');
    expect(eventsOf(api, 'ServiceNudged')).toHaveLength(1);

    // The webhook did not re-point it (e.g. it was down): no write loop.
    const after = api.writes().length;
    expect((await r.reconcile('shop')).nudged).toEqual([]);
    expect(api.writes().length).toBe(after);
  });
});

describe('Reconciler: misplaced settings (core/hints.ts) as Events on the object concerned', () => {
  it('warns once on a Deployment whose outbound is on its own metadata and on one whose template is not Windows; none for a correct one', async () => {
    const { api, r } = setup();
    const deployment = (name: string, own: Record<string, string>, template: Record<string, unknown>) => ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace: 'shop', uid: `uid-${name}`, annotations: own },
      spec: {
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name }, ...template },
          spec: { containers: [{ name: 'c', image: 'i' }] },
        },
      },
    });
    api.put(deployment('own-meta', { 'wpgw.io/outbound': 'api.example.com:443' }, {}));
    api.put(deployment('linux', {}, { annotations: { 'wpgw.io/outbound': 'api.example.com:443' } }));
    const ok = deployment('right', {}, { annotations: { 'wpgw.io/outbound': 'api.example.com:443' } });
    (ok.spec.template as { spec: Record<string, unknown> }).spec.nodeSelector = { 'kubernetes.io/os': 'windows' };
    api.put(ok);
    // A ReplicaSet of own-meta copies its annotations: it is named by its owner, not warned twice.
    api.put({
      ...deployment('own-meta-abc', { 'wpgw.io/outbound': 'api.example.com:443' }, {}),
      kind: 'ReplicaSet',
      metadata: {
        name: 'own-meta-abc',
        namespace: 'shop',
        annotations: { 'wpgw.io/outbound': 'api.example.com:443' },
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'Deployment', name: 'own-meta', uid: 'uid-own-meta', controller: true },
        ],
      },
    });
    await r.reconcile('shop');
    const events = eventsOf(api, 'MisplacedSetting');
    expect(
      events
        .map((e) => `${(e.involvedObject as { kind: string }).kind}/${(e.involvedObject as { name: string }).name}`)
        .sort(),
    ).toEqual(['Deployment/linux', 'Deployment/own-meta']);
    const byName = (n: string) => events.find((e) => (e.involvedObject as { name: string }).name === n)!;
    expect(byName('own-meta').type).toBe('Warning');
    expect(byName('own-meta').message).toContain(
      "wpgw.io/outbound is on the Deployment's own metadata, where it has no effect",
    );
    expect(byName('own-meta').involvedObject as { uid?: string; apiVersion?: string }).toMatchObject({
      uid: 'uid-own-meta',
      apiVersion: 'apps/v1',
    });
    expect(byName('linux').message).toContain('its pod template has wpgw.io/outbound but is not recognised as Windows');
    // Once per distinct hint: the next pass writes nothing.
    await r.reconcile('shop');
    expect(eventsOf(api, 'MisplacedSetting')).toHaveLength(2);
  });

  it('warns on the Namespace for a setting given as a label where an annotation is read', async () => {
    const { api, r } = setup();
    api.put({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: 'shop',
        uid: 'ns-uid',
        labels: { 'wpgw.io/inject': 'enabled', 'wpgw.io/resolver': 'dnsConfig' },
      },
    });
    await r.reconcile('shop');
    const [event, ...more] = eventsOf(api, 'MisplacedSetting');
    expect(more).toEqual([]);
    expect(event!.involvedObject).toMatchObject({ kind: 'Namespace', name: 'shop', uid: 'ns-uid' });
    expect(event!.message).toBe(
      'wpgw.io/resolver is set as a label, but wpgw reads it as an annotation: kubectl annotate namespace shop wpgw.io/resolver=dnsConfig',
    );
  });
});

describe('Reconciler: gateway address drift', () => {
  function withDrift(api: FakeApiServer) {
    api.put({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'legacy', namespace: 'shop' },
      spec: { selector: {}, template: { metadata: {} } },
    });
    api.put({
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name: 'legacy-abc',
        namespace: 'shop',
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'legacy', uid: 'd', controller: true }],
      },
    });
    const status = JSON.stringify({ v: 1, mode: 'hostAliases', gatewayIP: '10.96.99.99', outbound: [] });
    api.put(
      windowsPod('legacy-abc-1', {
        annotations: { 'wpgw.io/status': status },
        owner: ['ReplicaSet', 'legacy-abc'],
        labels: { app: 'x' },
      }),
    );
  }

  it('rolls the owning Deployment once per new address', async () => {
    const { api, r } = setup();
    withDrift(api);
    const res = await r.reconcile('shop');
    expect(res.restarted).toEqual(['Deployment/legacy']);
    expect(api.get('Deployment', 'shop', 'legacy')!.spec.template.metadata.annotations['wpgw.io/restartedAt']).toBe(
      '2026-03-01T00:00:00.000Z',
    );
    expect(eventsOf(api, 'OwnerRestarted')).toHaveLength(1);
    expect(eventsOf(api, 'OwnerRestarted')[0]!.involvedObject).toMatchObject({
      kind: 'Deployment',
      name: 'legacy',
      namespace: 'shop',
    });
    const after = api.writes().length;
    expect((await r.reconcile('shop')).restarted).toEqual([]);
    expect(api.writes().length).toBe(after);
  });

  it('restarts an owning Argo Rollout the way kubectl argo rollouts restart does (spec.restartAt), once', async () => {
    const { api, r } = setup();
    api.put({
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Rollout',
      metadata: { name: 'legacy', namespace: 'shop', uid: 'ro' },
      spec: { template: { metadata: {} } },
    });
    api.put({
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name: 'legacy-abc',
        namespace: 'shop',
        ownerReferences: [
          { apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', name: 'legacy', uid: 'ro', controller: true },
        ],
      },
    });
    const status = JSON.stringify({ v: 1, mode: 'hostAliases', gatewayIP: '10.96.99.99', outbound: [] });
    api.put(
      windowsPod('legacy-abc-1', {
        annotations: { 'wpgw.io/status': status },
        owner: ['ReplicaSet', 'legacy-abc'],
        labels: { app: 'x' },
      }),
    );
    const res = await r.reconcile('shop');
    expect(res.restarted).toEqual(['Rollout/legacy']);
    expect(api.writes()).toContain(
      'PATCH /apis/argoproj.io/v1alpha1/namespaces/shop/rollouts/legacy application/merge-patch+json',
    );
    expect(api.get('Rollout', 'shop', 'legacy')!.spec.restartAt).toBe('2026-03-01T00:00:00.000Z');
    expect(api.get('Rollout', 'shop', 'legacy')!.spec.template).toEqual({ metadata: {} });
    expect(eventsOf(api, 'OwnerRestarted')[0]!.involvedObject).toMatchObject({
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Rollout',
      name: 'legacy',
    });
    const after = api.writes().length;
    expect((await r.reconcile('shop')).restarted).toEqual([]);
    expect(api.writes().length).toBe(after);
  });

  it('only warns when restarts are disabled for the namespace', async () => {
    const { api, r } = setup();
    api.get('Namespace', '', 'shop')!.metadata.annotations = { 'wpgw.io/restart-on-ip-change': 'false' };
    withDrift(api);
    const res = await r.reconcile('shop');
    expect(res.restarted).toEqual([]);
    expect(api.get('Deployment', 'shop', 'legacy')!.spec.template.metadata.annotations).toBeUndefined();
    const warn = eventsOf(api, 'GatewayAddressChanged');
    expect(warn).toHaveLength(1);
    expect(warn[0]!.type).toBe('Warning');
    await r.reconcile('shop');
    expect(eventsOf(api, 'GatewayAddressChanged')).toHaveLength(1);
  });
});

describe('Reconciler: events', () => {
  it('reports each conflict once, on its subject', async () => {
    const { api, r } = setup();
    api.put(windowsPod('bad-1', { annotations: { 'wpgw.io/outbound': 'bad' }, labels: { app: 'nomatch' } }));
    await r.reconcile('shop');
    await r.reconcile('shop');
    const ev = eventsOf(api, 'ConflictDetected');
    expect(ev).toHaveLength(1);
    expect(ev[0]!.involvedObject).toMatchObject({ kind: 'Pod', name: 'bad-1', uid: 'uid-Pod-bad-1' });
    expect(ev[0]!.message).toContain('InvalidOutbound');
  });

  it('a fresh controller on a converged cluster writes no events either', async () => {
    const a = setup();
    a.api.put(windowsPod('bad-1', { annotations: { 'wpgw.io/outbound': 'bad' }, labels: { app: 'nomatch' } }));
    await a.r.reconcile('shop');
    // Second controller instance, same API server.
    const writer = new Writer(a.api, { isLeader: () => true });
    const r2 = new Reconciler({
      cache: cacheView(a.api),
      writer,
      events: new EventRecorder(a.api, writer, { instance: 'b', logger: log }),
      desired: fakeDesired,
      desiredOptions: { clusterDomain: 'cluster.local', defaultGatewayReplicas: 2, corednsImage: 'coredns' },
      logger: log,
    });
    await r2.reconcile('shop');
    expect(writer.writeCounts().total).toBe(0);
  });

  it('announces GatewayReady only on an observed transition', async () => {
    const { api, r } = setup();
    await r.reconcile('shop');
    api.update('Deployment', 'shop', 'wpgw', (d) => {
      d.metadata.generation = 1;
      d.status = { observedGeneration: 1, readyReplicas: 2, updatedReplicas: 2 } satisfies V1Deployment['status'];
    });
    await r.reconcile('shop');
    expect(eventsOf(api, 'GatewayReady')).toHaveLength(1);
    expect(eventsOf(api, 'GatewayReady')[0]!.message).toMatch(/ready \(2\/2 replicas\) at 10\.96\.0\.\d+/);

    // A new reconciler that first sees it ready says nothing.
    const writer = new Writer(api, { isLeader: () => true });
    const r2 = new Reconciler({
      cache: cacheView(api),
      writer,
      events: new EventRecorder(api, writer, { instance: 'b', logger: log }),
      desired: fakeDesired,
      desiredOptions: { clusterDomain: 'cluster.local', defaultGatewayReplicas: 2, corednsImage: 'coredns' },
      logger: log,
    });
    await r2.reconcile('shop');
    expect(writer.writeCounts().total).toBe(0);
  });
});

describe('Reconciler: own writes not yet seen by the watch', () => {
  it('does not re-apply an object whose watch event has not arrived yet', async () => {
    const { api, writer } = setup();
    api.onChange = () => {};
    // A cache that lags: it never shows our writes.
    const lagging: ReconcileCacheView = { ...cacheView(api), managedObjects: () => [], service: () => undefined };
    const r2 = new Reconciler({
      cache: lagging,
      writer,
      events: { record: async () => false },
      desired: fakeDesired,
      desiredOptions: { clusterDomain: 'cluster.local', defaultGatewayReplicas: 2, corednsImage: 'coredns' },
      logger: log,
    });
    await r2.reconcile('shop');
    const n = writer.writeCounts().total;
    await r2.reconcile('shop');
    expect(writer.writeCounts().total).toBe(n);
    // Once the cache shows a newer version, it is trusted again.
    const live = api.get('Service', 'shop', 'wpgw')!;
    r2.observe({ ...live, metadata: { ...live.metadata, resourceVersion: '1' } }); // older: ignored
    await r2.reconcile('shop');
    expect(writer.writeCounts().total).toBe(n);
  });
});

describe('Reconciler: external names pinned by the controller (real desired state)', () => {
  function setupPinned(answers: Record<string, string[]>) {
    const api = new FakeApiServer();
    const writer = new Writer(api, { isLeader: () => true });
    const events = new EventRecorder(api, writer, {
      instance: 'test',
      logger: log,
      now: () => new Date('2026-03-01T00:00:00Z'),
    });
    const lookups: string[] = [];
    const resolver = new ExternalResolver({ lookup: async (h) => (lookups.push(h), answers[h] ?? []) });
    const r = new Reconciler({
      cache: cacheView(api),
      writer,
      events,
      desired: desiredNamespaceState,
      desiredOptions: { clusterDomain: 'cluster.local', defaultGatewayReplicas: 2, corednsImage: 'coredns' },
      logger: log,
      resolver,
    });
    api.onChange = (o) => r.observe(o);
    api.put({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'shop', labels: { 'wpgw.io/inject': 'enabled' } },
    });
    api.put({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'legacy', namespace: 'shop' },
      spec: {
        selector: { matchLabels: { app: 'legacy' } },
        template: { metadata: { labels: { app: 'legacy' } }, spec: { containers: [] } },
      },
    });
    api.put({
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name: 'legacy-5c7d9',
        namespace: 'shop',
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'Deployment', name: 'legacy', uid: 'uid-Deployment-legacy', controller: true },
        ],
      },
    });
    for (const name of ['legacy-5c7d9-a', 'legacy-5c7d9-b']) {
      const pod = injectedPod({
        name,
        labels: { app: 'legacy' },
        outbound: 'meta.evil.example:80 example.com:80+tls orders.sales.svc:9080 *.zone.example:8080',
        resolver: 'dnsConfig',
        ip: '10.244.64.10',
      });
      pod.metadata!.ownerReferences = [
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'legacy-5c7d9', uid: 'rs', controller: true },
      ];
      api.put({ apiVersion: 'v1', kind: 'Pod', ...pod } as Obj);
    }
    return { api, r, lookups };
  }

  it('looks up only concrete external names, pins the good one, refuses the one resolving to the metadata address with one Event on the Deployment', async () => {
    const { api, r, lookups } = setupPinned({
      'meta.evil.example': ['169.254.169.254'],
      'example.com': ['93.184.216.34'],
    });
    const report = await r.reconcile('shop');
    expect(lookups.sort()).toEqual(['example.com', 'meta.evil.example']); // not the Service, not the wildcard
    expect(report.refusedNames).toEqual({ ForbiddenAddress: 1 }); // one route (two pods declare it), counted by the metric
    const entries = api.list('ServiceEntry', 'shop');
    expect(entries.map((e) => [e.spec.hosts[0], e.spec.resolution, e.spec.endpoints])).toEqual([
      ['example.com', 'STATIC', [{ address: '93.184.216.34' }]],
      ['*.zone.example', 'DYNAMIC_DNS', undefined],
    ]);
    const refusals = eventsOf(api, 'ConflictDetected').filter((e) => String(e.message).startsWith('ForbiddenAddress'));
    expect(refusals).toHaveLength(1);
    expect(refusals[0]!.involvedObject).toMatchObject({
      kind: 'Deployment',
      name: 'legacy',
      uid: 'uid-Deployment-legacy',
      apiVersion: 'apps/v1',
    });
    expect(refusals[0]!.message).toContain('meta.evil.example resolves to 169.254.169.254');
    // the same refusal again writes no new Event
    await r.reconcile('shop');
    expect(
      eventsOf(api, 'ConflictDetected').filter((e) => String(e.message).startsWith('ForbiddenAddress')),
    ).toHaveLength(1);
  });
});
describe('Reconciler: one Service handed back while the namespace stays in', () => {
  /** fakeDesired plus the inbound objects a re-pointed Service gets (the caller rule among them). */
  function withInbound(input: NamespaceInput): DesiredState {
    const state = fakeDesired(input);
    const ns = input.namespace.metadata!.name!;
    for (const s of input.services.filter((x) => x.metadata?.annotations?.['wpgw.io/original'])) {
      const name = s.metadata!.name!;
      const labels = OURS(`service.${name}`);
      state.objects.push(
        {
          apiVersion: 'networking.istio.io/v1',
          kind: 'Gateway',
          metadata: { name: `wpgw-in-${name}`, namespace: ns, labels },
          spec: { selector: { 'wpgw.io/gateway': ns } },
        },
        {
          apiVersion: 'networking.istio.io/v1',
          kind: 'DestinationRule',
          metadata: { name: `wpgw-in-${name}`, namespace: ns, labels },
          spec: { host: `${name}.${ns}.svc.cluster.local`, trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } },
        },
      );
    }
    return state;
  }

  function leaveSetup(windowsTemplates: boolean) {
    const api = new FakeApiServer();
    const writer = new Writer(api, { isLeader: () => true });
    let now = new Date('2026-03-01T00:00:00Z').getTime();
    const events = new EventRecorder(api, writer, { instance: 'test', logger: log, now: () => new Date(now) });
    const view: ReconcileCacheView = {
      ...cacheView(api),
      ...(windowsTemplates
        ? {
            workloads: ((resource: string, ns: string) =>
              resource === 'deployments'
                ? api.list('Deployment', ns).filter((d) => !d.metadata.labels?.['app.kubernetes.io/managed-by'])
                : []) as ReconcileCacheView['workloads'],
            runtimeClass: () => undefined,
          }
        : {}),
    };
    const r = new Reconciler({
      cache: view,
      writer,
      events,
      desired: withInbound,
      desiredOptions: { clusterDomain: 'cluster.local', defaultGatewayReplicas: 2, corednsImage: 'coredns' },
      logger: log,
      now: () => new Date(now),
      listenerGraceMs: 20_000,
    });
    api.onChange = (o) => r.observe(o);
    api.put({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'shop', labels: { 'wpgw.io/inject': 'enabled' } },
    });
    const original = { selector: { app: 'legacy' }, ports: [{ name: 'http', port: 8080, targetPort: 80 }] };
    // Helm's three-way merge leaves the user's key beside the gateway's.
    api.put({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: 'legacy',
        namespace: 'shop',
        labels: { 'wpgw.io/repointed': 'true', 'app.kubernetes.io/managed-by': 'Helm' },
        annotations: { 'wpgw.io/original': JSON.stringify(original), 'meta.helm.sh/release-name': 'legacy' },
      },
      spec: {
        selector: { 'wpgw.io/gateway': 'shop', app: 'legacy' },
        ports: [{ name: 'http', port: 8080, targetPort: 30001 }],
      },
    });
    api.put({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'legacy', namespace: 'shop' },
      spec: {
        template: {
          metadata: { labels: { app: 'legacy' } },
          spec: { nodeSelector: { 'kubernetes.io/os': 'windows' }, containers: [] },
        },
      },
    });
    return { api, r, advance: (ms: number) => (now += ms) };
  }

  it('wpgw.io/inject=false: gateway labelled, caller rule deleted, Service restored, listener kept for the grace, then pruned', async () => {
    const { api, r, advance } = leaveSetup(false);
    await r.reconcile('shop');
    expect(api.get('DestinationRule', 'shop', 'wpgw-in-legacy')).toBeDefined();
    api.update('Service', 'shop', 'legacy', (s) => (s.metadata.labels['wpgw.io/inject'] = 'false'));

    let res = await r.reconcile('shop');
    expect(res.leaving).toEqual([{ service: 'legacy', reason: 'opted_out', phase: 'gateway' }]);
    expect(api.get('Deployment', 'shop', 'wpgw')!.spec.template.metadata.labels['security.istio.io/tlsMode']).toBe(
      'istio',
    );
    expect(api.get('DestinationRule', 'shop', 'wpgw-in-legacy')).toBeDefined();
    expect((await r.reconcile('shop')).leaving[0]!.phase).toBe('gateway');
    api.update(
      'Deployment',
      'shop',
      'wpgw',
      (d) => (d.status = { replicas: 2, readyReplicas: 2, updatedReplicas: 2, availableReplicas: 2 }),
    );

    res = await r.reconcile('shop');
    expect(res.leaving[0]!.phase).toBe('callers');
    expect(res.pruned).toEqual(['DestinationRule/wpgw-in-legacy']);
    expect(api.get('Service', 'shop', 'legacy')!.spec.selector['wpgw.io/gateway']).toBe('shop');

    res = await r.reconcile('shop');
    expect(res.restored).toEqual(['legacy']);
    expect(res.leaving[0]!.phase).toBe('lingering');
    const svc = api.get('Service', 'shop', 'legacy')!;
    expect(svc.spec.selector).toEqual({ app: 'legacy' });
    expect(svc.spec.ports).toEqual([{ name: 'http', port: 8080, targetPort: 80, protocol: 'TCP' }]);
    expect(svc.metadata.labels).toEqual({ 'app.kubernetes.io/managed-by': 'Helm', 'wpgw.io/inject': 'false' });
    expect(svc.metadata.annotations).toEqual({ 'meta.helm.sh/release-name': 'legacy' });
    expect(res.recheckAfterMs).toBeGreaterThanOrEqual(20_000);
    // Callers whose xDS still lags reach the gateway: its listener and legacy-app stay for the grace.
    advance(10_000);
    res = await r.reconcile('shop');
    expect(res.pruned).toEqual([]);
    expect(res.restored).toEqual([]);
    expect(api.get('Gateway', 'shop', 'wpgw-in-legacy')).toBeDefined();
    expect(api.get('Service', 'shop', 'legacy-app')).toBeDefined();
    expect(api.get('DestinationRule', 'shop', 'wpgw-in-legacy')).toBeUndefined();

    advance(10_001);
    res = await r.reconcile('shop');
    expect(res.leaving).toEqual([]);
    expect(res.pruned.sort()).toEqual(['Gateway/wpgw-in-legacy', 'Service/legacy-app']);
    expect(res.applied).toContain('Deployment/wpgw'); // the tlsMode label is no longer desired
    const reasons = eventsOf(api)
      .filter((e) => e.involvedObject.name === 'legacy')
      .map((e) => `${e.reason}: ${e.message}`);
    expect(
      reasons
        .filter((m) => m.startsWith('LeavingGateway'))
        .map((m) => /: handing it back from the wpgw gateway: (\w+)/.exec(m)?.[1]),
    ).toEqual(['labelling', 'deleting', 'restored']);
    expect(
      reasons.some((m) =>
        m.startsWith('ServiceRestored: labelled wpgw.io/inject=false: restored the original selector'),
      ),
    ).toBe(true);
    expect(reasons.every((m) => !m.startsWith('LeavingGateway') || m.includes('STRICT PeerAuthentication'))).toBe(true);
    // Converged: nothing more is written.
    const n = api.writes().filter((w) => !w.includes('/events')).length;
    await r.reconcile('shop');
    expect(api.writes().filter((w) => !w.includes('/events')).length).toBe(n);
  });

  it('no Windows workload behind it any more (the app moved to Linux): handed back the same way', async () => {
    const { api, r } = leaveSetup(true);
    await r.reconcile('shop');
    expect((await r.reconcile('shop')).leaving).toEqual([]);
    api.update(
      'Deployment',
      'shop',
      'legacy',
      (d) => (d.spec.template.spec.nodeSelector = { 'kubernetes.io/os': 'linux' }),
    );
    expect((await r.reconcile('shop')).leaving).toEqual([
      { service: 'legacy', reason: 'no_windows_pods', phase: 'gateway' },
    ]);
    api.update(
      'Deployment',
      'shop',
      'wpgw',
      (d) => (d.status = { replicas: 2, readyReplicas: 2, updatedReplicas: 2, availableReplicas: 2 }),
    );
    expect((await r.reconcile('shop')).pruned).toEqual(['DestinationRule/wpgw-in-legacy']);
    const res = await r.reconcile('shop');
    expect(res.restored).toEqual(['legacy']);
    expect(api.get('Service', 'shop', 'legacy')!.spec.selector).toEqual({ app: 'legacy' });
    expect(eventsOf(api, 'ServiceRestored')[0]!.message).toMatch(
      /^no Windows workload or pod matches it any more: restored/,
    );
  });
});
