// Desired state of one opted-in namespace (src/core/desired.ts + src/core/desired/*.ts).
// Inputs are produced by the real admission core (injectedPod / repointedService), so these tests
// consume exactly what the webhook writes. Facts about Istio come from
// /work/shared/reference/istio-wpgw-config.md (sections cited inline).
import fc from 'fast-check';
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { desiredNamespaceState } from '../../src/core/desired.js';
import type { DesiredOptions, DesiredState, KubeObject, NamespaceInput } from '../../src/core/desired-types.js';
import { INBOUND_POD_PORTS, OUTBOUND_POD_PORTS } from '../../src/names.js';
import {
  deepCopy,
  find,
  get,
  injectedPod,
  namespaceObject,
  ofKind,
  repointedService,
  service,
  spec,
} from './helpers/builders.js';
import { staticContext } from '../lib/admission.js';

const OPTS: DesiredOptions = {
  clusterDomain: 'cluster.local',
  defaultGatewayReplicas: 2,
  corednsImage: 'registry.example/coredns:test',
};
const GW = { 'wpgw.io/gateway': 'shop' };
const MANAGED_PODS = { podSelector: { matchLabels: { 'wpgw.io/managed': 'true' } } };
const GW_PODS = { podSelector: { matchLabels: GW } };
const ORDERS = 'orders.sales.svc.cluster.local';
const SEED_OUTBOUND = `${ORDERS}:9080\nexample.com:80+tls`;

function state(
  input: Partial<NamespaceInput> & { pods?: V1Pod[]; services?: V1Service[] },
  opts: Partial<DesiredOptions> = {},
): DesiredState {
  return desiredNamespaceState(
    {
      namespace: input.namespace ?? namespaceObject('shop'),
      pods: input.pods ?? [],
      services: input.services ?? [],
      clusterDnsIP: input.clusterDnsIP ?? '10.96.0.10',
    },
    { ...OPTS, ...opts },
  );
}

function liveGatewayService(clusterIP: string, namespace = 'shop'): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: 'wpgw',
      namespace,
      labels: { 'app.kubernetes.io/managed-by': 'wpgw', 'wpgw.io/for': 'namespace' },
    },
    spec: { clusterIP, selector: { 'wpgw.io/gateway': namespace }, ports: [{ port: 15021 }] },
  };
}

/** The seed: Windows Deployment "legacy" (two pods) behind Service legacy:8080->80, calling orders and example.com. */
function seed() {
  const pods = [
    injectedPod({ name: 'legacy-5c7d9-abcde', labels: { app: 'legacy' }, outbound: SEED_OUTBOUND, ip: '10.244.64.10' }),
    injectedPod({ name: 'legacy-5c7d9-fghij', labels: { app: 'legacy' }, outbound: SEED_OUTBOUND, ip: '10.244.64.11' }),
  ];
  const legacy = repointedService(
    service('legacy', 'shop', { app: 'legacy' }, [{ name: 'http', port: 8080, targetPort: 80 }]),
    { app: 'legacy' },
    { uid: 'uid-legacy' },
  );
  const inboundPort = legacy.spec!.ports![0]!.targetPort as number;
  return { pods, legacy, inboundPort, result: state({ pods, services: [legacy] }) };
}

function virtualServices(objects: KubeObject[]) {
  return ofKind(objects, 'VirtualService');
}

/** The outbound pod port the wpgw Service maps a dialled port to. */
function podPortFor(objects: KubeObject[], port: number): number {
  const p = (spec(get(objects, 'Service', 'wpgw')).ports as Array<{ port: number; targetPort: number }>).find(
    (x) => x.port === port,
  );
  if (!p) throw new Error(`wpgw Service has no port ${port}`);
  return p.targetPort;
}

