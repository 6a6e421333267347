// startController end to end against a small in-memory Kubernetes API over HTTP (list, watch,
// apply, merge patch, put, delete): the wiring of caches, Lease, queue and workers. The real
// kube-apiserver runs in the e2e suite.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig, type V1Deployment } from '@kubernetes/client-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { applyMergePatch } from './helpers/merge-patch.js';
import type { DesiredState, KubeObject, NamespaceInput } from '../../src/core/desired-types.js';
import { startController, type ControllerHandle } from '../../src/controller/controller.js';
import { collectStatus, formatStatus } from '../../src/controller/status.js';

type Obj = Record<string, any> & { metadata: Record<string, any> };

const KINDS: Record<string, string> = {
  namespaces: 'Namespace',
  services: 'Service',
  pods: 'Pod',
  deployments: 'Deployment',
  statefulsets: 'StatefulSet',
  daemonsets: 'DaemonSet',
  replicasets: 'ReplicaSet',
  jobs: 'Job',
  cronjobs: 'CronJob',
  runtimeclasses: 'RuntimeClass',
  ingresses: 'Ingress',
  serviceaccounts: 'ServiceAccount',
  configmaps: 'ConfigMap',
  poddisruptionbudgets: 'PodDisruptionBudget',
  networkpolicies: 'NetworkPolicy',
  gateways: 'Gateway',
  virtualservices: 'VirtualService',
  destinationrules: 'DestinationRule',
  serviceentries: 'ServiceEntry',
  authorizationpolicies: 'AuthorizationPolicy',
  peerauthentications: 'PeerAuthentication',
  requestauthentications: 'RequestAuthentication',
  leases: 'Lease',
  nodes: 'Node',
  events: 'Event',
};

interface Route {
  gv: string;
  plural: string;
  ns?: string;
  name?: string;
}

function route(pathname: string): Route | undefined {
  const m = /^\/(?:api\/(v1)|apis\/([^/]+\/[^/]+))(?:\/namespaces\/([^/]+))?\/([a-z]+)(?:\/([^/]+))?$/.exec(pathname);
  if (m) return { gv: m[1] ?? m[2]!, ns: m[3], plural: m[4]!, name: m[5] };
  const n = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(pathname);
  if (n) return { gv: 'v1', plural: 'namespaces', name: n[1] };
  return undefined;
}

function selectorMatches(sel: string | null, labels: Record<string, string> = {}): boolean {
  if (!sel) return true;
  return sel.split(',').every((term) => {
    const [k, v] = term.split('=');
    return v === undefined ? labels[k!] !== undefined : labels[k!] === v;
  });
}

class MiniApiServer {
  readonly objects = new Map<string, Obj>();
  readonly writes: string[] = [];
  private rv = 1000;
  private ip = 10;
  private watchers: Array<{ r: Route; sel: string | null; res: ServerResponse }> = [];
  server: Server;

