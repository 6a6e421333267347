// Mesh-wide outbound (wpgw.io/mesh-outbound): the scope grammar, the namespace's Istio Sidecar,
// the desired state as Services come and go, declared entries beside it, and what is refused.
// Pods are admitted by the real webhook core (injectedPod), so the desired state reads exactly
// what the webhook records.
import type { V1Service, V1ServicePort } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { desiredNamespaceState } from '../../src/core/desired.js';
import type { DesiredOptions, KubeObject, NamespaceInput } from '../../src/core/desired-types.js';
import {
  covers,
  entryFor,
  namespaceSidecar,
  parseMeshScope,
  planMesh,
  type Sidecar,
} from '../../src/core/mesh-scope.js';
import { mutatePod, type PodLike } from '../../src/core/pod.js';
import { buildNamespaceInput } from '../../src/controller/input.js';
import { namespacesForEvent } from '../../src/controller/routing.js';
import { formatStatus, summarizeNamespace } from '../../src/commands/status-report.js';
import { render } from '../../src/render.js';
import { stringify } from 'yaml';
import { find, get, injectedPod, namespaceObject, ofKind, spec } from './helpers/builders.js';
import { DNS_IP, staticContext } from '../lib/admission.js';

const OPTS: DesiredOptions = {
  clusterDomain: 'cluster.local',
  defaultGatewayReplicas: 2,
  corednsImage: 'registry.example/coredns:test',
};

function svc(
  name: string,
  namespace: string,
  ports: V1ServicePort[],
  extra: Partial<NonNullable<V1Service['spec']>> = {},
  labels?: Record<string, string>,
): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, ...(labels ? { labels } : {}) },
    spec: { selector: { app: name }, ports, ...extra },
  };
}

const CLUSTER = [
  svc('orders', 'sales', [{ name: 'http', port: 9080 }]),
  svc('grpc-api', 'sales', [
    { name: 'grpc', port: 9090 },
    { name: 'metrics', port: 9100, appProtocol: 'http' },
  ]),
  svc('db', 'sales', [{ name: 'tcp-pg', port: 5432 }]),
  svc('secure', 'sales', [{ name: 'https', port: 8443 }]),
  svc('peers', 'sales', [{ name: 'http', port: 8080 }], { clusterIP: 'None' }),
  svc('alias', 'sales', [{ name: 'http', port: 80 }], { type: 'ExternalName', externalName: 'example.com' }),
  svc('rates', 'shop', [{ name: 'http-web', port: 8080 }]),
  svc('wpgw', 'shop', [{ name: 'status-port', port: 15021 }], {}, { 'app.kubernetes.io/managed-by': 'wpgw' }),
  svc('stock', 'depot', [{ name: 'http', port: 7070 }]),
];

/** The live gateway Service: wpgw-dns answers with its address. */
const GATEWAY = svc(
  'wpgw',
  'shop',
  [{ name: 'status-port', port: 15021 }],
  { clusterIP: '10.96.100.10', selector: { 'wpgw.io/gateway': 'shop' } },
  { 'app.kubernetes.io/managed-by': 'wpgw' },
);

function meshPod(mesh: string, outbound?: string, name = 'legacy-abc') {
  return injectedPod({ name, mesh, ...(outbound ? { outbound } : {}), ip: '10.244.64.10' });
}

function state(input: Partial<NamespaceInput>) {
  return desiredNamespaceState(
    {
      namespace: namespaceObject('shop'),
      pods: [],
      services: [GATEWAY],
      clusterDnsIP: '10.96.0.10',
      clusterServices: CLUSTER,
      ...input,
    },
    OPTS,
  );
}

const vsHosts = (objects: KubeObject[]) => ofKind(objects, 'VirtualService').flatMap((v) => spec(v).hosts as string[]);
const corefile = (objects: KubeObject[]) =>
  (get(objects, 'ConfigMap', 'wpgw-dns') as unknown as { data: { Corefile: string } }).data.Corefile;

