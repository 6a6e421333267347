// startController end to end against the toolkit's in-memory Kubernetes API over HTTP (list,
// watch, apply, merge patch, put, delete): the wiring of caches, Lease, queue and workers. The real
// kube-apiserver runs in the e2e suite.
import type { KubeConfig, V1Deployment } from '@kubernetes/client-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { FakeApiServer } from '../lib/fake-api.js';
import type { DesiredState, KubeObject, NamespaceInput } from '../../src/core/desired-types.js';
import { startController, type ControllerHandle } from '../../src/controller/controller.js';
import { collectStatus, formatStatus } from '../../src/commands/status-report.js';

const OURS = { 'app.kubernetes.io/managed-by': 'wpgw', 'wpgw.io/for': 'namespace' };

function desired(input: NamespaceInput): DesiredState {
  const ns = input.namespace.metadata!.name!;
  const objects: KubeObject[] = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'wpgw', namespace: ns, labels: OURS } },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'wpgw', namespace: ns, labels: OURS },
      spec: { selector: { 'wpgw.io/gateway': ns }, ports: [{ name: 'status', port: 15021, targetPort: 15021 }] },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'Gateway',
      metadata: { name: 'wpgw', namespace: ns, labels: OURS },
      spec: { selector: { 'wpgw.io/gateway': ns } },
    },
  ];
  return { objects, conflicts: [], notes: ['stub desired state'] };
}

let api: FakeApiServer;
let kc: KubeConfig;
const running: ControllerHandle[] = [];

beforeAll(async () => {
  api = new FakeApiServer();
  kc = await api.listen();
  api.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'wpgw-system' } });
  api.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { 'wpgw.io/inject': 'enabled' } } });
  api.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'quiet' } });
  api.put({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'kube-dns', namespace: 'kube-system' },
    spec: { clusterIP: '10.96.0.2' },
  });
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.stop()));
  // Every test starts from an opted-in "shop".
  const shop = api.get('Namespace', '', 'shop')!;
  if (shop.metadata.labels?.['wpgw.io/inject'] !== 'enabled') {
    shop.metadata.labels = { ...shop.metadata.labels, 'wpgw.io/inject': 'enabled' };
    api.put(shop);
  }
});

afterAll(async () => {
  await api.close();
});

function start(identity: string, leaderElection = true): ControllerHandle {
  const c = startController({
    kubeconfig: kc,
    namespace: 'wpgw-system',
    logger: pino({ level: process.env.DEBUG_TEST ? 'debug' : 'silent' }),
    registry: new Registry(),
    options: {
      identity,
      leaderElection,
      desiredFn: desired,
      renewIntervalMs: 100,
      leaseDurationMs: 3000,
      renewDeadlineMs: 2000,
      retryBaseMs: 20,
    },
  });
  running.push(c);
  return c;
}