  constructor() {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => this.handle(req.method ?? 'GET', new URL(req.url ?? '/', 'http://x'), body, req.headers['content-type'] ?? '', res));
    });
  }

  private key(r: Route, ns: string | undefined, name: string): string {
    return `${r.gv}/${r.plural}/${ns ?? ''}/${name}`;
  }

  /** Store as a client would have created it, notifying watchers. */
  set(gv: string, plural: string, o: Obj, type: 'ADDED' | 'MODIFIED' = 'ADDED'): Obj {
    o.apiVersion ??= gv;
    o.kind ??= KINDS[plural];
    o.metadata.uid ??= `uid-${plural}-${o.metadata.name}`;
    o.metadata.resourceVersion = String(++this.rv);
    o.metadata.creationTimestamp ??= new Date().toISOString();
    if (plural === 'services') {
      o.spec ??= {};
      o.spec.clusterIP ??= `10.96.0.${++this.ip}`;
      o.spec.type ??= 'ClusterIP';
      o.spec.ports = (o.spec.ports ?? []).map((p: any) => ({ protocol: 'TCP', ...p }));
    }
    this.objects.set(this.key({ gv, plural }, o.metadata.namespace, o.metadata.name), o);
    this.notify(gv, plural, type, o);
    return o;
  }

  get(gv: string, plural: string, ns: string | undefined, name: string): Obj | undefined {
    return this.objects.get(this.key({ gv, plural }, ns, name));
  }

  list(gv: string, plural: string, ns?: string): Obj[] {
    return [...this.objects.entries()].filter(([k]) => k.startsWith(`${gv}/${plural}/${ns ?? ''}`)).map(([, o]) => o);
  }

  remove(gv: string, plural: string, o: Obj): void {
    this.objects.delete(this.key({ gv, plural }, o.metadata.namespace, o.metadata.name));
    o.metadata.resourceVersion = String(++this.rv);
    this.notify(gv, plural, 'DELETED', o);
  }

  private notify(gv: string, plural: string, type: string, o: Obj): void {
    for (const w of this.watchers) {
      if (w.r.gv !== gv || w.r.plural !== plural) continue;
      if (w.r.ns && w.r.ns !== o.metadata.namespace) continue;
      if (!selectorMatches(w.sel, o.metadata.labels)) continue;
      w.res.write(`${JSON.stringify({ type, object: o })}\n`);
    }
  }

  private handle(method: string, url: URL, body: string, contentType: string, res: ServerResponse): void {
    const send = (code: number, o: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(o));
    };
    const r = route(url.pathname);
    if (!r || !KINDS[r.plural]) return send(404, { kind: 'Status', code: 404, message: `no route ${url.pathname}` });
    const sel = url.searchParams.get('labelSelector');
    if (method === 'GET' && !r.name) {
      if (url.searchParams.get('watch') === 'true') {
        res.writeHead(200, { 'content-type': 'application/json' });
        if (url.searchParams.get('sendInitialEvents') === 'true') {
          // A streaming list: every object as ADDED, then the bookmark that ends the initial events.
          for (const o of this.list(r.gv, r.plural, r.ns).filter((x) => selectorMatches(sel, x.metadata.labels))) res.write(`${JSON.stringify({ type: 'ADDED', object: o })}\n`);
          res.write(`${JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: String(this.rv), annotations: { 'k8s.io/initial-events-end': 'true' } } } })}\n`);
        }
        const w = { r, sel, res };
        this.watchers.push(w);
        res.on('close', () => (this.watchers = this.watchers.filter((x) => x !== w)));
        return;
      }
      const items = this.list(r.gv, r.plural, r.ns).filter((o) => selectorMatches(sel, o.metadata.labels));
      return send(200, { kind: 'List', metadata: { resourceVersion: String(this.rv) }, items });
    }
    const existing = r.name ? this.get(r.gv, r.plural, r.ns, r.name) : undefined;
    const notFound = () => send(404, { kind: 'Status', code: 404, message: 'not found' });
    if (method !== 'GET') this.writes.push(`${method} ${r.plural}/${r.name ?? ''}`);
    switch (method) {
      case 'GET':
        return existing ? send(200, existing) : notFound();
      case 'POST': {
        const o = JSON.parse(body) as Obj;
        if (this.get(r.gv, r.plural, r.ns, o.metadata.name)) return send(409, { kind: 'Status', code: 409, message: 'exists' });
        return send(201, this.set(r.gv, r.plural, { ...o, metadata: { ...o.metadata, namespace: r.ns } }));
      }
      case 'PUT': {
        const o = JSON.parse(body) as Obj;
        if (!existing) return notFound();
        if (o.metadata.resourceVersion !== existing.metadata.resourceVersion) return send(409, { kind: 'Status', code: 409, message: 'conflict' });
        return send(200, this.set(r.gv, r.plural, o, 'MODIFIED'));
      }
      case 'PATCH': {
        const patch = JSON.parse(body);
        if (contentType.startsWith('application/apply-patch')) {
          return send(200, this.set(r.gv, r.plural, applyMergePatch(structuredClone(existing ?? {}), patch), existing ? 'MODIFIED' : 'ADDED'));
        }
        if (!existing) return notFound();
        return send(200, this.set(r.gv, r.plural, applyMergePatch(structuredClone(existing), patch), 'MODIFIED'));
      }
      case 'DELETE':
        if (!existing) return notFound();
        this.remove(r.gv, r.plural, existing);
        return send(200, { kind: 'Status', status: 'Success' });
      default:
        return send(405, {});
    }
  }

  close(): Promise<void> {
    for (const w of this.watchers) w.res.destroy();
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

const OURS = { 'app.kubernetes.io/managed-by': 'wpgw', 'wpgw.io/for': 'namespace' };

function desired(input: NamespaceInput): DesiredState {
  const ns = input.namespace.metadata!.name!;
  const objects: KubeObject[] = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'wpgw', namespace: ns, labels: OURS } },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: 'wpgw', namespace: ns, labels: OURS }, spec: { selector: { 'wpgw.io/gateway': ns }, ports: [{ name: 'status', port: 15021, targetPort: 15021 }] } },
    { apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: 'wpgw', namespace: ns, labels: OURS }, spec: { selector: { 'wpgw.io/gateway': ns } } },
  ];
  return { objects, conflicts: [], notes: ['stub desired state'] };
}