describe('the mesh-wide scope', () => {
  it('parses Sidecar-style namespace scopes and names a bad entry', () => {
    expect(parseMeshScope('./*, sales/* */*')).toEqual([
      { namespace: '.', host: '*' },
      { namespace: 'sales', host: '*' },
      { namespace: '*', host: '*' },
    ]);
    expect(parseMeshScope('none')).toEqual([]);
    expect(() => parseMeshScope('sales')).toThrow(
      /invalid wpgw.io\/mesh-outbound entry "sales": expected "<namespace>\/\*"/,
    );
    expect(() => parseMeshScope('sales/orders.sales.svc.cluster.local')).toThrow(
      /only whole namespaces \("sales\/\*"\).*declare a single Service in wpgw.io\/outbound/,
    );
    expect(() => parseMeshScope('Sales_1/*')).toThrow(/"Sales_1" is not a namespace name/);
    expect(() => parseMeshScope('  ')).toThrow(/empty/);
  });

  it('covers by namespace, "." being the pod\'s own, and Sidecar-style host patterns', () => {
    const scope = parseMeshScope('./* sales/*');
    expect(covers(scope, 'shop', 'shop', 'rates.shop.svc.cluster.local')).toBe(true);
    expect(covers(scope, 'shop', 'sales', 'orders.sales.svc.cluster.local')).toBe(true);
    expect(covers(scope, 'shop', 'depot', 'stock.depot.svc.cluster.local')).toBe(false);
    const exact = [
      { namespace: 'sales', host: 'orders.sales.svc.cluster.local' },
      { namespace: '*', host: '*.depot.svc.cluster.local' },
    ];
    expect(covers(exact, 'shop', 'sales', 'orders.sales.svc.cluster.local')).toBe(true);
    expect(covers(exact, 'shop', 'sales', 'db.sales.svc.cluster.local')).toBe(false);
    expect(covers(exact, 'shop', 'depot', 'stock.depot.svc.cluster.local')).toBe(true);
    expect(covers([{ namespace: '~', host: '*' }], 'shop', 'shop', 'rates.shop.svc.cluster.local')).toBe(false);
  });

  it("routes HTTP and gRPC ports, lists TCP and app-TLS ports with the entry each needs, skips headless and ExternalName and wpgw's own", () => {
    const plan = planMesh(parseMeshScope('*/*'), undefined, CLUSTER, 'shop', 'cluster.local');
    expect(plan.destinations.map((d) => `${d.host}:${d.port}`)).toEqual([
      'stock.depot.svc.cluster.local:7070',
      'grpc-api.sales.svc.cluster.local:9090',
      'grpc-api.sales.svc.cluster.local:9100',
      'orders.sales.svc.cluster.local:9080',
      'rates.shop.svc.cluster.local:8080',
    ]);
    expect(plan.needsEntry).toEqual(['tcp://db.sales.svc:5432', 'tls://secure.sales.svc:8443']);
    expect(plan.skipped).toEqual([expect.stringMatching(/^peers\.sales \(headless/)]);
    expect(plan.services).toBe(7); // stock, db, grpc-api, orders, peers, secure, rates
    expect(entryFor('orders', 'sales', { name: 'http', port: 9080 })).toBe('orders.sales.svc:9080');
  });

  it('the namespace-wide Sidecar (no workloadSelector, the oldest) narrows the scope; one with a selector does not', () => {
    const sidecars: Sidecar[] = [
      {
        metadata: { name: 'for-app', creationTimestamp: '2026-01-01T00:00:00Z' },
        spec: { workloadSelector: { labels: { app: 'x' } }, egress: [{ hosts: ['./*'] }] },
      },
      {
        metadata: { name: 'newer', creationTimestamp: '2026-03-01T00:00:00Z' },
        spec: { egress: [{ hosts: ['*/*'] }] },
      },
      {
        metadata: { name: 'default', creationTimestamp: '2026-02-01T00:00:00Z' },
        spec: {
          egress: [{ hosts: ['./*', 'istio-system/*'] }, { hosts: ['sales/orders.sales.svc.cluster.local', 'bogus'] }],
        },
      },
    ];
    const sc = namespaceSidecar(sidecars)!;
    expect(sc.name).toBe('Sidecar/default');
    expect(sc.invalid).toEqual(['bogus']);
    const plan = planMesh(parseMeshScope('*/*'), sc, CLUSTER, 'shop', 'cluster.local');
    expect(plan.destinations.map((d) => `${d.host}:${d.port}`)).toEqual([
      'orders.sales.svc.cluster.local:9080',
      'rates.shop.svc.cluster.local:8080',
    ]);
    // A Sidecar without egress does not restrict (Istio's default: everything).
    expect(namespaceSidecar([{ metadata: { name: 'ingress-only' }, spec: {} }])).toBeUndefined();
  });
});

describe('desired state with mesh-wide outbound', () => {
  it('a pod with no list: every in-scope HTTP Service is routed by Host, answered by wpgw-dns, authorised, on the gateway Service', () => {
    const pod = meshPod('./* sales/*');
    const { objects, notes, conflicts } = state({ pods: [pod] });
    expect(conflicts).toEqual([]);
    const hosts = vsHosts(objects);
    for (const h of [
      'orders.sales',
      'orders.sales.svc',
      'orders.sales.svc.cluster.local',
      'grpc-api.sales.svc.cluster.local',
      'rates.shop.svc.cluster.local',
    ])
      expect(hosts).toContain(h);
    expect(hosts.some((h) => h.startsWith('stock.'))).toBe(false); // depot is out of scope
    // The bare name of a Service of the pod's own namespace: the authority-regex route.
    const short = spec(get(objects, 'VirtualService', 'wpgw-out-shortnames')).http as Array<{
      match: Array<{ authority: { regex: string } }>;
    }>;
    expect(short.map((r) => r.match[0]!.authority.regex)).toEqual(['^rates(:[0-9]+)?$']);
    const dns = corefile(objects);
    expect(dns).toMatch(/hosts \{\n\s+10\.96\.100\.10 /);
    for (const n of ['orders.sales.svc.cluster.local', 'rates.shop.svc.cluster.local', 'rates', 'grpc-api.sales'])
      expect(dns.split(/\s+/)).toContain(n);
    expect(dns).not.toContain('db.sales');
    expect(dns).toContain('    log\n');
    const ports = (spec(get(objects, 'Service', 'wpgw')).ports as Array<{ port: number }>).map((p) => p.port);
    expect(ports).toEqual(expect.arrayContaining([8080, 9080, 9090, 9100]));
    expect(ports).not.toContain(5432);
    const authz = JSON.stringify(spec(get(objects, 'AuthorizationPolicy', 'wpgw')));
    expect(authz).toContain('"orders.sales.svc.cluster.local:*"');
    expect(authz).toContain('10.244.64.10');
    expect(notes).toContainEqual(
      expect.stringMatching(/^mesh-wide outbound \.\/\* sales\/\*: 6 Service\(s\) in scope, 4 HTTP port\(s\) routed/),
    );
    expect(notes).toContainEqual(
      expect.stringMatching(
        /cannot route 2 TCP or app-TLS port\(s\).*wpgw.io\/outbound: tcp:\/\/db\.sales\.svc:5432, tls:\/\/secure\.sales\.svc:8443/,
      ),
    );
  });

  it('follows Service churn: a new Service appears, a deleted one goes, a port renamed to http is picked up', () => {
    const pod = meshPod('sales/*');
    const before = state({ pods: [pod] });
    expect(find(before.objects, 'VirtualService', 'wpgw-out-invoices.sales.svc.cluster.local-8000')).toBeUndefined();
    const added = state({
      pods: [pod],
      clusterServices: [...CLUSTER, svc('invoices', 'sales', [{ name: 'http', port: 8000 }])],
    });
    expect(spec(get(added.objects, 'VirtualService', 'wpgw-out-invoices.sales.svc.cluster.local-8000')).hosts).toEqual([
      'invoices.sales',
      'invoices.sales.svc',
      'invoices.sales.svc.cluster.local',
    ]);
    expect(corefile(added.objects)).toContain('invoices.sales.svc.cluster.local');
    const removed = state({ pods: [pod], clusterServices: CLUSTER.filter((s) => s.metadata?.name !== 'orders') });
    expect(vsHosts(removed.objects).some((h) => h.startsWith('orders.'))).toBe(false);
    expect(corefile(removed.objects)).not.toContain('orders.sales');
    const renamed = state({
      pods: [pod],
      clusterServices: CLUSTER.map((s) =>
        s.metadata?.name === 'db' ? svc('db', 'sales', [{ name: 'http', port: 5432 }]) : s,
      ),
    });
    expect(vsHosts(renamed.objects)).toContain('db.sales.svc.cluster.local');
  });

  it('declared entries win: the same host and port keeps its declaration, a declared tcp:// port is not shared with mesh HTTP routes', () => {
    const pod = meshPod('sales/*', 'orders.sales.svc:9080\ntcp://pg.example.com:9090');
    const { objects, conflicts } = state({ pods: [pod] });
    expect(
      ofKind(objects, 'VirtualService').filter((v) =>
        (spec(v).hosts as string[]).includes('orders.sales.svc.cluster.local'),
      ),
    ).toHaveLength(1);
    const tcp = get(objects, 'VirtualService', 'wpgw-out-pg.example.com-9090');
    expect(spec(tcp).tcp).toBeDefined();
    expect(vsHosts(objects)).not.toContain('grpc-api.sales.svc.cluster.local:9090');
    expect(find(objects, 'VirtualService', 'wpgw-out-grpc-api.sales.svc.cluster.local-9090')).toBeUndefined();
    expect(conflicts).toEqual([
      {
        subject: 'Namespace/shop',
        reason: 'MeshRouteNotRouted',
        message: expect.stringMatching(
          /^1 mesh-wide destination\(s\) not routed: port 9090 is declared as tcp \(grpc-api\.sales\.svc\.cluster\.local:9090\); the declared entries win/,
        ),
      },
    ]);
    // the other port of grpc-api still is
    expect(find(objects, 'VirtualService', 'wpgw-out-grpc-api.sales.svc.cluster.local-9100')).toBeDefined();
  });

  it('the namespace annotation alone turns it on (wpgw-dns runs); a Sidecar in the namespace narrows it; an invalid one is a conflict, not applied', () => {
    const ns = namespaceObject('shop', { 'wpgw.io/mesh-outbound': '*/*' });
    const wide = state({ namespace: ns });
    expect(find(wide.objects, 'ConfigMap', 'wpgw-dns')).toBeDefined();
    expect(vsHosts(wide.objects)).toContain('stock.depot.svc.cluster.local');
    const narrowed = state({
      namespace: ns,
      sidecars: [{ metadata: { name: 'default' }, spec: { egress: [{ hosts: ['./*'] }] } }],
    });
    expect(vsHosts(narrowed.objects).filter((h) => h.endsWith('.cluster.local'))).toEqual([
      'rates.shop.svc.cluster.local',
    ]);
    expect(narrowed.notes).toContainEqual(
      expect.stringMatching(/within Sidecar\/default's egress hosts: 1 Service\(s\) in scope/),
    );
    const bad = state({ namespace: namespaceObject('shop', { 'wpgw.io/mesh-outbound': 'sales' }) });
    expect(bad.conflicts).toEqual([
      {
        subject: 'Namespace/shop',
        reason: 'InvalidMeshOutbound',
        message: expect.stringMatching(/entry "sales".*; not applied$/),
      },
    ]);
    expect(find(bad.objects, 'ConfigMap', 'wpgw-dns')).toBeUndefined();
    const hosts = state({
      namespace: namespaceObject('shop', { 'wpgw.io/mesh-outbound': './*', 'wpgw.io/resolver': 'hostAliases' }),
    });
    expect(hosts.conflicts.map((c) => c.reason)).toEqual(['MeshOutboundNeedsDns']);
  });

  it('without mesh-wide outbound nothing changes: no Service of the cluster is routed', () => {
    const { objects } = state({
      pods: [injectedPod({ name: 'legacy-abc', outbound: 'example.com:80', ip: '10.244.64.10' })],
    });
    expect(vsHosts(objects)).toEqual(['example.com']);
  });
});

describe('wpgw status and render say what mesh-wide outbound cannot route', () => {
  it('status lists the TCP and app-TLS ports in scope with the entry each needs', () => {
    const ns = namespaceObject('shop', { 'wpgw.io/mesh-outbound': 'sales/*' });
    (ns.metadata!.labels ??= {})['wpgw.io/inject'] = 'enabled';
    const s = summarizeNamespace({ namespace: ns, pods: [], services: [GATEWAY], clusterServices: CLUSTER }, undefined);
    const text = formatStatus({ namespaces: [s], errors: [] });
    expect(text).toMatch(
      /note: +mesh-wide outbound sales\/\*: 5 Service\(s\) in scope, 3 HTTP port\(s\) routed by Host/,
    );
    expect(text).toMatch(
      /note: +mesh-wide outbound cannot route 2 TCP or app-TLS port\(s\).*tcp:\/\/db\.sales\.svc:5432, tls:\/\/secure\.sales\.svc:8443/,
    );
    expect(text).toMatch(/note: +mesh-wide outbound skips: peers\.sales \(headless/);
    // per port, the mesh-wide routes are counted, not listed
    expect(text).toContain('note:         outbound http port 9080 -> gateway pod port 29080: 1 mesh-wide Service(s)');
  });

  it('render, from the input YAML: the same notes on stderr, the routes in the output', () => {
    const yaml = [
      {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: 'shop', annotations: { 'wpgw.io/mesh-outbound': 'sales/*' } },
      },
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sales' } },
      ...CLUSTER.filter((c) => c.metadata?.namespace === 'sales'),
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'legacy', namespace: 'shop' },
        spec: { nodeSelector: { 'kubernetes.io/os': 'windows' }, containers: [{ name: 'app', image: 'app' }] },
      },
    ]
      .map((o) => stringify(o))
      .join('---\n');
    const out = render(yaml, {});
    expect(out.errors).toEqual([]);
    expect(out.report).toContainEqual(
      expect.stringMatching(/^namespace shop: mesh-wide outbound cannot route 2 TCP or app-TLS port\(s\)/),
    );
    expect(out.report).toContainEqual(expect.stringMatching(/warning: .*legacy.*TCP-only and app-TLS ports/));
    expect(out.yaml).toContain('- orders.sales.svc.cluster.local');
    expect(out.yaml).toContain('dnsPolicy: None');
  });
});

describe('admission with mesh-wide outbound', () => {
  const windowsPod = (annotations: Record<string, string>): PodLike => ({
    metadata: { name: 'legacy-1', namespace: 'shop', annotations },
    spec: { nodeSelector: { 'kubernetes.io/os': 'windows' }, containers: [{ name: 'app', image: 'app' }] },
  });

  it('a pod with no list gets wpgw-dns (dnsConfig becomes its default), the scope recorded, and a warning about TCP/TLS ports', () => {
    const out = mutatePod({
      pod: windowsPod({ 'wpgw.io/mesh-outbound': 'sales/*  ./*' }),
      namespace: 'shop',
      ctx: staticContext(),
    });
    expect(out.action).toBe('mutate');
    if (out.action !== 'mutate') return;
    expect(out.pod.spec?.dnsPolicy).toBe('None');
    expect(out.pod.spec?.dnsConfig?.nameservers).toEqual([DNS_IP]);
    expect(out.pod.spec?.dnsConfig?.searches).toEqual(['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local']);
    expect(JSON.parse(out.pod.metadata!.annotations!['wpgw.io/status']!)).toMatchObject({
      mode: 'dnsConfig',
      outbound: [],
      mesh: ['sales/*', './*'],
    });
    expect(out.warnings).toContainEqual(
      expect.stringMatching(
        /TCP-only and app-TLS ports .* still need a wpgw.io\/outbound entry \(`wpgw status -n shop` lists them\)/,
      ),
    );
    // re-admission is idempotent
    const again = mutatePod({ pod: out.pod, namespace: 'shop', ctx: staticContext() });
    expect(again.action === 'mutate' && again.pod).toEqual(out.pod);
  });

  it('inherits the namespace\'s scope; "none" on the pod turns it off', () => {
    const ctx = staticContext({ namespaceAnnotations: { shop: { 'wpgw.io/mesh-outbound': './*' } } });
    const inherited = mutatePod({ pod: windowsPod({}), namespace: 'shop', ctx });
    expect(
      inherited.action === 'mutate' && JSON.parse(inherited.pod.metadata!.annotations!['wpgw.io/status']!).mesh,
    ).toEqual(['./*']);
    const off = mutatePod({ pod: windowsPod({ 'wpgw.io/mesh-outbound': 'none' }), namespace: 'shop', ctx });
    expect(off.action).toBe('mutate');
    if (off.action !== 'mutate') return;
    expect(off.pod.spec?.dnsConfig).toBeUndefined();
    expect(JSON.parse(off.pod.metadata!.annotations!['wpgw.io/status']!).mesh).toBeUndefined();
  });

  it("refuses what cannot work, naming the pod and the annotation: a bad scope (its own or the namespace's), hostAliases, no wpgw-dns, hostNetwork", () => {
    expect(
      mutatePod({ pod: windowsPod({ 'wpgw.io/mesh-outbound': 'sales' }), namespace: 'shop', ctx: staticContext() }),
    ).toEqual({
      action: 'deny',
      reason: 'invalid_mesh_outbound',
      message: expect.stringMatching(/^pod "legacy-1": invalid wpgw.io\/mesh-outbound entry "sales"/),
    });
    const nsBad = staticContext({ namespaceAnnotations: { shop: { 'wpgw.io/mesh-outbound': 'a/b' } } });
    expect(mutatePod({ pod: windowsPod({}), namespace: 'shop', ctx: nsBad })).toMatchObject({
      action: 'deny',
      message: expect.stringMatching(/\(from namespace "shop"\)$/),
    });
    expect(
      mutatePod({
        pod: windowsPod({ 'wpgw.io/mesh-outbound': './*', 'wpgw.io/resolver': 'hostAliases' }),
        namespace: 'shop',
        ctx: staticContext(),
      }),
    ).toMatchObject({
      action: 'deny',
      reason: 'mesh_outbound_needs_dns',
      message: expect.stringMatching(/needs wpgw.io\/resolver: dnsConfig/),
    });
    expect(
      mutatePod({
        pod: windowsPod({ 'wpgw.io/mesh-outbound': './*' }),
        namespace: 'shop',
        ctx: staticContext({ dnsIP: undefined }),
      }),
    ).toMatchObject({ action: 'deny', reason: 'no_dns_service' });
    const hostNet: PodLike = {
      ...windowsPod({ 'wpgw.io/mesh-outbound': './*' }),
      spec: { ...windowsPod({}).spec!, hostNetwork: true },
    };
    expect(mutatePod({ pod: hostNet, namespace: 'shop', ctx: staticContext() })).toMatchObject({
      action: 'deny',
      reason: 'host_network_outbound',
      message: expect.stringContaining('wpgw.io/mesh-outbound'),
    });
  });
});

describe('controller routing for mesh-wide outbound', () => {
  it("the controller's input carries every Service of the cluster and the namespace's Sidecars only where a scope is in use", () => {
    const sidecar: Sidecar = {
      metadata: { name: 'default', namespace: 'shop' },
      spec: { egress: [{ hosts: ['./*'] }] },
    };
    const view = (pods: ReturnType<typeof meshPod>[]) => ({
      services: (ns: string) => CLUSTER.filter((c) => c.metadata?.namespace === ns),
      service: () => undefined,
      managedPods: () => pods,
      ingresses: () => [],
      allServices: () => CLUSTER,
      sidecars: (): Sidecar[] | undefined => [sidecar],
      workload: () => undefined,
      istioObjects: () => ({ virtualServices: [], destinationRules: [] }),
      allRouting: () => ({ virtualServices: [], destinationRules: [] }),
    });
    const withMesh = buildNamespaceInput(view([meshPod('sales/*')]), namespaceObject('shop'));
    expect(withMesh.clusterServices).toHaveLength(CLUSTER.length);
    expect(withMesh.sidecars).toEqual([sidecar]);
    // Sidecars the controller cannot read (no CRD, no grant): said, not silently unnarrowed.
    const unreadable = buildNamespaceInput(
      { ...view([meshPod('sales/*')]), sidecars: () => undefined },
      namespaceObject('shop'),
    );
    expect(unreadable.sidecarsUnreadable).toBe(true);
    expect(desiredNamespaceState(unreadable, OPTS).conflicts).toContainEqual(
      expect.objectContaining({ subject: 'Namespace/shop', reason: 'SidecarsUnreadable' }),
    );
    expect(desiredNamespaceState(withMesh, OPTS).conflicts.map((c) => c.reason)).not.toContain('SidecarsUnreadable');
    const without = buildNamespaceInput(
      view([injectedPod({ name: 'legacy-abc', outbound: 'example.com:80' })]),
      namespaceObject('shop'),
    );
    expect(without.clusterServices).toBeUndefined();
    expect(without.sidecars).toBeUndefined();
  });

  it('a Service change in a namespace in scope enqueues the namespaces that route to it mesh-wide', () => {
    const view = {
      isOptedIn: (ns: string) => ns === 'shop' || ns === 'bank',
      optedInNamespaces: () => ['bank', 'shop'],
      meshWatchers: (ns: string) => (ns === 'sales' ? ['shop'] : []),
    };
    const ev = (ns: string) => ({
      source: 'services',
      resource: 'services' as const,
      kind: 'Service',
      type: 'add' as const,
      obj: { kind: 'Service', metadata: { name: 'x', namespace: ns } },
      old: undefined,
    });
    expect(namespacesForEvent(ev('sales'), view)).toEqual(['shop']);
    expect(namespacesForEvent(ev('bank'), view)).toEqual(['bank']);
    expect(namespacesForEvent(ev('quiet'), view)).toEqual([]);
  });
});