describe('startController', () => {
  it('acquires the Lease, converges opted-in namespaces, and a resync writes nothing', async () => {
    const c = start('replica-a');
    expect(await c.waitForIdle(10_000)).toBe(true);
    expect(c.ready()).toBe(true);
    expect(c.isLeader()).toBe(true);
    expect(api.get('Lease', 'wpgw-system', 'wpgw-controller')?.spec.holderIdentity).toBe('replica-a');
    expect(api.get('Service', 'shop', 'wpgw')).toBeDefined();
    expect(api.get('Gateway', 'shop', 'wpgw')).toBeDefined();
    expect(api.get('ServiceAccount', 'quiet', 'wpgw')).toBeUndefined();
    const stats = c.stats();
    expect(stats.writes.byVerbKind).toMatchObject({
      'apply/ServiceAccount': 1,
      'apply/Service': 1,
      'apply/Gateway': 1,
    });
    expect(stats.watchEvents).toBeGreaterThan(0);
    expect(stats.missingKinds).toEqual([]);

    const before = c.stats().writes.total;
    c.resync();
    expect(await c.waitForIdle(10_000)).toBe(true);
    expect(c.stats().reconciles.ok).toBeGreaterThanOrEqual(2);
    expect(c.stats().writes.total).toBe(before);
    const metrics = await c.metrics.writes.get();
    expect(metrics.values.reduce((n, v) => n + v.value, 0)).toBe(before);

    // Opting out cleans up (driven by the namespace watch event).
    const shop = api.get('Namespace', '', 'shop')!;
    delete shop.metadata.labels['wpgw.io/inject'];
    api.put(shop);
    await vi.waitFor(
      () => {
        expect(api.get('Service', 'shop', 'wpgw')).toBeUndefined();
        expect(api.get('Gateway', 'shop', 'wpgw')).toBeUndefined();
      },
      { timeout: 10_000 },
    );
    shop.metadata.labels['wpgw.io/inject'] = 'enabled';
    api.put(shop);
    await vi.waitFor(() => expect(api.get('Service', 'shop', 'wpgw')).toBeDefined(), { timeout: 10_000 });

    await c.stop();
    expect(api.get('Lease', 'wpgw-system', 'wpgw-controller')?.spec.holderIdentity ?? null).toBeNull();
  });

  it('keeps no workloads of a namespace that is not opted in (its Services only slimmed); opting it in lists its objects and converges it', async () => {
    api.put({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'legacy', namespace: 'late' },
      spec: { selector: { app: 'legacy' }, ports: [{ port: 80 }] },
    });
    api.put({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'legacy', namespace: 'late' },
      spec: {
        template: {
          metadata: { labels: { app: 'legacy' } },
          spec: { nodeSelector: { 'kubernetes.io/os': 'windows' }, containers: [{ name: 'c', image: 'i' }] },
        },
      },
    });
    const late = api.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'late' } });
    const c = start('replica-a');
    expect(await c.waitForIdle(10_000)).toBe(true);
    // Services are kept everywhere (mesh-wide outbound and the gateway egress policy read them), slimmed
    expect(c.cache.service('late', 'legacy')?.spec?.selector).toEqual({ app: 'legacy' });
    expect(c.cache.workloads('deployments', 'late')).toEqual([]);
    expect(c.cache.service('kube-system', 'kube-dns')).toBeDefined(); // read for every namespace

    late.metadata.labels = { 'wpgw.io/inject': 'enabled' };
    api.put(late);
    await vi.waitFor(() => expect(api.get('Gateway', 'late', 'wpgw')).toBeDefined(), { timeout: 10_000 });
    // Slim: the template's Windows evidence is kept, its containers only by name.
    expect(c.cache.service('late', 'legacy')?.spec?.selector).toEqual({ app: 'legacy' });
    const d = c.cache.workload<V1Deployment>('deployments', 'late', 'legacy');
    expect(d?.spec?.template?.spec).toEqual({
      nodeSelector: { 'kubernetes.io/os': 'windows' },
      containers: [{ name: 'c' }],
    });
    expect(c.cache.namespaceSynced('late')).toBe(true);
    await c.stop();
    for (const kind of ['Service', 'Deployment', 'ServiceAccount', 'Gateway']) {
      for (const o of api.list(kind, 'late')) api.remove(o);
    }
    api.remove(late);
  });

  it('a second replica follows (no writes) and takes over when the leader stops', async () => {
    const a = start('replica-a');
    expect(await a.waitForIdle(10_000)).toBe(true);
    const b = start('replica-b');
    await vi.waitFor(() => expect(b.ready()).toBe(true), { timeout: 10_000 });
    await new Promise((r) => setTimeout(r, 300));
    expect(b.isLeader()).toBe(false);
    expect(b.stats().writes.total).toBe(0);
    await a.stop();
    expect(await b.waitForIdle(10_000)).toBe(true);
    expect(b.isLeader()).toBe(true);
    // Converged already: the new leader re-reconciles everything and writes nothing.
    expect(b.stats().writes.total).toBe(0);
    expect(b.stats().reconciles.ok).toBeGreaterThanOrEqual(1);
  });

  it('wpgw status reads the same cluster', async () => {
    const c = start('replica-s', false);
    expect(await c.waitForIdle(10_000)).toBe(true);
    const report = await collectStatus(kc, { desiredFn: desired });
    expect(report.errors).toEqual([]);
    expect(report.namespaces.map((n) => n.namespace)).toEqual(['shop']);
    expect(report.namespaces[0]!.gateway.serviceIP).toMatch(/^10\.96\.0\.\d+$/);
    expect(formatStatus(report)).toContain('Namespace shop');
    const one = await collectStatus(kc, { namespace: 'quiet', desiredFn: desired });
    expect(one.namespaces[0]!.optedIn).toBe(false);
    expect((await collectStatus(kc, { namespace: 'nope' })).errors).toEqual(['namespace nope not found']);
  });

  it("discovers Nodes' ranges (batched, following churn) into its egress report, which wpgw status shows", async () => {
    api.put({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'edge-1' },
      spec: { podCIDR: '198.51.100.0/24', podCIDRs: ['198.51.100.0/24'] },
      status: { addresses: [{ type: 'InternalIP', address: '10.1.0.9' }] },
    });
    const c = start('replica-r', false);
    expect(await c.waitForIdle(10_000)).toBe(true);
    const discovered = () =>
      JSON.parse(api.get('ConfigMap', 'shop', 'wpgw-egress-report')?.data?.['report.json'] ?? '{}').clusterRanges
        ?.discovered as Array<{ cidr: string; source: string }> | undefined;
    expect(discovered()).toEqual([{ cidr: '198.51.100.0/24', source: 'node edge-1 podCIDR' }]); // 10.1.0.9 lies in 10/8: denied anyway, not listed
    api.put({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'edge-2' }, spec: { podCIDRs: ['203.0.113.0/24'] } });
    await vi.waitFor(() => expect(discovered()?.map((d) => d.cidr)).toEqual(['198.51.100.0/24', '203.0.113.0/24']), {
      timeout: 10_000,
    });
    const text = formatStatus(await collectStatus(kc, { namespace: 'shop', desiredFn: desired }));
    expect(text).toContain(
      '  egress ranges: --cluster-cidrs none; discovered: nodes watched, ServiceCIDRs unavailable (not served, or forbidden): see the controller log\n',
    );
    expect(text).toContain(
      '  egress ranges: discovered, excepted from external egress: 198.51.100.0/24 (node edge-1 podCIDR), 203.0.113.0/24 (node edge-2 podCIDR)\n',
    );
    for (const n of api.list('Node')) api.remove(n);
  });

  it('wpgw status also shows a namespace that meant to opt in with an annotation, with the hint (the controller never reconciles it)', async () => {
    api.put({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'meant', annotations: { 'wpgw.io/inject': 'enabled' } },
    });
    const report = await collectStatus(kc, { desiredFn: desired });
    expect(report.errors).toEqual([]);
    expect(report.namespaces.map((n) => n.namespace)).toEqual(['meant', 'shop']);
    const meant = report.namespaces[0]!;
    expect(meant.optedIn).toBe(false);
    expect(meant.hints).toEqual([
      {
        subject: 'Namespace/meant',
        message:
          'wpgw.io/inject is set as an annotation, but opting in is the label (the webhook configuration selects on it): kubectl label namespace meant wpgw.io/inject=enabled',
      },
    ]);
    expect(formatStatus(report)).toContain('  hint:         Namespace/meant: wpgw.io/inject is set as an annotation');
  });
});