let api: MiniApiServer;
let kc: KubeConfig;
const running: ControllerHandle[] = [];

beforeAll(async () => {
  api = new MiniApiServer();
  await new Promise<void>((r) => api.server.listen(0, '127.0.0.1', r));
  kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
    currentContext: 'ctx',
  });
  api.set('v1', 'namespaces', { metadata: { name: 'wpgw-system' } });
  api.set('v1', 'namespaces', { metadata: { name: 'shop', labels: { 'wpgw.io/inject': 'enabled' } } });
  api.set('v1', 'namespaces', { metadata: { name: 'quiet' } });
  api.set('v1', 'services', { metadata: { name: 'kube-dns', namespace: 'kube-system' }, spec: { clusterIP: '10.96.0.2' } });
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.stop()));
  // Every test starts from an opted-in "shop".
  const shop = api.get('v1', 'namespaces', undefined, 'shop')!;
  if (shop.metadata.labels?.['wpgw.io/inject'] !== 'enabled') {
    shop.metadata.labels = { ...shop.metadata.labels, 'wpgw.io/inject': 'enabled' };
    api.set('v1', 'namespaces', shop, 'MODIFIED');
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
    options: { identity, leaderElection, desiredFn: desired, renewIntervalMs: 100, leaseDurationMs: 3000, renewDeadlineMs: 2000, retryBaseMs: 20 },
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
    expect(api.get('coordination.k8s.io/v1', 'leases', 'wpgw-system', 'wpgw-controller')?.spec.holderIdentity).toBe('replica-a');
    expect(api.get('v1', 'services', 'shop', 'wpgw')).toBeDefined();
    expect(api.get('networking.istio.io/v1', 'gateways', 'shop', 'wpgw')).toBeDefined();
    expect(api.get('v1', 'serviceaccounts', 'quiet', 'wpgw')).toBeUndefined();
    const stats = c.stats();
    expect(stats.writes.byVerbKind).toMatchObject({ 'apply/ServiceAccount': 1, 'apply/Service': 1, 'apply/Gateway': 1 });
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
    const shop = api.get('v1', 'namespaces', undefined, 'shop')!;
    delete shop.metadata.labels['wpgw.io/inject'];
    api.set('v1', 'namespaces', shop, 'MODIFIED');
    await vi.waitFor(
      () => {
        expect(api.get('v1', 'services', 'shop', 'wpgw')).toBeUndefined();
        expect(api.get('networking.istio.io/v1', 'gateways', 'shop', 'wpgw')).toBeUndefined();
      },
      { timeout: 10_000 },
    );
    shop.metadata.labels['wpgw.io/inject'] = 'enabled';
    api.set('v1', 'namespaces', shop, 'MODIFIED');
    await vi.waitFor(() => expect(api.get('v1', 'services', 'shop', 'wpgw')).toBeDefined(), { timeout: 10_000 });

    await c.stop();
    expect(api.get('coordination.k8s.io/v1', 'leases', 'wpgw-system', 'wpgw-controller')?.spec.holderIdentity ?? null).toBeNull();
  });

  it('keeps no workloads of a namespace that is not opted in (its Services only slimmed); opting it in lists its objects and converges it', async () => {
    api.set('v1', 'services', { metadata: { name: 'legacy', namespace: 'late' }, spec: { selector: { app: 'legacy' }, ports: [{ port: 80 }] } });
    api.set('apps/v1', 'deployments', { metadata: { name: 'legacy', namespace: 'late' }, spec: { template: { metadata: { labels: { app: 'legacy' } }, spec: { nodeSelector: { 'kubernetes.io/os': 'windows' }, containers: [{ name: 'c', image: 'i' }] } } } });
    const late = api.set('v1', 'namespaces', { metadata: { name: 'late' } });
    const c = start('replica-a');
    expect(await c.waitForIdle(10_000)).toBe(true);
    // Services are kept everywhere (mesh-wide outbound and the gateway egress policy read them), slimmed
    expect(c.cache.service('late', 'legacy')?.spec?.selector).toEqual({ app: 'legacy' });
    expect(c.cache.workloads('deployments', 'late')).toEqual([]);
    expect(c.cache.service('kube-system', 'kube-dns')).toBeDefined(); // read for every namespace

    late.metadata.labels = { 'wpgw.io/inject': 'enabled' };
    api.set('v1', 'namespaces', late, 'MODIFIED');
    await vi.waitFor(() => expect(api.get('networking.istio.io/v1', 'gateways', 'late', 'wpgw')).toBeDefined(), { timeout: 10_000 });
    // Slim: the template's Windows evidence is kept, its containers only by name.
    expect(c.cache.service('late', 'legacy')?.spec?.selector).toEqual({ app: 'legacy' });
    const d = c.cache.workload<V1Deployment>('deployments', 'late', 'legacy');
    expect(d?.spec?.template?.spec).toEqual({ nodeSelector: { 'kubernetes.io/os': 'windows' }, containers: [{ name: 'c' }] });
    expect(c.cache.namespaceSynced('late')).toBe(true);
    await c.stop();
    for (const [gv, plural] of [['v1', 'services'], ['apps/v1', 'deployments'], ['v1', 'serviceaccounts'], ['networking.istio.io/v1', 'gateways']] as const) {
      for (const o of api.list(gv, plural, 'late')) api.remove(gv, plural, o);
    }
    api.remove('v1', 'namespaces', late);
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
    api.set('v1', 'nodes', { metadata: { name: 'edge-1' }, spec: { podCIDR: '198.51.100.0/24', podCIDRs: ['198.51.100.0/24'] }, status: { addresses: [{ type: 'InternalIP', address: '10.1.0.9' }] } });
    const c = start('replica-r', false);
    expect(await c.waitForIdle(10_000)).toBe(true);
    const discovered = () => JSON.parse(api.get('v1', 'configmaps', 'shop', 'wpgw-egress-report')?.data?.['report.json'] ?? '{}').clusterRanges?.discovered as Array<{ cidr: string; source: string }> | undefined;
    expect(discovered()).toEqual([{ cidr: '198.51.100.0/24', source: 'node edge-1 podCIDR' }]); // 10.1.0.9 lies in 10/8: denied anyway, not listed
    api.set('v1', 'nodes', { metadata: { name: 'edge-2' }, spec: { podCIDRs: ['203.0.113.0/24'] } });
    await vi.waitFor(() => expect(discovered()?.map((d) => d.cidr)).toEqual(['198.51.100.0/24', '203.0.113.0/24']), { timeout: 10_000 });
    const text = formatStatus(await collectStatus(kc, { namespace: 'shop', desiredFn: desired }));
    expect(text).toContain('  egress ranges: --cluster-cidrs none; discovered: nodes watched, ServiceCIDRs unavailable (not served, or forbidden): see the controller log\n');
    expect(text).toContain('  egress ranges: discovered, excepted from external egress: 198.51.100.0/24 (node edge-1 podCIDR), 203.0.113.0/24 (node edge-2 podCIDR)\n');    for (const n of api.list('v1', 'nodes', undefined)) api.remove('v1', 'nodes', n);
  });

  it('wpgw status also shows a namespace that meant to opt in with an annotation, with the hint (the controller never reconciles it)', async () => {
    api.set('v1', 'namespaces', { metadata: { name: 'meant', annotations: { 'wpgw.io/inject': 'enabled' } } });
    const report = await collectStatus(kc, { desiredFn: desired });
    expect(report.errors).toEqual([]);
    expect(report.namespaces.map((n) => n.namespace)).toEqual(['meant', 'shop']);
    const meant = report.namespaces[0]!;
    expect(meant.optedIn).toBe(false);
    expect(meant.hints).toEqual([
      {
        subject: 'Namespace/meant',
        message: 'wpgw.io/inject is set as an annotation, but opting in is the label (the webhook configuration selects on it): kubectl label namespace meant wpgw.io/inject=enabled',
      },
    ]);
    expect(formatStatus(report)).toContain('  hint:         Namespace/meant: wpgw.io/inject is set as an annotation');
  });
});