describe("desired state: the seed's four flows", () => {
  const { result, inboundPort, legacy } = seed();
  const objects = result.objects;
  const p80 = podPortFor(objects, 80);
  const p9080 = podPortFor(objects, 9080);

  it('reports no conflicts', () => {
    expect(result.conflicts).toEqual([]);
  });

  it('the wpgw Service maps each dialled port to its own outbound gateway pod port', () => {
    const svc = get(objects, 'Service', 'wpgw');
    expect(spec(svc).selector).toEqual(GW);
    expect(spec(svc).type).toBe('ClusterIP');
    for (const p of [p80, p9080]) {
      expect(p).toBeGreaterThanOrEqual(OUTBOUND_POD_PORTS.min);
      expect(p).toBeLessThanOrEqual(OUTBOUND_POD_PORTS.max);
    }
    expect(p80).not.toBe(p9080);
    expect(spec(svc).ports).toEqual([
      { name: 'http-out-80', port: 80, targetPort: p80, protocol: 'TCP' },
      { name: 'http-out-9080', port: 9080, targetPort: p9080, protocol: 'TCP' },
      { name: 'status-port', port: 15021, targetPort: 15021, protocol: 'TCP' },
    ]);
  });

  it('the outbound Gateway listens on exactly those pod ports, plaintext HTTP, never on a Service port (§2.4)', () => {
    const gw = get(objects, 'Gateway', 'wpgw-out');
    expect(spec(gw).selector).toEqual(GW);
    const servers = spec(gw).servers as Array<{
      port: { number: number; protocol: string };
      hosts: string[];
      tls?: unknown;
    }>;
    expect(servers.map((s) => s.port.number).sort()).toEqual([p80, p9080].sort());
    for (const s of servers) {
      expect(s.port.protocol).toBe('HTTP');
      expect(s.tls).toBeUndefined();
      expect(s.hosts).toEqual(['./*']); // only VirtualServices of this namespace bind (§6)
    }
    // Istio translates a classic Gateway's server port through any Service selecting the gateway
    // pods: no server may use a `port` of such a Service.
    const selectingPorts = [get(objects, 'Service', 'wpgw'), legacy].flatMap((s) =>
      (spec(s as KubeObject).ports as Array<{ port: number }>).map((p) => p.port),
    );
    expect(selectingPorts).toEqual(expect.arrayContaining([80, 9080, 8080, 15021]));
    for (const s of [...servers, ...spec(get(objects, 'Gateway', 'wpgw-in-legacy')).servers])
      expect(selectingPorts).not.toContain(s.port.number);
  });

  it('outbound VirtualServices bind only to wpgw-out and match the server (pod) port', () => {
    const outbound = virtualServices(objects).filter((v) => v.metadata.name.startsWith('wpgw-out'));
    expect(outbound.map((v) => v.metadata.name).sort()).toEqual(['wpgw-out-example.com-80', `wpgw-out-${ORDERS}-9080`]);
    for (const v of outbound) {
      expect(spec(v).gateways).toEqual(['wpgw-out']);
      expect(spec(v).exportTo).toEqual(['.']);
    }
    const example = get(objects, 'VirtualService', 'wpgw-out-example.com-80');
    expect(spec(example).hosts).toEqual(['example.com']);
    expect(spec(example).http).toEqual([
      {
        match: [{ port: p80 }],
        rewrite: { authority: 'example.com' }, // upstream gets "example.com", not "example.com:80" (§7.3)
        route: [{ destination: { host: 'example.com', port: { number: 443 } } }],
      },
    ]);
    const orders = get(objects, 'VirtualService', `wpgw-out-${ORDERS}-9080`);
    // Dotted partial names match literally; the bare "orders" would be another namespace's (§2.1).
    expect([...spec(orders).hosts].sort()).toEqual(['orders.sales', 'orders.sales.svc', ORDERS]);
    expect(spec(orders).http).toEqual([
      { match: [{ port: p9080 }], route: [{ destination: { host: ORDERS, port: { number: 9080 } } }] },
    ]);
    expect(find(objects, 'VirtualService', 'wpgw-out-shortnames')).toBeUndefined();
  });

  it('example.com: a namespace-private MESH_EXTERNAL ServiceEntry on 443/HTTPS and TLS origination with SNI and SAN (§2.3, §7.10)', () => {
    const entries = ofKind(objects, 'ServiceEntry');
    expect(entries).toHaveLength(1);
    expect(spec(entries[0])).toEqual({
      hosts: ['example.com'],
      exportTo: ['.'],
      location: 'MESH_EXTERNAL',
      resolution: 'DNS',
      ports: [{ number: 443, name: 'https-443', protocol: 'HTTPS' }],
    });
    const rule = ofKind(objects, 'DestinationRule').find((d) => spec(d).host === 'example.com');
    expect(spec(rule)).toEqual({
      host: 'example.com',
      exportTo: ['.'],
      trafficPolicy: {
        portLevelSettings: [
          {
            port: { number: 443 },
            tls: { mode: 'SIMPLE', sni: 'example.com', subjectAltNames: ['example.com'], caCertificates: 'system' },
          },
        ],
      },
    });
  });

  it("orders gets no DestinationRule: the gateway uses auto mTLS, and a rule here would shadow sales' own (§2.3)", () => {
    const hosts = ofKind(objects, 'DestinationRule').map((d) => spec(d).host as string);
    expect(hosts.filter((h) => h.startsWith('orders'))).toEqual([]);
  });

  it('inbound: legacy-app keeps the original selector and ports and is owned by legacy', () => {
    const app = get(objects, 'Service', 'legacy-app');
    expect(spec(app)).toEqual({
      type: 'ClusterIP',
      selector: { app: 'legacy' },
      ports: [{ name: 'http', port: 8080, targetPort: 80, protocol: 'TCP' }],
    });
    expect(app.metadata.ownerReferences).toEqual([
      { apiVersion: 'v1', kind: 'Service', name: 'legacy', uid: 'uid-legacy', blockOwnerDeletion: true },
    ]);
  });

  it("inbound: an ISTIO_MUTUAL Gateway on legacy's gateway pod port, catching every Host, routing to legacy-app (§2.2, §3)", () => {
    expect(inboundPort).toBeGreaterThanOrEqual(INBOUND_POD_PORTS.min);
    expect(inboundPort).toBeLessThanOrEqual(INBOUND_POD_PORTS.max);
    expect(spec(get(objects, 'Gateway', 'wpgw-in-legacy'))).toEqual({
      selector: GW,
      servers: [
        {
          port: { number: inboundPort, name: 'https-in-8080', protocol: 'HTTPS' },
          hosts: ['./*'],
          tls: { mode: 'ISTIO_MUTUAL' },
        },
      ],
    });
    expect(spec(get(objects, 'VirtualService', 'wpgw-in-legacy'))).toEqual({
      hosts: ['*'],
      gateways: ['wpgw-in-legacy'],
      exportTo: ['.'],
      http: [
        {
          match: [{ port: inboundPort }],
          route: [{ destination: { host: 'legacy-app.shop.svc.cluster.local', port: { number: 8080 } } }],
        },
      ],
    });
  });

  it("inbound: no DestinationRule for legacy (callers' auto-mTLS follows the gateway pods' tlsMode label); the hop to the Windows pods is pinned plaintext", () => {
    // A DR for legacy would compete with the user's own DRs for it (first trafficPolicy wins).
    expect(ofKind(objects, 'DestinationRule').filter((d) => spec(d).host === 'legacy.shop.svc.cluster.local')).toEqual(
      [],
    );
    const toApp = ofKind(objects, 'DestinationRule').filter(
      (d) => spec(d).host === 'legacy-app.shop.svc.cluster.local',
    );
    // workloadSelector: istiod prefers it over users' selector-less DRs for the host, for the wpgw only
    expect(toApp.map(spec)).toEqual([
      {
        host: 'legacy-app.shop.svc.cluster.local',
        exportTo: ['.'],
        workloadSelector: { matchLabels: { 'wpgw.io/gateway': 'shop' } },
        trafficPolicy: { tls: { mode: 'DISABLE' } },
      },
    ]);
  });

  it('AuthorizationPolicy: outbound pod ports only from the pod IPs with the declared hosts, inbound ports only from principals', () => {
    const policy = get(objects, 'AuthorizationPolicy', 'wpgw');
    expect(spec(policy).selector).toEqual({ matchLabels: GW });
    expect(spec(policy).action).toBe('ALLOW');
    const rules = spec(policy).rules as Array<{
      from: Array<{ source: Record<string, string[]> }>;
      to: Array<{ operation: { ports: string[]; hosts?: string[] } }>;
    }>;
    expect(rules).toHaveLength(2);
    const [outbound, inbound] = rules;
    expect(outbound!.from).toEqual([{ source: { ipBlocks: ['10.244.64.10', '10.244.64.11'] } }]);
    const byPort = new Map(outbound!.to.map((t) => [t.operation.ports.join(), [...(t.operation.hosts ?? [])].sort()]));
    expect(byPort).toEqual(
      new Map([
        [String(p80), ['example.com', 'example.com:*']],
        [
          String(p9080),
          ['orders.sales', 'orders.sales.svc', 'orders.sales.svc:*', ORDERS, `${ORDERS}:*`, 'orders.sales:*'].sort(),
        ],
      ]),
    );
    expect(inbound).toEqual({
      from: [{ source: { principals: ['*'] } }],
      to: [{ operation: { ports: [String(inboundPort)] } }],
    });
  });

  it('NetworkPolicy: managed pods talk only to gateway pods (and kube-dns); gateway ingress is per port', () => {
    const pods = get(objects, 'NetworkPolicy', 'wpgw-managed-pods');
    expect(spec(pods)).toEqual({
      podSelector: MANAGED_PODS.podSelector,
      policyTypes: ['Ingress', 'Egress'],
      // Intended port-less rule: only the gateway may reach the Windows pods, on any app port.
      ingress: [{ from: [GW_PODS] }],
      egress: [
        { to: [GW_PODS] },
        {
          to: [
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
              podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
            },
          ],
          ports: [
            { protocol: 'UDP', port: 53 },
            { protocol: 'TCP', port: 53 },
          ],
        },
      ],
    });
    const gateway = spec(get(objects, 'NetworkPolicy', 'wpgw-gateway'));
    expect(gateway.podSelector).toEqual(GW_PODS.podSelector);
    expect(gateway.policyTypes).toEqual(['Ingress']);
    const ingress = gateway.ingress as Array<{ from?: unknown[]; ports?: Array<{ port: number; protocol: string }> }>;
    // An ingress rule without ports opens every port: there is none on the gateway.
    for (const rule of ingress) expect(rule.ports?.length).toBeGreaterThan(0);
    const rulesWith = (port: number) => ingress.filter((r) => r.ports!.some((p) => p.port === port));
    for (const p of [p80, p9080])
      expect(rulesWith(p)).toEqual([
        {
          from: [MANAGED_PODS],
          ports: [
            { protocol: 'TCP', port: p80 },
            { protocol: 'TCP', port: p9080 },
          ],
        },
      ]);
    expect(rulesWith(inboundPort)).toEqual([{ ports: [{ protocol: 'TCP', port: inboundPort }] }]); // mesh callers from anywhere
    expect(rulesWith(15021)).toEqual([{ ports: [{ protocol: 'TCP', port: 15021 }] }]); // kubelet probes
    expect(ingress.flatMap((r) => r.ports!.map((p) => p.port)).sort()).toEqual([p80, p9080, inboundPort, 15021].sort());
  });

  it('every object is namespaced to shop and labelled managed-by=wpgw with its owner', () => {
    const perService = new Set(['legacy-app', 'wpgw-in-legacy', 'wpgw-app-legacy']);
    for (const o of objects) {
      expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('shop');
      expect(o.metadata.labels?.['app.kubernetes.io/managed-by'], `${o.kind}/${o.metadata.name}`).toBe('wpgw');
      expect(o.metadata.labels?.['wpgw.io/for'], `${o.kind}/${o.metadata.name}`).toBe(
        perService.has(o.metadata.name) ? 'service.legacy' : 'namespace',
      );
    }
    // Names are unique per kind (server-side apply would merge duplicates into one object).
    const keys = objects.map((o) => `${o.kind}/${o.metadata.name}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('the gateway Deployment: Istio gateway injection, Linux nodes, a namespace-unique selector (§1A, §7.1, §7.12)', () => {
    const dep = get(objects, 'Deployment', 'wpgw');
    const s = spec(dep);
    expect(s.replicas).toBe(2);
    expect(s.selector).toEqual({ matchLabels: GW });
    expect(s.template.metadata.labels).toMatchObject({ ...GW, 'sidecar.istio.io/inject': 'true' });
    // mTLS to the gateway comes from the tlsMode label (callers' auto-mTLS), not from a DR for
    // each Service that a user's DR could out-merge (istio-user-policies.md; e2e istio-policies).
    expect(s.template.metadata.labels['security.istio.io/tlsMode']).toBe('istio');
    expect(s.template.metadata.annotations).toEqual({ 'inject.istio.io/templates': 'gateway' });
    expect(s.template.spec.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(s.template.spec.serviceAccountName).toBe('wpgw');
    expect(s.template.spec.containers).toHaveLength(1);
    expect(s.template.spec.containers[0]).toMatchObject({ name: 'istio-proxy', image: 'auto' });
    // The gateway must never resolve through wpgw-dns (DNS loop, §7.16).
    expect(s.template.spec.dnsConfig).toBeUndefined();
    expect(s.template.spec.dnsPolicy).toBeUndefined();
    expect(get(objects, 'ServiceAccount', 'wpgw')).toBeDefined();
    expect(spec(get(objects, 'PodDisruptionBudget', 'wpgw')).selector).toEqual({ matchLabels: GW });
    // Everything that should reach the gateway pods selects them with the same labels.
    for (const gw of ofKind(objects, 'Gateway')) expect(spec(gw).selector).toEqual(GW);
    expect(legacy.spec?.selector).toEqual(GW);

    const other = state({ namespace: namespaceObject('billing'), pods: [] });
    expect(spec(get(other.objects, 'Deployment', 'wpgw')).selector).toEqual({
      matchLabels: { 'wpgw.io/gateway': 'billing' },
    });
  });

  it('does not modify its input', () => {
    const s = seed();
    const input: NamespaceInput = {
      namespace: namespaceObject('shop'),
      pods: s.pods,
      services: [s.legacy],
      clusterDnsIP: '10.96.0.10',
    };
    const before = deepCopy(input);
    desiredNamespaceState(input, OPTS);
    expect(input).toEqual(before);
  });
});

describe('desired state: outbound edge cases', () => {
  it('two pods with tcp:// on one port: one route and a TcpPortConflict', () => {
    const r = state({
      pods: [
        injectedPod({ name: 'a', outbound: 'tcp://db1.example.com:5432', ip: '10.0.0.1' }),
        injectedPod({ name: 'b', outbound: 'tcp://db2.example.com:5432', ip: '10.0.0.2' }),
      ],
    });
    const vs = virtualServices(r.objects).filter((v) => spec(v).tcp);
    expect(vs).toHaveLength(1);
    expect(spec(vs[0]).tcp[0].route[0].destination).toEqual({ host: 'db1.example.com', port: { number: 5432 } });
    expect(r.conflicts).toHaveLength(1);
    expect(r.conflicts[0]).toMatchObject({ subject: 'Pod/b', reason: 'TcpPortConflict' });
    expect(r.conflicts[0]!.message).toContain('tcp://db2.example.com:5432');
    expect(r.conflicts[0]!.message).toContain('tcp://db1.example.com:5432');
    // Neither a ServiceEntry for the unrouted host nor an extra server.
    expect(ofKind(r.objects, 'ServiceEntry').map((s) => spec(s).hosts)).toEqual([['db1.example.com']]);
    expect(spec(get(r.objects, 'Gateway', 'wpgw-out')).servers).toEqual([
      { port: { number: podPortFor(r.objects, 5432), name: 'tcp-out-5432', protocol: 'TCP' }, hosts: ['./*'] },
    ]);
  });

  it('http and tls on one port: a PortProtocolConflict, only one family served (§2.4 rule 1)', () => {
    const r = state({
      pods: [
        injectedPod({ name: 'a', outbound: 'tls://secure.example.com:8443', ip: '10.0.0.1' }),
        injectedPod({ name: 'b', outbound: 'plain.example.com:8443', ip: '10.0.0.2' }),
      ],
    });
    const servers = spec(get(r.objects, 'Gateway', 'wpgw-out')).servers as Array<{ port: { protocol: string } }>;
    expect(servers).toHaveLength(1);
    expect(r.conflicts).toHaveLength(1);
    expect(r.conflicts[0]!.reason).toBe('PortProtocolConflict');
    const served = servers[0]!.port.protocol === 'HTTP' ? 'plain.example.com' : 'secure.example.com';
    const dropped = served === 'plain.example.com' ? 'secure.example.com' : 'plain.example.com';
    expect(r.conflicts[0]!.message).toContain(dropped);
    expect(virtualServices(r.objects).map((v) => v.metadata.name)).toEqual([`wpgw-out-${served}-8443`]);
    expect(ofKind(r.objects, 'ServiceEntry').map((s) => spec(s).hosts[0])).toEqual([served]);
  });

  it('a destination declared by two pods is routed once and allowed from both pods', () => {
    const r = state({
      pods: [
        injectedPod({ name: 'a', outbound: 'example.com:80+tls', ip: '10.0.0.1' }),
        injectedPod({ name: 'b', outbound: 'example.com:80+tls', ip: '10.0.0.2' }),
      ],
    });
    expect(r.conflicts).toEqual([]);
    expect(virtualServices(r.objects)).toHaveLength(1);
    expect(ofKind(r.objects, 'ServiceEntry')).toHaveLength(1);
    expect(ofKind(r.objects, 'DestinationRule')).toHaveLength(1);
    const rule = spec(get(r.objects, 'AuthorizationPolicy', 'wpgw')).rules[0];
    expect(rule.from).toEqual([{ source: { ipBlocks: ['10.0.0.1', '10.0.0.2'] } }]);
    expect(rule.to).toEqual([
      { operation: { ports: [String(podPortFor(r.objects, 80))], hosts: ['example.com', 'example.com:*'] } },
    ]);
  });

  it("one host:port declared differently by two pods: the first pod's declaration wins, the other is a DestinationConflict", () => {
    const r = state({
      pods: [
        injectedPod({ name: 'a', outbound: 'example.com:80+tls', ip: '10.0.0.1' }),
        injectedPod({ name: 'b', outbound: 'example.com:80', ip: '10.0.0.2' }),
      ],
    });
    expect(r.conflicts.map((c) => [c.subject, c.reason])).toEqual([['Pod/b', 'DestinationConflict']]);
    expect(spec(get(r.objects, 'VirtualService', 'wpgw-out-example.com-80')).http[0].route[0].destination.port).toEqual(
      { number: 443 },
    );
  });

  it('nameservers managed pods list themselves (AD DNS) are allowed by the egress policy; wpgw-dns and unmanaged pods add none', () => {
    const ad = injectedPod({ name: 'ad-1', outbound: 'example.com:80', ip: '10.0.0.1' });
    ad.spec = { ...ad.spec!, dnsPolicy: 'None', dnsConfig: { nameservers: ['10.1.0.4', 'fd00::53', '10.1.0.4'] } };
    const dnsMode = injectedPod({ name: 'dns-1', outbound: 'example.com:80', resolver: 'dnsConfig', ip: '10.0.0.2' });
    const unmanaged: V1Pod = {
      metadata: { name: 'linux-1', namespace: 'shop' },
      spec: { containers: [], dnsConfig: { nameservers: ['10.9.9.9'] } },
    };
    const egress = (pods: V1Pod[]) =>
      spec(get(state({ pods }).objects, 'NetworkPolicy', 'wpgw-managed-pods')).egress as Array<Record<string, unknown>>;
    expect(egress([ad, dnsMode, unmanaged]).at(-1)).toEqual({
      to: [{ ipBlock: { cidr: '10.1.0.4/32' } }, { ipBlock: { cidr: 'fd00::53/128' } }],
      ports: [
        { protocol: 'UDP', port: 53 },
        { protocol: 'TCP', port: 53 },
      ],
    });
    expect(JSON.stringify(egress([dnsMode, unmanaged]))).not.toContain('ipBlock');
  });

  it('+tls to an in-mesh Service (a pod admitted before admission denied it) is reported, not routed', () => {
    const pod = injectedPod({ name: 'a', outbound: 'orders.sales.svc:9080', ip: '10.0.0.1' });
    const record = JSON.parse(pod.metadata!.annotations!['wpgw.io/status']!) as { outbound: string[] };
    record.outbound = ['orders.sales.svc:9080+tls'];
    pod.metadata!.annotations!['wpgw.io/status'] = JSON.stringify(record);
    const r = state({ pods: [pod] });
    expect(r.conflicts.map((c) => c.reason)).toEqual(['TlsOriginationInMesh']);
    expect(virtualServices(r.objects)).toEqual([]);
    expect(find(r.objects, 'Gateway', 'wpgw-out')).toBeUndefined();
  });

  it('removing the last pod that declared a destination removes its routes, entries, rules and ports', () => {
    const a = injectedPod({ name: 'a', outbound: SEED_OUTBOUND, ip: '10.0.0.1' });
    const b = injectedPod({ name: 'b', outbound: 'example.com:80+tls', ip: '10.0.0.2' });
    const both = state({ pods: [a, b] });
    expect(find(both.objects, 'VirtualService', `wpgw-out-${ORDERS}-9080`)).toBeDefined();

    const onlyB = state({ pods: [b] });
    expect(find(onlyB.objects, 'VirtualService', `wpgw-out-${ORDERS}-9080`)).toBeUndefined();
    expect(find(onlyB.objects, 'VirtualService', 'wpgw-out-example.com-80')).toBeDefined();
    expect(spec(get(onlyB.objects, 'Service', 'wpgw')).ports.map((p: { port: number }) => p.port)).toEqual([80, 15021]);
    expect(spec(get(onlyB.objects, 'Gateway', 'wpgw-out')).servers).toHaveLength(1);
    expect(JSON.stringify(spec(get(onlyB.objects, 'AuthorizationPolicy', 'wpgw')))).not.toContain('orders');

    const none = state({ pods: [] });
    for (const kind of ['VirtualService', 'ServiceEntry', 'DestinationRule', 'Gateway'])
      expect(ofKind(none.objects, kind), kind).toEqual([]);
    expect(spec(get(none.objects, 'Service', 'wpgw')).ports.map((p: { port: number }) => p.port)).toEqual([15021]);
  });

  it('a same-namespace short name gets the FQDN routes plus an authority-regex route for the bare name (§2.1, §7.2)', () => {
    const r = state({ pods: [injectedPod({ name: 'a', outbound: 'rates:8080', ip: '10.0.0.1' })] });
    const port = podPortFor(r.objects, 8080);
    const fqdn = 'rates.shop.svc.cluster.local';
    const named = get(r.objects, 'VirtualService', 'wpgw-out-rates-8080');
    expect([...spec(named).hosts].sort()).toEqual(['rates.shop', 'rates.shop.svc', fqdn]);
    const short = get(r.objects, 'VirtualService', 'wpgw-out-shortnames');
    expect(spec(short).hosts).toEqual(['*']);
    expect(spec(short).gateways).toEqual(['wpgw-out']);
    const routes = spec(short).http as Array<{
      match: Array<{ port: number; authority: { regex: string } }>;
      route: unknown[];
    }>;
    expect(routes).toHaveLength(1);
    expect(routes[0]!.match).toHaveLength(1);
    expect(routes[0]!.match[0]!.port).toBe(port);
    expect(routes[0]!.route).toEqual([{ destination: { host: fqdn, port: { number: 8080 } } }]);
    // Every "*" route has an authority match, so an undeclared Host still gets 404 (no open proxy).
    const re = new RegExp(routes[0]!.match[0]!.authority.regex);
    for (const ok of ['rates', 'rates:8080', 'rates:80']) expect(re.test(ok), ok).toBe(true);
    for (const bad of ['ratesx', 'xrates', 'rates.evil.com', 'rates:', 'rates:80a', 'evil.com'])
      expect(re.test(bad), bad).toBe(false);
    // The bare name is also allowed by authz, with and without a port.
    const hosts = spec(get(r.objects, 'AuthorizationPolicy', 'wpgw')).rules[0].to[0].operation.hosts as string[];
    expect(hosts).toEqual(expect.arrayContaining(['rates', 'rates:*', fqdn, `${fqdn}:*`]));
    // In-cluster destinations keep their Host (no authority rewrite).
    expect(spec(named).http[0].rewrite).toBeUndefined();
  });

  it('a destination that is a re-pointed Service of the namespace goes straight to <svc>-app (§7.15)', () => {
    const legacy = repointedService(
      service('legacy', 'shop', { app: 'legacy' }, [{ name: 'http', port: 8080, targetPort: 80 }]),
      { app: 'legacy' },
    );
    const r = state({
      pods: [injectedPod({ name: 'caller', outbound: 'legacy:8080, legacy.shop.svc:8080', ip: '10.0.0.1' })],
      services: [legacy],
    });
    const app = { host: 'legacy-app.shop.svc.cluster.local', port: { number: 8080 } };
    for (const name of ['wpgw-out-legacy-8080', 'wpgw-out-legacy.shop.svc-8080']) {
      expect(spec(get(r.objects, 'VirtualService', name)).http[0].route).toEqual([{ destination: app }]);
    }
    expect(spec(get(r.objects, 'VirtualService', 'wpgw-out-shortnames')).http[0].route).toEqual([{ destination: app }]);
    // A Service of another namespace with the same name is not a neighbour.
    const remote = state({
      pods: [injectedPod({ name: 'caller', outbound: 'legacy.other.svc:8080', ip: '10.0.0.1' })],
      services: [legacy],
    });
    expect(
      spec(get(remote.objects, 'VirtualService', 'wpgw-out-legacy.other.svc-8080')).http[0].route[0].destination.host,
    ).toBe('legacy.other.svc.cluster.local');
  });

  it('an empty opted-in namespace still gets the gateway and a deny-all AuthorizationPolicy', () => {
    const r = state({});
    expect(r.conflicts).toEqual([]);
    expect(r.objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(
      [
        'AuthorizationPolicy/wpgw',
        'Deployment/wpgw',
        'NetworkPolicy/wpgw-gateway',
        'NetworkPolicy/wpgw-gateway-egress',
        'NetworkPolicy/wpgw-managed-pods',
        'PodDisruptionBudget/wpgw',
        'Service/wpgw',
        'ServiceAccount/wpgw',
      ].sort(),
    );
    // An ALLOW policy with no rules denies every request.
    expect(spec(get(r.objects, 'AuthorizationPolicy', 'wpgw'))).toEqual({
      selector: { matchLabels: GW },
      action: 'ALLOW',
    });
    expect(spec(get(r.objects, 'NetworkPolicy', 'wpgw-gateway')).ingress).toEqual([
      { ports: [{ protocol: 'TCP', port: 15021 }] },
    ]);
  });

  it('pods without IPs yet get no outbound authz rule (nothing is allowed from nowhere)', () => {
    const r = state({ pods: [injectedPod({ name: 'a', outbound: 'example.com:80' })] });
    expect(find(r.objects, 'VirtualService', 'wpgw-out-example.com-80')).toBeDefined();
    expect(spec(get(r.objects, 'AuthorizationPolicy', 'wpgw')).rules).toBeUndefined();
  });
});

describe('desired state: dnsConfig mode', () => {
  const dnsPods = [
    injectedPod({
      name: 'ledger-0',
      resolver: 'dnsConfig',
      outbound: 'tls://*.payments.example.com:443, rates:8080, example.com:80+tls',
      ip: '10.0.0.1',
    }),
    injectedPod({ name: 'export-1', resolver: 'dnsConfig', outbound: 'tcp://sftp.partner.example:22', ip: '10.0.0.2' }),
  ];
  const r = state({ pods: dnsPods, services: [liveGatewayService('10.96.100.10')] });

  it('runs wpgw-dns: ConfigMap, Deployment, PDB and Service', () => {
    for (const kind of ['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service'])
      expect(find(r.objects, kind, 'wpgw-dns'), kind).toBeDefined();
    const dep = spec(get(r.objects, 'Deployment', 'wpgw-dns'));
    expect(dep.template.spec.containers[0].image).toBe(OPTS.corednsImage);
    expect(dep.template.spec.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(dep.template.metadata.labels).toEqual({ 'wpgw.io/dns': 'shop', 'sidecar.istio.io/inject': 'false' });
    expect(dep.selector).toEqual({ matchLabels: { 'wpgw.io/dns': 'shop' } });
    expect(dep.template.spec.volumes).toEqual([{ name: 'config', configMap: { name: 'wpgw-dns' } }]);
    const svc = spec(get(r.objects, 'Service', 'wpgw-dns'));
    expect(svc.selector).toEqual({ 'wpgw.io/dns': 'shop' });
    expect(
      svc.ports.map(
        (p: { port: number; targetPort: number; protocol: string }) => `${p.port}/${p.protocol}->${p.targetPort}`,
      ),
    ).toEqual(['53/UDP->1053', '53/TCP->1053']);
    const containerPorts = dep.template.spec.containers[0].ports.map((p: { containerPort: number }) => p.containerPort);
    expect(containerPorts).toEqual([1053, 1053]);
  });

  it('the Corefile answers every declared name with the gateway address and wildcards by template', () => {
    const corefile = (get(r.objects, 'ConfigMap', 'wpgw-dns') as KubeObject & { data: { Corefile: string } }).data
      .Corefile;
    const hostsLine = corefile.split('\n').find((l) => l.trim().startsWith('10.96.100.10 '));
    expect(hostsLine?.trim().split(/\s+/)).toEqual([
      '10.96.100.10',
      'example.com',
      'rates',
      'rates.shop',
      'rates.shop.svc',
      'rates.shop.svc.cluster.local',
      'sftp.partner.example',
    ]);
    expect(corefile).not.toMatch(/^\s+10\.96\.100\.10 .*\*/m); // a hosts file cannot hold wildcards
    expect(corefile).toContain('template IN A payments.example.com {');
    expect(corefile).toContain('answer "{{ .Name }} 30 IN A 10.96.100.10"');
    expect(corefile).toContain('forward . 10.96.0.10');
    // The template's regex (Go RE2; this one is also valid JS) matches names under the zone only.
    const match = /match "([^"]+)"/.exec(corefile)?.[1];
    expect(match).toBeDefined();
    const re = new RegExp(match!);
    for (const ok of ['api.payments.example.com.', 'a.b.payments.example.com.']) expect(re.test(ok), ok).toBe(true);
    for (const bad of [
      'payments.example.com.',
      'evilpayments.example.com.',
      'api.payments.example.com.evil.',
      'api.payments.example.com',
    ])
      expect(re.test(bad), bad).toBe(false);
    // No IPv6 answer can route around the gateway.
    expect(corefile).toMatch(/template IN AAAA payments\.example\.com \{[^}]*rcode NOERROR/);
  });

  it('managed pods may query the wpgw-dns pods', () => {
    const egress = spec(get(r.objects, 'NetworkPolicy', 'wpgw-managed-pods')).egress as unknown[];
    expect(egress).toContainEqual({
      to: [{ podSelector: { matchLabels: { 'wpgw.io/dns': 'shop' } } }],
      ports: [
        { protocol: 'UDP', port: 1053 },
        { protocol: 'TCP', port: 1053 },
      ],
    });
    expect(egress).toHaveLength(3);
  });

  it('is also on when the namespace asks for the DNS server, and not in a pure hostAliases namespace', () => {
    const annotated = state({ namespace: namespaceObject('shop', { 'wpgw.io/dns-server': 'enabled' }) });
    expect(find(annotated.objects, 'Deployment', 'wpgw-dns')).toBeDefined();
    const byNamespaceMode = state({ namespace: namespaceObject('shop', { 'wpgw.io/resolver': 'dnsConfig' }) });
    expect(find(byNamespaceMode.objects, 'ConfigMap', 'wpgw-dns')).toBeDefined();
    const hostAliasesOnly = state({ pods: [injectedPod({ name: 'a', outbound: 'example.com:80', ip: '10.0.0.1' })] });
    expect(find(hostAliasesOnly.objects, 'Deployment', 'wpgw-dns')).toBeUndefined();
    expect(spec(get(hostAliasesOnly.objects, 'NetworkPolicy', 'wpgw-managed-pods')).egress).toHaveLength(2);
  });

  it('without the cluster DNS address it reports a conflict and forwards to the node resolver', () => {
    const input: NamespaceInput = {
      namespace: namespaceObject('shop'),
      pods: dnsPods,
      services: [liveGatewayService('10.96.100.10')],
    };
    const s = desiredNamespaceState(input, OPTS);
    expect(s.conflicts.map((c) => [c.subject, c.reason])).toEqual([['Namespace/shop', 'ClusterDnsUnknown']]);
    expect(
      (get(s.objects, 'ConfigMap', 'wpgw-dns') as KubeObject & { data: { Corefile: string } }).data.Corefile,
    ).toContain('forward . /etc/resolv.conf');
  });
});

describe('desired state: gateway address and replicas', () => {
  function podsRecording(ips: string[]): V1Pod[] {
    return ips.map((gatewayIP, i) =>
      injectedPod({
        name: `p-${i}`,
        outbound: 'example.com:80',
        ip: `10.0.1.${i + 1}`,
        ctx: staticContext({ gatewayIP }),
      }),
    );
  }

  it('with no live wpgw Service, the ClusterIP most hostAliases pods were injected with', () => {
    const pods = podsRecording(['10.96.0.99', '10.96.0.50', '10.96.0.50', '10.96.0.50']);
    expect(spec(get(state({ pods }).objects, 'Service', 'wpgw')).clusterIP).toBe('10.96.0.50');
    // dnsConfig pods do not vote (they carry no gateway address).
    const dns = [0, 1, 2, 3, 4].map((i) =>
      injectedPod({ name: `d-${i}`, resolver: 'dnsConfig', outbound: 'example.com:80', ip: `10.0.2.${i}` }),
    );
    expect(spec(get(state({ pods: [...pods, ...dns] }).objects, 'Service', 'wpgw')).clusterIP).toBe('10.96.0.50');
  });

  it('with a live wpgw Service, its ClusterIP (immutable), whatever the pods recorded', () => {
    const pods = podsRecording(['10.96.0.50', '10.96.0.50']);
    const r = state({ pods, services: [liveGatewayService('10.96.7.7')] });
    expect(spec(get(r.objects, 'Service', 'wpgw')).clusterIP).toBe('10.96.7.7');
    expect(
      spec(
        get(
          state({ pods, services: [liveGatewayService('10.96.7.7')] }, { pinnedGatewayIP: '10.96.1.1' }).objects,
          'Service',
          'wpgw',
        ),
      ).clusterIP,
    ).toBe('10.96.7.7');
  });

  it('a pinned address (render) applies when there is no live Service; otherwise none is requested', () => {
    expect(spec(get(state({}, { pinnedGatewayIP: '10.96.1.1' }).objects, 'Service', 'wpgw')).clusterIP).toBe(
      '10.96.1.1',
    );
    expect(spec(get(state({}).objects, 'Service', 'wpgw'))).not.toHaveProperty('clusterIP');
  });

  it('replicas come from the namespace annotation; an invalid value is a conflict and the default is used', () => {
    const replicas = (value: string | undefined) => {
      const s = state(
        { namespace: namespaceObject('shop', value === undefined ? undefined : { 'wpgw.io/gateway-replicas': value }) },
        { defaultGatewayReplicas: 3 },
      );
      return { replicas: spec(get(s.objects, 'Deployment', 'wpgw')).replicas as number, conflicts: s.conflicts };
    };
    expect(replicas(undefined)).toEqual({ replicas: 3, conflicts: [] });
    expect(replicas('1')).toEqual({ replicas: 1, conflicts: [] });
    expect(replicas('50')).toEqual({ replicas: 50, conflicts: [] });
    for (const bad of ['abc', '0', '51', '2.5', '-1', '']) {
      const got = replicas(bad);
      expect(got.replicas, bad).toBe(3);
      expect(got.conflicts, bad).toHaveLength(1);
      expect(got.conflicts[0], bad).toMatchObject({ subject: 'Namespace/shop', reason: 'InvalidReplicas' });
      expect(got.conflicts[0]!.message, bad).toContain(`"${bad}"`);
    }
  });
});

describe('desired state: Istio revision of the gateway pods', () => {
  // Istio's injector webhooks (istio-discovery chart, mutatingwebhook.yaml): per revision,
  // "rev.namespace" (ns istio.io/rev In [rev], istio-injection DoesNotExist) and "rev.object"
  // (ns has neither label; pod istio.io/rev In [rev]); the default revision's "object" webhook
  // requires the pod to have no istio.io/rev. Tags get the same pair under the tag's name.
  const ns = (labels: Record<string, string> = {}, annotations?: Record<string, string>) => {
    const n = namespaceObject('shop', annotations);
    n.metadata!.labels = { ...n.metadata!.labels, ...labels };
    return n;
  };
  const podLabels = (s: DesiredState) =>
    (spec(get(s.objects, 'Deployment', 'wpgw')).template as any).metadata.labels as Record<string, string>;
  const reasons = (s: DesiredState) => s.conflicts.map((c) => c.reason);

  it('none set: only sidecar.istio.io/inject=true (Istio default revision), no istio.io/rev', () => {
    const s = state({});
    expect(podLabels(s)['sidecar.istio.io/inject']).toBe('true');
    expect(podLabels(s)).not.toHaveProperty('istio.io/rev');
    expect(s.notes.join('\n')).toContain("Istio's default revision");
  });

  it("the controller's revision labels the gateway pods istio.io/rev; the selector stays the same", () => {
    const s = state({}, { istioRevision: 'asm-1-26' });
    expect(podLabels(s)).toMatchObject({
      'istio.io/rev': 'asm-1-26',
      'sidecar.istio.io/inject': 'true',
      'wpgw.io/gateway': 'shop',
    });
    // The selector is immutable on a Deployment: a revision change must not touch it.
    expect(spec(get(s.objects, 'Deployment', 'wpgw')).selector).toEqual(
      spec(get(state({}).objects, 'Deployment', 'wpgw')).selector,
    );
    expect(s.conflicts).toEqual([]);
    expect(s.notes.join('\n')).toContain('injected by Istio revision asm-1-26');
  });

  it('the namespace annotation wins over the controller default; the namespace istio.io/rev label over the default', () => {
    expect(
      podLabels(state({ namespace: ns({}, { 'wpgw.io/istio-revision': 'canary' }) }, { istioRevision: 'stable' }))[
        'istio.io/rev'
      ],
    ).toBe('canary');
    const labelled = state({ namespace: ns({ 'istio.io/rev': 'asm-1-25' }) }, { istioRevision: 'stable' });
    expect(podLabels(labelled)['istio.io/rev']).toBe('asm-1-25');
    expect(labelled.conflicts).toEqual([]);
  });

  it('an invalid annotation is a conflict and the fallback is used', () => {
    for (const bad of ['', 'Asm', 'a_b', '-x', 'x'.repeat(64)]) {
      const s = state({ namespace: ns({}, { 'wpgw.io/istio-revision': bad }) }, { istioRevision: 'stable' });
      expect(podLabels(s)['istio.io/rev'], bad).toBe('stable');
      expect(reasons(s), bad).toEqual(['InvalidIstioRevision']);
      expect(s.conflicts[0]!.message, bad).toContain(`"${bad}"`);
    }
  });

  it("Istio's namespace labels that override the pod's istio.io/rev are reported", () => {
    const injection = state({ namespace: ns({ 'istio-injection': 'enabled' }) }, { istioRevision: 'asm-1-26' });
    expect(reasons(injection)).toEqual(['IstioRevisionOverridden']);
    expect(injection.conflicts[0]!.message).toContain('istio-injection=enabled');
    const other = state({ namespace: ns({ 'istio.io/rev': 'asm-1-25' }, { 'wpgw.io/istio-revision': 'asm-1-26' }) });
    expect(reasons(other)).toEqual(['IstioRevisionOverridden']);
    expect(podLabels(other)['istio.io/rev']).toBe('asm-1-26');
    // Without a revision, istio-injection=enabled is the ordinary default-revision setup.
    expect(state({ namespace: ns({ 'istio-injection': 'enabled' }) }).conflicts).toEqual([]);
  });
});

describe('desired state: inbound edge cases', () => {
  it('a re-pointed Service whose port lost its gateway pod port is reported, and nothing listens for it', () => {
    const legacy = repointedService(
      service('legacy', 'shop', { app: 'legacy' }, [{ name: 'http', port: 8080, targetPort: 80 }]),
      { app: 'legacy' },
    );
    legacy.spec!.ports![0]!.targetPort = 'http';
    const r = state({ services: [legacy] });
    expect(r.conflicts.map((c) => [c.subject, c.reason])).toEqual([['Service/legacy', 'PortNotRepointed']]);
    expect(find(r.objects, 'Gateway', 'wpgw-in-legacy')).toBeUndefined();
    expect(find(r.objects, 'Service', 'legacy-app')).toBeDefined(); // the Windows pods stay reachable by name
    expect(spec(get(r.objects, 'AuthorizationPolicy', 'wpgw')).rules).toBeUndefined();
  });

  it('non-HTTP ports are served as TLS (ISTIO_MUTUAL) servers with tcp routes', () => {
    const svc = repointedService(
      service('mixed', 'shop', { app: 'mixed' }, [
        { name: 'http-web', port: 8080, targetPort: 80 },
        { name: 'db', port: 1433, targetPort: 1433 },
      ]),
      { app: 'mixed' },
    );
    const [web, db] = svc.spec!.ports!.map((p) => p.targetPort as number);
    const r = state({ services: [svc] });
    expect(spec(get(r.objects, 'Gateway', 'wpgw-in-mixed')).servers).toEqual([
      {
        port: { number: web, name: 'https-in-8080', protocol: 'HTTPS' },
        hosts: ['./*'],
        tls: { mode: 'ISTIO_MUTUAL' },
      },
      { port: { number: db, name: 'tls-in-1433', protocol: 'TLS' }, hosts: ['./*'], tls: { mode: 'ISTIO_MUTUAL' } },
    ]);
    const vs = spec(get(r.objects, 'VirtualService', 'wpgw-in-mixed'));
    expect(vs.http).toEqual([
      {
        match: [{ port: web }],
        route: [{ destination: { host: 'mixed-app.shop.svc.cluster.local', port: { number: 8080 } } }],
      },
    ]);
    expect(vs.tcp).toEqual([
      {
        match: [{ port: db }],
        route: [{ destination: { host: 'mixed-app.shop.svc.cluster.local', port: { number: 1433 } } }],
      },
    ]);
  });

  it('render has no UID: legacy-app then has no ownerReference', () => {
    const legacy = repointedService(service('legacy', 'shop', { app: 'legacy' }, [{ port: 8080 }]), { app: 'legacy' });
    expect(
      get(state({ services: [legacy] }).objects, 'Service', 'legacy-app').metadata.ownerReferences,
    ).toBeUndefined();
  });
});

describe('desired state: determinism', () => {
  function richInput() {
    const legacy = repointedService(
      service('legacy', 'shop', { app: 'legacy' }, [{ name: 'http', port: 8080, targetPort: 80 }]),
      { app: 'legacy' },
      { uid: 'u1' },
    );
    const billing = repointedService(
      service('billing', 'shop', { app: 'billing' }, [{ name: 'http', port: 8080, targetPort: 8080 }]),
      { app: 'billing' },
      { uid: 'u2' },
    );
    const pods = [
      injectedPod({ name: 'legacy-1', labels: { app: 'legacy' }, outbound: SEED_OUTBOUND, ip: '10.0.0.3' }),
      injectedPod({
        name: 'legacy-2',
        labels: { app: 'legacy' },
        outbound: `${SEED_OUTBOUND} rates:8080 tcp://db.example.com:5432`,
        ip: '10.0.0.1',
      }),
      injectedPod({
        name: 'billing-1',
        labels: { app: 'billing' },
        outbound: 'tcp://db2.example.com:5432, legacy:8080, example.com:80',
        ip: '10.0.0.2',
      }),
      injectedPod({
        name: 'ledger-1',
        resolver: 'dnsConfig',
        outbound: 'tls://*.payments.example.com:443',
        ip: '10.0.0.4',
      }),
    ];
    return { pods, services: [legacy, billing, liveGatewayService('10.96.100.10')] };
  }

  it('the same input twice gives deep-equal output', () => {
    const a = state(richInput());
    const b = state(richInput());
    expect(a.objects.length).toBeGreaterThan(20);
    expect(a.conflicts.length).toBeGreaterThan(0); // the input exercises the conflict paths too
    expect(b).toEqual(a);
  });

  // 50 shuffles of pods and Services.
  it('shuffled input order gives the same objects and conflicts', () => {
    const base = state(richInput());
    const { pods, services } = richInput();
    fc.assert(
      fc.property(
        fc.shuffledSubarray(pods, { minLength: pods.length }),
        fc.shuffledSubarray(services, { minLength: services.length }),
        (p, s) => {
          const got = state({ pods: p, services: s });
          expect(got.objects).toEqual(base.objects);
          expect(got.conflicts).toEqual(base.conflicts);
        },
      ),
      { numRuns: 50 },
    );
  });
});
