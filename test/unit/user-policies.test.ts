// Users' own Istio policies for re-pointed Services (issue 13, docs/user-policies.md): what the
// desired state makes of them. Inputs come from the real admission core (repointedService).
import { readFileSync } from 'node:fs';
import type { V1Deployment, V1Service } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { desiredNamespaceState } from '../../src/core/desired.js';
import { render } from '../../src/render.js';
import { INBOUND_POD_PORTS } from '../../src/names.js';
import type { DesiredOptions, DesiredState, KubeObject, NamespaceInput } from '../../src/core/desired-types.js';
import { get, injectedPod, namespaceObject, ofKind, repointedService, service, spec } from './helpers/builders.js';

const OPTS: DesiredOptions = {
  clusterDomain: 'cluster.local',
  defaultGatewayReplicas: 2,
  corednsImage: 'registry.example/coredns:test',
};
const LEGACY = 'legacy.shop.svc.cluster.local';

function legacy() {
  return repointedService(
    service('legacy', 'shop', { app: 'legacy' }, [{ name: 'http', port: 8080, targetPort: 80 }]),
    { app: 'legacy' },
    { uid: 'uid-legacy' },
  );
}

function state(extra: Partial<NamespaceInput> = {}): DesiredState {
  return desiredNamespaceState(
    {
      namespace: namespaceObject('shop'),
      pods: [
        injectedPod({
          name: 'legacy-1',
          labels: { app: 'legacy', version: 'v1' },
          outbound: 'example.com:80',
          ip: '10.244.64.10',
        }),
      ],
      services: [legacy()],
      clusterDnsIP: '10.96.0.10',
      ...extra,
    },
    OPTS,
  );
}

/** The live gateway Deployment as the API server reports it. */
function liveGateway(o: { labelled: boolean; ready: boolean }): V1Deployment {
  return {
    metadata: { name: 'wpgw', namespace: 'shop', generation: 3, labels: { 'app.kubernetes.io/managed-by': 'wpgw' } },
    spec: {
      replicas: 2,
      selector: { matchLabels: { 'wpgw.io/gateway': 'shop' } },
      template: {
        metadata: {
          labels: { 'wpgw.io/gateway': 'shop', ...(o.labelled ? { 'security.istio.io/tlsMode': 'istio' } : {}) },
        },
      },
    },
    status: {
      observedGeneration: o.ready ? 3 : 2,
      replicas: 2,
      readyReplicas: 2,
      updatedReplicas: o.ready ? 2 : 1,
      availableReplicas: 2,
    },
  };
}

const callerRules = (s: DesiredState) => ofKind(s.objects, 'DestinationRule').filter((d) => spec(d).host === LEGACY);

describe('item 5: callers reach the wpgw over mTLS without a DestinationRule for <name>', () => {
  it("the gateway pods carry security.istio.io/tlsMode=istio, so callers' auto-mTLS picks Istio mTLS", () => {
    const dep = ofKind(state().objects, 'Deployment').find((d) => d.metadata.name === 'wpgw');
    expect(spec(dep).template.metadata.labels['security.istio.io/tlsMode']).toBe('istio');
  });

  it("no caller-side DestinationRule for <name> (it would compete with the user's DRs for that host)", () => {
    expect(callerRules(state())).toEqual([]);
    expect(callerRules(state({ gatewayDeployment: liveGateway({ labelled: true, ready: true }) }))).toEqual([]);
  });

  it('upgrade: while the live gateway is not yet rolled out with the label, the ISTIO_MUTUAL DR for <name> stays', () => {
    for (const live of [liveGateway({ labelled: false, ready: true }), liveGateway({ labelled: true, ready: false })]) {
      const rules = callerRules(state({ gatewayDeployment: live }));
      expect(rules.map((r) => ({ name: r.metadata.name, spec: spec(r) }))).toEqual([
        { name: 'wpgw-in-legacy', spec: { host: LEGACY, trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } } },
      ]);
      // labelled like every other per-Service object, so prune and opt-out find it
      expect(rules[0]!.metadata.labels).toMatchObject({
        'app.kubernetes.io/managed-by': 'wpgw',
        'wpgw.io/for': 'service.legacy',
      });
    }
  });
});

// ------------------------------------------------------------------ items 1-2: routing at the wpgw hop

const APP = 'legacy-app.shop.svc.cluster.local';

function istioObj(
  kind: 'VirtualService' | 'DestinationRule',
  name: string,
  spec: Record<string, unknown>,
  created = '2026-12-01T10:00:00Z',
  labels?: Record<string, string>,
): KubeObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind,
    metadata: {
      name,
      namespace: 'shop',
      creationTimestamp: created,
      ...(labels ? { labels } : {}),
    } as KubeObject['metadata'],
    spec,
  };
}

/** What a user writes to split 90/10 between two Windows versions, with retries, a timeout and a fault. */
function splitDelegate(name = 'legacy-routes', created?: string): KubeObject {
  return istioObj(
    'VirtualService',
    name,
    {
      http: [
        {
          name: 'split',
          route: [
            { destination: { host: 'legacy-app', subset: 'v1' }, weight: 90 },
            { destination: { host: 'legacy-app', subset: 'v2' }, weight: 10 },
          ],
          retries: { attempts: 3, retryOn: '5xx' },
          timeout: '5s',
          fault: { abort: { httpStatus: 418, percentage: { value: 1 } } },
        },
      ],
    },
    created,
  );
}

function versionsRule(extra: Record<string, unknown> = {}): KubeObject {
  return istioObj('DestinationRule', 'legacy-app', {
    host: 'legacy-app',
    trafficPolicy: { outlierDetection: { consecutive5xxErrors: 3, interval: '10s', baseEjectionTime: '30s' } },
    subsets: [
      { name: 'v1', labels: { version: 'v1' } },
      { name: 'v2', labels: { version: 'v2' } },
    ],
    ...extra,
  });
}

const withIstio = (virtualServices: KubeObject[], destinationRules: KubeObject[] = []) =>
  state({ istio: { virtualServices, destinationRules } });
const root = (s: DesiredState) => spec(get(s.objects, 'VirtualService', 'wpgw-in-legacy'));
const appRule = (s: DesiredState) => spec(get(s.objects, 'DestinationRule', 'wpgw-app-legacy'));
const inboundPort = () => legacy().spec!.ports![0]!.targetPort as number;

describe('items 1-2: a delegate VirtualService and a DestinationRule for <name>-app act on the wpgw hop', () => {
  it("the root wpgw-in-legacy hands its HTTP route to the user's delegate, with the plain route after it", () => {
    const s = withIstio([splitDelegate()], [versionsRule()]);
    expect(s.conflicts).toEqual([]);
    expect(root(s)).toEqual({
      hosts: ['*'],
      gateways: ['wpgw-in-legacy'],
      exportTo: ['.'],
      http: [
        { name: 'user-8080', match: [{ port: inboundPort() }], delegate: { name: 'legacy-routes', namespace: 'shop' } },
        { match: [{ port: inboundPort() }], route: [{ destination: { host: APP, port: { number: 8080 } } }] },
      ],
    });
  });

  it("the wpgw's DR for legacy-app carries the user's subsets and traffic policy, TLS pinned to DISABLE", () => {
    expect(appRule(withIstio([splitDelegate()], [versionsRule()]))).toEqual({
      host: APP,
      exportTo: ['.'],
      workloadSelector: { matchLabels: { 'wpgw.io/gateway': 'shop' } },
      trafficPolicy: {
        outlierDetection: { consecutive5xxErrors: 3, interval: '10s', baseEjectionTime: '30s' },
        tls: { mode: 'DISABLE' },
      },
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' } },
      ],
    });
  });

  it("users' objects are never written: nothing desired has their names, and they are left as they were", () => {
    const vs = splitDelegate();
    const dr = versionsRule();
    const before = JSON.stringify([vs, dr]);
    const s = withIstio([vs], [dr]);
    expect(JSON.stringify([vs, dr])).toBe(before);
    expect(
      s.objects.filter((o) => ['legacy-routes', 'legacy-app'].includes(o.metadata.name) && o.kind !== 'Service'),
    ).toEqual([]);
    for (const o of s.objects) expect(o.metadata.labels?.['app.kubernetes.io/managed-by']).toBe('wpgw');
  });

  it('TLS toward the Windows pods: ISTIO_MUTUAL is reported and replaced by DISABLE; SIMPLE (the app terminates TLS) is kept', () => {
    const mutual = withIstio(
      [],
      [
        versionsRule({
          trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } },
          subsets: [{ name: 'v1', labels: { version: 'v1' }, trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } }],
        }),
      ],
    );
    expect(appRule(mutual).trafficPolicy).toEqual({ tls: { mode: 'DISABLE' } });
    expect(appRule(mutual).subsets[0].trafficPolicy).toEqual({ tls: { mode: 'DISABLE' } });
    expect(mutual.conflicts.map((c) => [c.subject, c.reason])).toEqual([
      ['DestinationRule/legacy-app', 'AppTlsIstioMutual'],
      ['DestinationRule/legacy-app', 'AppTlsIstioMutual'],
    ]);
    const simple = withIstio(
      [],
      [versionsRule({ trafficPolicy: { tls: { mode: 'SIMPLE', sni: 'legacy.internal' } } })],
    );
    expect(appRule(simple).trafficPolicy).toEqual({ tls: { mode: 'SIMPLE', sni: 'legacy.internal' } });
    expect(simple.conflicts).toEqual([]);
  });

  it('a second delegate or DR for the same Service is reported on it, the older one is used', () => {
    const s = withIstio(
      [splitDelegate('newer', '2026-12-01T11:00:00Z'), splitDelegate('older', '2026-12-01T09:00:00Z')],
      [versionsRule(), istioObj('DestinationRule', 'zz-app', { host: APP }, '2026-12-01T12:00:00Z')],
    );
    expect(root(s).http[0].delegate).toEqual({ name: 'older', namespace: 'shop' });
    expect(s.conflicts.map((c) => [c.subject, c.reason])).toEqual([
      ['VirtualService/newer', 'MultipleDelegates'],
      ['DestinationRule/zz-app', 'MultipleDestinationRules'],
    ]);
  });

  it('what a delegate cannot do at the wpgw is reported: port and source matches, a route back to <name>, gateways', () => {
    const bad = istioObj('VirtualService', 'bad', {
      http: [
        { name: 'p', match: [{ port: 8080 }], route: [{ destination: { host: 'legacy-app' } }] },
        { match: [{ sourceLabels: { app: 'frontend' } }], route: [{ destination: { host: 'legacy-app' } }] },
        { name: 'loop', route: [{ destination: { host: 'legacy' } }, { destination: { host: 'legacy-app' } }] },
      ],
    });
    const s = withIstio([bad]);
    expect(root(s).http[0].delegate).toEqual({ name: 'bad', namespace: 'shop' });
    expect(s.conflicts.map((c) => c.reason)).toEqual(['DelegatePortMatch', 'DelegateSourceMatch', 'DelegateLoop']);
    expect(s.conflicts[0]!.message).toContain('route "p" matches port 8080');
    const gw = withIstio([
      istioObj('VirtualService', 'gw', {
        gateways: ['mesh'],
        http: [{ route: [{ destination: { host: 'legacy-app' } }] }],
      }),
    ]);
    expect(gw.conflicts.map((c) => [c.subject, c.reason])).toEqual([['VirtualService/gw', 'DelegateWithGateways']]);
    expect(root(gw).http).toHaveLength(1); // not used: the plain route only
  });

  it("VirtualServices with hosts, other Services' routes and wpgw's own objects are not delegates", () => {
    const s = withIstio([
      istioObj('VirtualService', 'caller', {
        hosts: ['legacy-app'],
        http: [{ route: [{ destination: { host: 'legacy-app' } }] }],
      }),
      istioObj('VirtualService', 'other', {
        http: [{ route: [{ destination: { host: 'orders.sales.svc.cluster.local' } }] }],
      }),
      istioObj('VirtualService', 'ours', { http: [{ route: [{ destination: { host: 'legacy-app' } }] }] }, undefined, {
        'app.kubernetes.io/managed-by': 'wpgw',
      }),
    ]);
    expect(root(s).http).toHaveLength(1);
    expect(root(s).http[0].route).toBeDefined();
    expect(s.conflicts).toEqual([]);
  });

  it('a Service without an HTTP port cannot hand over to a delegate: reported, its TCP route stays', () => {
    const tcp = repointedService(service('legacy', 'shop', { app: 'legacy' }, [{ name: 'db', port: 1433 }]), {
      app: 'legacy',
    });
    const s = state({ services: [tcp], istio: { virtualServices: [splitDelegate()], destinationRules: [] } });
    expect(s.conflicts.map((c) => c.reason)).toEqual(['DelegateWithoutHttpPort']);
    expect(root(s).http).toBeUndefined();
    expect(root(s).tcp).toHaveLength(1);
  });

  it("ClientIP session affinity is kept beside the user's DR unless it sets its own load balancer (then reported)", () => {
    const affine = repointedService(
      {
        ...service('legacy', 'shop', { app: 'legacy' }, [{ name: 'http', port: 8080, targetPort: 80 }]),
        spec: {
          selector: { app: 'legacy' },
          ports: [{ name: 'http', port: 8080, targetPort: 80 }],
          sessionAffinity: 'ClientIP',
        },
      },
      { app: 'legacy' },
    );
    const keep = state({ services: [affine], istio: { virtualServices: [], destinationRules: [versionsRule()] } });
    expect(appRule(keep).trafficPolicy.loadBalancer).toEqual({ consistentHash: { useSourceIp: true } });
    const own = state({
      services: [affine],
      istio: {
        virtualServices: [],
        destinationRules: [versionsRule({ trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' } } })],
      },
    });
    expect(appRule(own).trafficPolicy.loadBalancer).toEqual({ simple: 'LEAST_REQUEST' });
    expect(own.conflicts.map((c) => c.reason)).toEqual(['AffinityOverridden']);
  });
});

describe("wpgw render takes the user's Istio objects from its input (examples/user-policies.yaml)", () => {
  const input = readFileSync(new URL('../../examples/user-policies.yaml', import.meta.url), 'utf8');
  const out = render(input, { gatewayIP: '10.96.100.10' });
  const docs = parseAllDocuments(out.yaml).map((d) => d.toJS() as KubeObject);
  const pick = (kind: string, name: string) => docs.find((d) => d.kind === kind && d.metadata.name === name);

  it('renders without errors or conflicts, the root delegating to legacy-routes, the DR carrying the subsets', () => {
    expect(out.errors).toEqual([]);
    expect(out.report.filter((l) => l.startsWith('conflict:'))).toEqual([]);
    expect(spec(pick('VirtualService', 'wpgw-in-legacy')).http[0].delegate).toEqual({
      name: 'legacy-routes',
      namespace: 'shop',
    });
    expect(spec(pick('DestinationRule', 'wpgw-app-legacy')).subsets.map((s: { name: string }) => s.name)).toEqual([
      'v1',
      'v2',
    ]);
  });

  it("passes the user's VirtualService and DestinationRule through unchanged", () => {
    const mine = parseAllDocuments(input)
      .map((d) => d.toJS() as KubeObject)
      .filter((d) => d.apiVersion.startsWith('networking.istio.io/'));
    expect(mine).toHaveLength(2);
    for (const o of mine) expect(pick(o.kind, o.metadata.name)).toEqual(o);
  });

  it('rendering the output again changes nothing', () => {
    expect(render(out.yaml, { gatewayIP: '10.96.100.10' }).yaml).toBe(out.yaml);
  });
});

// ------------------------------------------------------------------ item 3: AuthorizationPolicy

/** legacy (pods app=legacy) and stock (pods app=stock) re-pointed; one Windows pod each. */
function twoServices(policies: KubeObject[]): DesiredState {
  const stock = repointedService(
    service('stock', 'shop', { app: 'stock' }, [{ name: 'http', port: 9090, targetPort: 8080 }]),
    { app: 'stock' },
  );
  return desiredNamespaceState(
    {
      namespace: namespaceObject('shop'),
      pods: [
        injectedPod({ name: 'legacy-1', labels: { app: 'legacy' }, outbound: 'example.com:80', ip: '10.244.64.10' }),
        injectedPod({ name: 'stock-1', labels: { app: 'stock' }, ip: '10.244.64.20' }),
      ],
      services: [legacy(), stock],
      clusterDnsIP: '10.96.0.10',
      istio: { virtualServices: [], destinationRules: [], authorizationPolicies: policies },
    },
    OPTS,
  );
}

function userPolicy(name: string, spec: Record<string, unknown>): KubeObject {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name, namespace: 'shop', creationTimestamp: '2026-12-01T10:00:00Z' } as KubeObject['metadata'],
    spec,
  };
}

/** The gateway listener ports serving a re-pointed Service (its Gateway's servers). */
const ports = (s: DesiredState, svc: string) =>
  (spec(get(s.objects, 'Gateway', `wpgw-in-${svc}`)).servers as Array<{ port: { number: number } }>).map((x) =>
    String(x.port.number),
  );
const wpgwRules = (s: DesiredState) =>
  spec(get(s.objects, 'AuthorizationPolicy', 'wpgw')).rules as Array<{
    from: unknown;
    to: Array<{ operation: { ports: string[] } }>;
  }>;
const FRONTEND = 'cluster.local/ns/shop/sa/frontend';

describe("item 3: a user's AuthorizationPolicy for the Windows pods is carried to the wpgw, scoped to its Services' listener ports", () => {
  it("DENY selecting the Windows pods: copied onto the gateway pods, every rule scoped to legacy's listener port only", () => {
    const s = twoServices([
      userPolicy('deny-frontend', {
        selector: { matchLabels: { app: 'legacy' } },
        action: 'DENY',
        rules: [{ from: [{ source: { principals: [FRONTEND] } }] }],
      }),
    ]);
    expect(s.conflicts).toEqual([]);
    const carried = get(s.objects, 'AuthorizationPolicy', 'wpgw-authz-deny-frontend');
    expect(carried.metadata.labels).toMatchObject({
      'app.kubernetes.io/managed-by': 'wpgw',
      'wpgw.io/for': 'namespace',
    });
    expect(spec(carried)).toEqual({
      selector: { matchLabels: { 'wpgw.io/gateway': 'shop' } },
      action: 'DENY',
      rules: [{ from: [{ source: { principals: [FRONTEND] } }], to: [{ operation: { ports: ports(s, 'legacy') } }] }],
    });
    // wpgw's own ALLOW is unchanged: stock and the egress still allowed
    expect(wpgwRules(s).at(-1)!.to[0]!.operation.ports.sort()).toEqual(
      [...ports(s, 'legacy'), ...ports(s, 'stock')].sort(),
    );
  });

  it("ALLOW with targetRefs to the Service: scoped copy, and legacy's port leaves wpgw's own ALLOW (the compensating rule keeps stock and egress)", () => {
    const s = twoServices([
      userPolicy('allow-frontend', {
        targetRefs: [{ kind: 'Service', group: '', name: 'legacy' }],
        action: 'ALLOW',
        rules: [{ from: [{ source: { principals: [FRONTEND] } }], to: [{ operation: { methods: ['GET'] } }] }],
      }),
    ]);
    expect(s.conflicts).toEqual([]);
    expect(spec(get(s.objects, 'AuthorizationPolicy', 'wpgw-authz-allow-frontend')).rules).toEqual([
      {
        from: [{ source: { principals: [FRONTEND] } }],
        to: [{ operation: { methods: ['GET'], ports: ports(s, 'legacy') } }],
      },
    ]);
    const rules = wpgwRules(s);
    expect(rules.at(-1)).toEqual({
      from: [{ source: { principals: ['*'] } }],
      to: [{ operation: { ports: ports(s, 'stock') } }],
    });
    expect(rules[0]!.from).toEqual([{ source: { ipBlocks: ['10.244.64.10', '10.244.64.20'] } }]); // egress rule untouched
  });

  it("ALLOW without rules (deny all to legacy): nothing copied, legacy's port simply leaves wpgw's own ALLOW", () => {
    const s = twoServices([userPolicy('nothing', { selector: { matchLabels: { app: 'legacy' } } })]);
    expect(ofKind(s.objects, 'AuthorizationPolicy').map((o) => o.metadata.name)).toEqual(['wpgw']);
    expect(wpgwRules(s).at(-1)!.to[0]!.operation.ports).toEqual(ports(s, 'stock'));
  });

  it('AUDIT and CUSTOM are carried with their provider; application ports in rules become listener ports', () => {
    const s = twoServices([
      userPolicy('audit', {
        selector: { matchLabels: { app: 'stock' } },
        action: 'AUDIT',
        rules: [{ to: [{ operation: { ports: ['8080'], paths: ['/admin'] } }] }],
      }),
      userPolicy('ext', {
        selector: { matchLabels: { app: 'stock' } },
        action: 'CUSTOM',
        provider: { name: 'opa' },
        rules: [{ to: [{ operation: { paths: ['/api/*'] } }] }],
      }),
    ]);
    expect(s.conflicts).toEqual([]);
    expect(spec(get(s.objects, 'AuthorizationPolicy', 'wpgw-authz-audit')).rules).toEqual([
      { to: [{ operation: { ports: ports(s, 'stock'), paths: ['/admin'] } }] },
    ]);
    expect(spec(get(s.objects, 'AuthorizationPolicy', 'wpgw-authz-ext'))).toMatchObject({
      action: 'CUSTOM',
      provider: { name: 'opa' },
      rules: [{ to: [{ operation: { paths: ['/api/*'], ports: ports(s, 'stock') } }] }],
    });
  });

  it('what cannot be carried faithfully is reported, not dropped: destination.ip, Windows ServiceAccounts as sources, remoteIpBlocks, unknown ports', () => {
    const s = twoServices([
      userPolicy('odd', {
        selector: { matchLabels: { app: 'legacy' } },
        action: 'DENY',
        rules: [
          { from: [{ source: { principals: ['cluster.local/ns/shop/sa/default'] } }] },
          {
            from: [{ source: { remoteIpBlocks: ['192.0.2.0/24'] } }],
            when: [{ key: 'destination.ip', values: ['10.244.64.10'] }],
          },
          { to: [{ operation: { ports: ['9999'] } }] },
        ],
      }),
    ]);
    expect(s.conflicts.map((c) => [c.subject, c.reason])).toEqual([
      ['AuthorizationPolicy/odd', 'PolicyNotFaithful'],
      ['AuthorizationPolicy/odd', 'PolicyNotFaithful'],
      ['AuthorizationPolicy/odd', 'PolicyNotFaithful'],
      ['AuthorizationPolicy/odd', 'PolicyNotFaithful'],
    ]);
    expect(s.conflicts.map((c) => c.message).join('\n')).toMatch(
      /Windows pod's ServiceAccount[\s\S]*remoteIpBlocks[\s\S]*destination\.ip[\s\S]*ports 9999/,
    );
    // the first two rules are still carried (as Istio will evaluate them at the wpgw); the port-only one matches nothing there
    expect(spec(get(s.objects, 'AuthorizationPolicy', 'wpgw-authz-odd')).rules).toHaveLength(2);
  });

  it("a policy for only some of a Service's pods, and namespace-wide policies, are reported", () => {
    const pods = [
      injectedPod({ name: 'legacy-1', labels: { app: 'legacy', version: 'v1' }, ip: '10.244.64.10' }),
      injectedPod({ name: 'legacy-2', labels: { app: 'legacy', version: 'v2' }, ip: '10.244.64.11' }),
    ];
    const s = state({
      pods,
      istio: {
        virtualServices: [],
        destinationRules: [],
        authorizationPolicies: [
          userPolicy('v2-only', {
            selector: { matchLabels: { version: 'v2' } },
            action: 'DENY',
            rules: [{ from: [{ source: { principals: [FRONTEND] } }] }],
          }),
          userPolicy('ns-wide', { action: 'DENY', rules: [{ from: [{ source: { namespaces: ['other'] } }] }] }),
        ],
      },
    });
    expect(s.conflicts.map((c) => [c.subject, c.reason])).toEqual([
      ['AuthorizationPolicy/ns-wide', 'NamespacePolicyOnGateway'],
      ['AuthorizationPolicy/v2-only', 'PolicySelectsPartOfService'],
    ]);
    expect(get(s.objects, 'AuthorizationPolicy', 'wpgw-authz-v2-only')).toBeDefined();
    expect(
      ofKind(s.objects, 'AuthorizationPolicy')
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(['wpgw', 'wpgw-authz-v2-only']);
  });
});

// ------------------------------------------------------------------ items 6 and 4: reported, never silent

function secObj(
  kind: 'PeerAuthentication' | 'RequestAuthentication',
  name: string,
  spec: Record<string, unknown>,
): KubeObject {
  return { apiVersion: 'security.istio.io/v1', kind, metadata: { name, namespace: 'shop' }, spec };
}

const reasons = (s: DesiredState) => s.conflicts.map((c) => [c.subject, c.reason]);

describe("item 6: users' objects that break or miss the re-pointed Service are reported on them", () => {
  it('a caller-side subset route to legacy (every request would 503), and a caller DR with subsets', () => {
    const s = withIstio(
      [
        istioObj('VirtualService', 'legacy-canary', {
          hosts: ['legacy'],
          http: [{ route: [{ destination: { host: 'legacy', subset: 'v2' } }] }],
        }),
      ],
      [istioObj('DestinationRule', 'legacy', { host: LEGACY, subsets: [{ name: 'v2', labels: { version: 'v2' } }] })],
    );
    expect(reasons(s)).toEqual([
      ['VirtualService/legacy-canary', 'CallerSubsetRoute'],
      ['DestinationRule/legacy', 'CallerSubsets'],
    ]);
    expect(s.conflicts[0]!.message).toContain('503');
  });

  it('a caller DR whose TLS breaks the caller -> wpgw handshake; ISTIO_MUTUAL without pinned names is fine', () => {
    for (const tls of [
      { mode: 'DISABLE' },
      { mode: 'SIMPLE' },
      { mode: 'ISTIO_MUTUAL', subjectAltNames: ['spiffe://cluster.local/ns/shop/sa/legacy'] },
    ]) {
      const s = withIstio([], [istioObj('DestinationRule', 'legacy', { host: 'legacy', trafficPolicy: { tls } })]);
      expect(reasons(s), JSON.stringify(tls)).toEqual([['DestinationRule/legacy', 'CallerTlsBreaksWpgw']]);
    }
    expect(
      withIstio(
        [],
        [istioObj('DestinationRule', 'legacy', { host: 'legacy', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } })],
      ).conflicts,
    ).toEqual([]);
  });

  it("a caller DR's outlier detection or load balancer now acts on the wpgw pods", () => {
    const s = withIstio(
      [],
      [
        istioObj('DestinationRule', 'legacy', {
          host: 'legacy.shop',
          trafficPolicy: { outlierDetection: { consecutive5xxErrors: 1 } },
        }),
      ],
    );
    expect(reasons(s)).toEqual([['DestinationRule/legacy', 'CallerEndpointPolicy']]);
  });

  it("a user VirtualService bound to a wpgw Gateway competes with wpgw's own for the same hosts", () => {
    const s = withIstio([
      istioObj('VirtualService', 'mine', {
        hosts: ['*'],
        gateways: ['wpgw-in-legacy'],
        http: [{ route: [{ destination: { host: 'legacy-app' } }] }],
      }),
    ]);
    expect(reasons(s)).toEqual([['VirtualService/mine', 'ForeignRouteOnGateway']]);
  });

  it("objects about other hosts, and wpgw's own, are not reported", () => {
    const s = withIstio(
      [
        istioObj('VirtualService', 'orders', {
          hosts: ['orders.sales.svc.cluster.local'],
          http: [{ route: [{ destination: { host: 'orders.sales.svc.cluster.local', subset: 'v1' } }] }],
        }),
      ],
      [
        istioObj(
          'DestinationRule',
          'wpgw-in-legacy',
          { host: LEGACY, trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } },
          undefined,
          { 'app.kubernetes.io/managed-by': 'wpgw' },
        ),
      ],
    );
    expect(s.conflicts).toEqual([]);
  });
});

function secObjIn(
  ns: string,
  kind: 'PeerAuthentication' | 'RequestAuthentication' | 'AuthorizationPolicy',
  name: string,
  spec: Record<string, unknown>,
): KubeObject {
  return {
    apiVersion: 'security.istio.io/v1',
    kind,
    metadata: { name, namespace: ns, creationTimestamp: '2026-12-01T10:00:00Z' } as KubeObject['metadata'],
    spec,
  };
}

const ISSUER_A = { issuer: 'https://a.example', jwks: '{"keys":[]}' };
const ISSUER_B = { issuer: 'https://b.example', jwks: '{"keys":[]}' };

/** legacy (app=legacy, with HTTP egress) and stock (app=stock) behind one wpgw, with the given Istio objects. */
function shop(
  istio: Partial<NonNullable<NamespaceInput['istio']>>,
  extra: Partial<NamespaceInput> = {},
  egress = true,
): DesiredState {
  const stock = repointedService(
    service('stock', 'shop', { app: 'stock' }, [{ name: 'http', port: 9090, targetPort: 8080 }]),
    { app: 'stock' },
  );
  return desiredNamespaceState(
    {
      namespace: namespaceObject('shop'),
      pods: [
        injectedPod({
          name: 'legacy-1',
          labels: { app: 'legacy' },
          ...(egress ? { outbound: 'example.com:80' } : {}),
          ip: '10.244.64.10',
        }),
        injectedPod({ name: 'stock-1', labels: { app: 'stock' }, ip: '10.244.64.20' }),
      ],
      services: [legacy(), stock],
      clusterDnsIP: '10.96.0.10',
      istio: { virtualServices: [], destinationRules: [], ...istio },
      ...extra,
    },
    OPTS,
  );
}
const ra = (name: string, spec: Record<string, unknown>) => secObjIn('shop', 'RequestAuthentication', name, spec);
const pa = (name: string, spec: Record<string, unknown>) => secObjIn('shop', 'PeerAuthentication', name, spec);

describe('item 4: RequestAuthentication carried to the wpgw where faithful, reported where not', () => {
  it('every Service behind the wpgw has the same JWT rules: carried as wpgw-authn-<name> on the gateway pods (selector by label and by targetRefs)', () => {
    const s = shop(
      {
        requestAuthentications: [
          ra('legacy-jwt', { selector: { matchLabels: { app: 'legacy' } }, jwtRules: [ISSUER_A] }),
          ra('stock-jwt', { targetRefs: [{ kind: 'Service', group: '', name: 'stock' }], jwtRules: [ISSUER_A] }),
        ],
      },
      {},
      false,
    );
    expect(s.conflicts).toEqual([]);
    const carried = ofKind(s.objects, 'RequestAuthentication');
    // stock-jwt's rule is the same one: carried once
    expect(carried.map((o) => [o.metadata.name, spec(o)])).toEqual([
      ['wpgw-authn-legacy-jwt', { selector: { matchLabels: { 'wpgw.io/gateway': 'shop' } }, jwtRules: [ISSUER_A] }],
    ]);
    expect(carried[0]!.metadata.labels).toMatchObject({
      'app.kubernetes.io/managed-by': 'wpgw',
      'wpgw.io/for': 'namespace',
    });
    expect(s.notes.filter((n) => n.startsWith('authentication: wpgw-authn-legacy-jwt'))).toHaveLength(1);
  });

  it('different issuers for Services sharing the wpgw (or one Service with none): nothing carried, each policy reported', () => {
    const differ = shop(
      {
        requestAuthentications: [
          ra('legacy-jwt', { selector: { matchLabels: { app: 'legacy' } }, jwtRules: [ISSUER_A] }),
          ra('stock-jwt', { selector: { matchLabels: { app: 'stock' } }, jwtRules: [ISSUER_B] }),
        ],
      },
      {},
      false,
    );
    expect(ofKind(differ.objects, 'RequestAuthentication')).toEqual([]);
    expect(reasons(differ)).toEqual([
      ['RequestAuthentication/legacy-jwt', 'RequestAuthenticationNotCarried'],
      ['RequestAuthentication/stock-jwt', 'RequestAuthenticationNotCarried'],
    ]);
    expect(differ.conflicts[0]!.message).toContain(
      'legacy: issuers https://a.example; stock: issuers https://b.example',
    );
    const alone = shop(
      {
        requestAuthentications: [
          ra('legacy-jwt', { selector: { matchLabels: { app: 'legacy' } }, jwtRules: [ISSUER_A] }),
        ],
      },
      {},
      false,
    );
    expect(ofKind(alone.objects, 'RequestAuthentication')).toEqual([]);
    expect(reasons(alone)).toEqual([['RequestAuthentication/legacy-jwt', 'RequestAuthenticationNotCarried']]);
    expect(alone.conflicts[0]!.message).toContain('stock: issuers none');
  });

  it('namespace-wide: applies to the wpgw as it is (no copy, a note); with HTTP egress on the gateway it is reported as acting there too', () => {
    const quiet = shop({ requestAuthentications: [ra('all', { jwtRules: [ISSUER_A] })] }, {}, false);
    expect(quiet.conflicts).toEqual([]);
    expect(ofKind(quiet.objects, 'RequestAuthentication')).toEqual([]);
    expect(quiet.notes).toContain(
      'authentication: RequestAuthentication all is namespace-wide: it applies to the wpgw pods as it is (every re-pointed Service behind them)',
    );
    const egress = shop({ requestAuthentications: [ra('all', { jwtRules: [ISSUER_A] })] });
    expect(reasons(egress)).toEqual([['RequestAuthentication/all', 'RequestAuthenticationOnEgress']]);
    // a namespace-wide rule already covers a selecting one with the same rule: nothing to carry, faithful
    const both = shop(
      {
        requestAuthentications: [
          ra('all', { jwtRules: [ISSUER_A] }),
          ra('legacy-jwt', { selector: { matchLabels: { app: 'legacy' } }, jwtRules: [ISSUER_A] }),
          ra('stock-jwt', { selector: { matchLabels: { app: 'stock' } }, jwtRules: [ISSUER_A] }),
        ],
      },
      {},
      false,
    );
    expect(both.conflicts).toEqual([]);
    expect(ofKind(both.objects, 'RequestAuthentication')).toEqual([]);
  });

  it('an ALLOW requiring a request principal works with a carried RequestAuthentication; without one in force it is reported (it would deny every request)', () => {
    const needs = secObjIn('shop', 'AuthorizationPolicy', 'need-jwt', {
      selector: { matchLabels: { app: 'legacy' } },
      action: 'ALLOW',
      rules: [{ from: [{ source: { requestPrincipals: ['https://a.example/*'] } }] }],
    });
    const ok = shop(
      {
        authorizationPolicies: [needs],
        requestAuthentications: [
          ra('legacy-jwt', { selector: { matchLabels: { app: 'legacy' } }, jwtRules: [ISSUER_A] }),
          ra('stock-jwt', { selector: { matchLabels: { app: 'stock' } }, jwtRules: [ISSUER_A] }),
        ],
      },
      {},
      false,
    );
    expect(ok.conflicts).toEqual([]);
    expect(spec(get(ok.objects, 'AuthorizationPolicy', 'wpgw-authz-need-jwt')).rules[0].from).toEqual([
      { source: { requestPrincipals: ['https://a.example/*'] } },
    ]);
    expect(get(ok.objects, 'RequestAuthentication', 'wpgw-authn-legacy-jwt')).toBeDefined();
    const missing = shop(
      {
        authorizationPolicies: [needs],
        requestAuthentications: [
          ra('legacy-jwt', { selector: { matchLabels: { app: 'legacy' } }, jwtRules: [ISSUER_A] }),
        ],
      },
      {},
      false,
    );
    expect(reasons(missing)).toEqual([
      ['RequestAuthentication/legacy-jwt', 'RequestAuthenticationNotCarried'],
      ['AuthorizationPolicy/need-jwt', 'PolicyNeedsRequestAuthentication'],
    ]);
  });

  it("one for only some of a Service's pods is reported; one for pods no re-pointed Service reaches is ignored", () => {
    const pods = [
      injectedPod({ name: 'legacy-1', labels: { app: 'legacy', version: 'v1' }, ip: '10.244.64.10' }),
      injectedPod({ name: 'legacy-2', labels: { app: 'legacy', version: 'v2' }, ip: '10.244.64.11' }),
    ];
    const s = state({
      pods,
      istio: {
        virtualServices: [],
        destinationRules: [],
        requestAuthentications: [
          ra('v2', { selector: { matchLabels: { version: 'v2' } }, jwtRules: [ISSUER_A] }),
          ra('frontend', { selector: { matchLabels: { app: 'frontend' } }, jwtRules: [ISSUER_B] }),
        ],
      },
    });
    expect(reasons(s)).toEqual([['RequestAuthentication/v2', 'PolicySelectsPartOfService']]);
    expect(ofKind(s.objects, 'RequestAuthentication').map((o) => spec(o).jwtRules)).toEqual([[ISSUER_A]]);
  });
});

describe('item 4: PeerAuthentication: STRICT accepted, PERMISSIVE and DISABLE reported, portLevelMtls too', () => {
  const withPa = (...list: KubeObject[]) => shop({ peerAuthentications: list }, {}, false);

  it('DISABLE namespace-wide or for the wpgw pods would make callers send plaintext to the wpgw: reported', () => {
    expect(reasons(withPa(pa('off', { mtls: { mode: 'DISABLE' } })))).toEqual([
      ['PeerAuthentication/off', 'PeerAuthenticationDisablesMtls'],
    ]);
    expect(
      reasons(
        withPa(
          pa('gw', {
            selector: { matchLabels: { 'wpgw.io/gateway': 'shop' } },
            portLevelMtls: { [ports(withPa(), 'legacy')[0]!]: { mode: 'DISABLE' } },
          }),
        ),
      ),
    ).toEqual([['PeerAuthentication/gw', 'PeerAuthenticationDisablesMtls']]);
    expect(withPa(pa('strict', { mtls: { mode: 'STRICT' } })).conflicts).toEqual([]);
    expect(withPa(pa('permissive', { mtls: { mode: 'PERMISSIVE' } })).conflicts).toEqual([]);
  });

  it('STRICT for the Windows pods is what the wpgw does already: accepted with a note', () => {
    const s = withPa(pa('legacy', { selector: { matchLabels: { app: 'legacy' } }, mtls: { mode: 'STRICT' } }));
    expect(s.conflicts).toEqual([]);
    expect(s.notes).toContain(
      "authentication: PeerAuthentication legacy (STRICT or inherited) for legacy: the wpgw's listeners already require Istio mTLS",
    );
  });

  it('PERMISSIVE or DISABLE for the Windows pods (or the Service by targetRefs), whole or per port, is reported naming the Service ports', () => {
    const s = withPa(
      pa('legacy', { selector: { matchLabels: { app: 'legacy' } }, mtls: { mode: 'PERMISSIVE' } }),
      pa('stock-port', {
        targetRefs: [{ kind: 'Service', group: '', name: 'stock' }],
        mtls: { mode: 'STRICT' },
        portLevelMtls: { '8080': { mode: 'DISABLE' }, '7777': { mode: 'PERMISSIVE' } },
      }),
      pa('frontend', { selector: { matchLabels: { app: 'frontend' } }, mtls: { mode: 'PERMISSIVE' } }),
    );
    expect(reasons(s)).toEqual([
      ['PeerAuthentication/legacy', 'PeerAuthenticationPermissive'],
      ['PeerAuthentication/stock-port', 'PeerAuthenticationPermissive'],
      ['PeerAuthentication/stock-port', 'PeerAuthenticationNotCarried'],
    ]);
    expect(s.conflicts[0]!.message).toContain('mode PERMISSIVE for legacy:8080');
    expect(s.conflicts[1]!.message).toContain('port 7777 PERMISSIVE for no port of stock');
    expect(s.conflicts[2]!.message).toContain('port 8080 DISABLE for stock:9090');
  });
});

describe("Istio's root namespace: mesh-wide policies act on the wpgw natively; where that differs from a sidecar it is reported", () => {
  const mesh = (objects: Partial<NonNullable<NamespaceInput['istio']>>, ns = 'istio-system') => ({
    meshIstio: { namespace: ns, objects: { virtualServices: [], destinationRules: [], ...objects } },
  });
  const inMesh = (s: DesiredState) => s.conflicts.map((c) => [c.subjectNamespace, c.subject, c.reason]);

  it("a mesh-wide DENY acts on the egress listeners too; a mesh-wide ALLOW (allow-nothing) governs the re-pointed Services (wpgw's ALLOW yields)", () => {
    const s = shop(
      {},
      mesh({
        authorizationPolicies: [
          secObjIn('istio-system', 'AuthorizationPolicy', 'deny-all-but-prod', {
            action: 'DENY',
            rules: [{ from: [{ source: { notNamespaces: ['prod'] } }] }],
          }),
          secObjIn('istio-system', 'AuthorizationPolicy', 'allow-nothing', {}),
        ],
      }),
    );
    expect(inMesh(s)).toEqual([
      ['istio-system', 'AuthorizationPolicy/allow-nothing', 'MeshPolicyOnGateway'],
      ['istio-system', 'AuthorizationPolicy/deny-all-but-prod', 'MeshPolicyOnGateway'],
    ]);
    expect(s.conflicts[1]!.message).toMatch(/every listener, the Windows pods' egress included/);
    expect(s.conflicts[0]!.message).toMatch(
      /governs the re-pointed Services at the wpgw in shop \(legacy, stock\) as it would a sidecar/,
    );
    // wpgw writes nothing for them: they apply natively
    expect(ofKind(s.objects, 'AuthorizationPolicy').map((o) => o.metadata.name)).toEqual(['wpgw']);
  });

  it('a root-namespace policy selecting Windows pods is not carried (reported); other root policies with a selector are not about the wpgw', () => {
    const s = shop(
      {},
      mesh(
        {
          authorizationPolicies: [
            secObjIn('aks-istio-system', 'AuthorizationPolicy', 'legacy', {
              selector: { matchLabels: { app: 'legacy' } },
              action: 'DENY',
              rules: [{}],
            }),
            secObjIn('aks-istio-system', 'AuthorizationPolicy', 'ingress', {
              selector: { matchLabels: { istio: 'ingressgateway' } },
            }),
          ],
        },
        'aks-istio-system',
      ),
    );
    expect(inMesh(s)).toEqual([['aks-istio-system', 'AuthorizationPolicy/legacy', 'PolicyNotCarried']]);
  });

  it('a mesh-wide PeerAuthentication DISABLE is reported unless the namespace sets its own mode; a mesh-wide RequestAuthentication acts on the egress', () => {
    const off = mesh({
      peerAuthentications: [secObjIn('istio-system', 'PeerAuthentication', 'default', { mtls: { mode: 'DISABLE' } })],
      requestAuthentications: [secObjIn('istio-system', 'RequestAuthentication', 'mesh-jwt', { jwtRules: [ISSUER_A] })],
    });
    expect(inMesh(shop({}, off))).toEqual([
      ['istio-system', 'RequestAuthentication/mesh-jwt', 'RequestAuthenticationOnEgress'],
      ['istio-system', 'PeerAuthentication/default', 'PeerAuthenticationDisablesMtls'],
    ]);
    expect(inMesh(shop({ peerAuthentications: [pa('ns', { mtls: { mode: 'STRICT' } })] }, off, false))).toEqual([]);
  });
});

describe('item 4 (callers): VirtualServices and DestinationRules in other namespaces naming a re-pointed Service', () => {
  const caller = (
    kind: 'VirtualService' | 'DestinationRule',
    name: string,
    spec: Record<string, unknown>,
    ns = 'frontend',
  ) => ({ ...istioObj(kind, name, spec), metadata: { name, namespace: ns } as KubeObject['metadata'] });
  const withCallers = (virtualServices: KubeObject[], destinationRules: KubeObject[] = []) =>
    state({ callerIstio: { virtualServices, destinationRules } });
  const where = (s: DesiredState) => s.conflicts.map((c) => [c.subjectNamespace, c.subject, c.reason]);

  it("a subset route and a TLS-breaking DR by qualified host are reported on the caller's object, in its namespace", () => {
    const s = withCallers(
      [
        caller('VirtualService', 'to-legacy', {
          hosts: ['legacy.shop'],
          http: [{ route: [{ destination: { host: 'legacy.shop.svc.cluster.local', subset: 'v2' } }] }],
        }),
      ],
      [caller('DestinationRule', 'legacy', { host: 'legacy.shop.svc', trafficPolicy: { tls: { mode: 'SIMPLE' } } })],
    );
    expect(where(s)).toEqual([
      ['frontend', 'VirtualService/to-legacy', 'CallerSubsetRoute'],
      ['frontend', 'DestinationRule/legacy', 'CallerTlsBreaksWpgw'],
    ]);
    expect(s.conflicts[0]!.message).toContain(
      'subset v2 of legacy.shop, which is re-pointed at the wpgw: the subset selects none of the wpgw pods, so every such request gets 503 (for callers in every namespace)',
    );
  });

  it('a short host in another namespace is another Service; exportTo ["."] is for its own namespace\'s callers; "~" for none', () => {
    const short = withCallers([
      caller('VirtualService', 'own-legacy', {
        hosts: ['legacy'],
        http: [{ route: [{ destination: { host: 'legacy', subset: 'v2' } }] }],
      }),
    ]);
    expect(short.conflicts).toEqual([]);
    const local = withCallers([
      caller('VirtualService', 'local', {
        hosts: ['legacy.shop'],
        exportTo: ['.'],
        http: [{ route: [{ destination: { host: 'legacy.shop', subset: 'v2' } }] }],
      }),
    ]);
    expect(local.conflicts.map((c) => c.message.includes('(for callers in frontend)'))).toEqual([true]);
    const hidden = withCallers(
      [],
      [
        caller('DestinationRule', 'hidden', {
          host: 'legacy.shop',
          exportTo: ['~'],
          trafficPolicy: { tls: { mode: 'DISABLE' } },
        }),
      ],
    );
    expect(hidden.conflicts).toEqual([]);
  });

  it("a caller's VirtualService bound to the wpgw Gateway by its qualified name is reported", () => {
    const s = withCallers([
      caller('VirtualService', 'mine', {
        hosts: ['x.example'],
        gateways: ['shop/wpgw-in-legacy'],
        http: [{ route: [{ destination: { host: 'legacy-app.shop' } }] }],
      }),
    ]);
    expect(where(s)).toEqual([['frontend', 'VirtualService/mine', 'ForeignRouteOnGateway']]);
  });

  it("render: the callers' objects of other namespaces in the input are checked, the conflict line names their namespace", () => {
    const input = readFileSync(new URL('../../examples/user-policies.yaml', import.meta.url), 'utf8');
    const vs = [
      'apiVersion: networking.istio.io/v1',
      'kind: VirtualService',
      'metadata: {name: to-legacy, namespace: frontend}',
      'spec:',
      '  hosts: [legacy.shop]',
      '  http:',
      '  - route:',
      '    - destination: {host: legacy.shop, subset: v2}',
    ].join('\n');
    const out = render(`${input}\n---\n${vs}\n`, { gatewayIP: '10.96.100.10' });
    expect(out.errors).toEqual([]);
    expect(out.report.filter((l) => l.startsWith('conflict:'))).toEqual([
      expect.stringMatching(
        /^conflict: namespace shop: VirtualService\/to-legacy \(namespace frontend\): routes to subset v2 of legacy.shop/,
      ),
    ]);
  });
});

/** Istio's resolvePorts for a selector-bound Gateway (pilot/pkg/model/gateway.go): the listener a server port N becomes. */
function istioListenerPort(n: number, selecting: readonly V1Service[]): number {
  for (const svc of selecting) {
    if (svc.metadata?.labels?.['experimental.istio.io/disable-gateway-port-translation'] !== undefined) continue;
    const p = (svc.spec?.ports ?? []).find((x) => x.port === n);
    if (p && typeof p.targetPort === 'number') return p.targetPort;
  }
  return n;
}

describe("item 7: no gateway server port is translated to another Service's targetPort", () => {
  const selectingGateway = (s: DesiredState, services: V1Service[]) => [
    ...(ofKind(s.objects, 'Service').filter((o) => o.metadata.name === 'wpgw') as V1Service[]),
    ...services,
  ];
  const serverPorts = (s: DesiredState) =>
    ofKind(s.objects, 'Gateway').flatMap((g) =>
      (spec(g).servers as Array<{ port: { number: number } }>).map((x) => x.port.number),
    );

  it("every Service wpgw points at the gateway pods carries Istio's no-translation label, so a later Service on a listener port changes nothing", () => {
    const a = legacy();
    const listener = a.spec!.ports![0]!.targetPort as number;
    const b = repointedService(
      service('late', 'shop', { app: 'late' }, [{ name: 'http', port: listener, targetPort: 80 }]),
      { app: 'late' },
    );
    for (const svc of [a, b])
      expect(svc.metadata?.labels?.['experimental.istio.io/disable-gateway-port-translation']).toBe('true');
    const s = state({ services: [a, b] });
    expect(s.conflicts).toEqual([]);
    expect(
      get(s.objects, 'Service', 'wpgw').metadata.labels?.['experimental.istio.io/disable-gateway-port-translation'],
    ).toBe('true');
    expect(istioListenerPort(listener, selectingGateway(s, [b, a]))).toBe(listener);
  });

  it("a Service selecting the gateway pods without the label (re-pointed before it, or the user's own) is reported", () => {
    const a = legacy();
    const listener = a.spec!.ports![0]!.targetPort as number;
    const b = repointedService(
      service('late', 'shop', { app: 'late' }, [{ name: 'http', port: listener, targetPort: 80 }]),
      { app: 'late' },
    );
    const { 'experimental.istio.io/disable-gateway-port-translation': _drop, ...labels } = b.metadata!.labels!;
    const s = state({ services: [a, { ...b, metadata: { ...b.metadata, labels } }] });
    expect(reasons(s)).toEqual([['Service/legacy', 'ListenerPortTranslated']]);
    expect(s.conflicts[0]!.message).toContain(`listener port ${listener} is also a port of Service late`);
  });

  it('property: for any set of re-pointed Services (ports drawn to collide with listener ports), every server port is its own listener', () => {
    const pool = [80, 443, 8080, 15021, 15443, ...Array.from({ length: 6 }, (_, i) => INBOUND_POD_PORTS.min + i)];
    const svcArb = fc
      .uniqueArray(fc.constantFrom(...pool), { minLength: 1, maxLength: 3 })
      .map((ps) => ps.map((port, i) => ({ name: `http-${i}`, port, targetPort: 80 + i })));
    fc.assert(
      fc.property(fc.array(svcArb, { minLength: 1, maxLength: 4 }), (portSets) => {
        const services = portSets.map((ports, i) =>
          repointedService(service(`s${i}`, 'shop', { app: `s${i}` }, ports), { app: `s${i}` }),
        );
        const pods = services.map((_, i) =>
          injectedPod({
            name: `s${i}-1`,
            labels: { app: `s${i}` },
            outbound: 'example.com:80,example.org:443',
            ip: `10.244.64.${10 + i}`,
          }),
        );
        const s = state({ services, pods });
        const selecting = selectingGateway(s, services);
        for (const n of serverPorts(s)) expect(istioListenerPort(n, selecting), `server port ${n}`).toBe(n);
        expect(s.conflicts.filter((c) => c.reason === 'ListenerPortTranslated')).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });
});

describe("wpgw render reports conflicts of the user's Istio objects in its input", () => {
  it('a caller-side subset route to a re-pointed Service is a conflict line naming the object', () => {
    const input = readFileSync(new URL('../../examples/user-policies.yaml', import.meta.url), 'utf8');
    const caller = [
      'apiVersion: networking.istio.io/v1',
      'kind: VirtualService',
      'metadata: {name: legacy-canary, namespace: shop}',
      'spec:',
      '  hosts: [legacy]',
      '  http:',
      '  - route:',
      '    - destination: {host: legacy, subset: v2}',
    ].join('\n');
    const out = render(`${input}\n---\n${caller}\n`, { gatewayIP: '10.96.100.10' });
    expect(out.errors).toEqual([]);
    const lines = out.report.filter((l) => l.startsWith('conflict:'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^conflict: namespace shop: VirtualService\/legacy-canary: routes to subset v2 of legacy, which is re-pointed at the wpgw/,
    );
  });
});

describe('notes: render and status say which user objects shape the wpgw', () => {
  it('names the delegate, the DestinationRule and each carried AuthorizationPolicy', () => {
    const s = state({
      istio: {
        virtualServices: [splitDelegate()],
        destinationRules: [versionsRule()],
        authorizationPolicies: [
          userPolicy('deny-frontend', {
            selector: { matchLabels: { app: 'legacy' } },
            action: 'DENY',
            rules: [{ from: [{ source: { principals: [FRONTEND] } }] }],
          }),
        ],
      },
    });
    expect(s.notes).toContain(
      'inbound: Service legacy: routes from delegate VirtualService legacy-routes, endpoint policy from DestinationRule legacy-app (at the wpgw -> legacy-app hop)',
    );
    expect(s.notes.filter((n) => n.startsWith('authorization: wpgw-authz-deny-frontend'))).toHaveLength(1);
  });
});

describe("a default-deny the Windows pods would obey behind a sidecar binds them behind the wpgw: wpgw's own ALLOW yields on every inbound port", () => {
  const inboundRules = (s: DesiredState) =>
    (wpgwRules(s) ?? []).filter((r) => JSON.stringify(r.from).includes('"principals":["*"]'));
  const egressRules = (s: DesiredState) =>
    (wpgwRules(s) ?? []).filter((r) => JSON.stringify(r.from).includes('ipBlocks'));
  const meshAllow = (spec: Record<string, unknown>) => ({
    meshIstio: {
      namespace: 'istio-system',
      objects: {
        virtualServices: [],
        destinationRules: [],
        authorizationPolicies: [secObjIn('istio-system', 'AuthorizationPolicy', 'mesh-allow', spec)],
      },
    },
  });

  it('without one, any authenticated caller is allowed on both Services; the egress is allowed', () => {
    const s = shop({ authorizationPolicies: [] });
    expect(inboundRules(s).flatMap((r) => r.to[0]!.operation.ports)).toEqual(
      [...ports(s, 'legacy'), ...ports(s, 'stock')].sort(),
    );
    expect(egressRules(s)).toHaveLength(1);
  });

  for (const [what, input] of [
    ['mesh-wide allow-nothing (spec: {})', () => shop({ authorizationPolicies: [] }, meshAllow({}))],
    [
      'mesh-wide ALLOW from one namespace',
      () =>
        shop({ authorizationPolicies: [] }, meshAllow({ rules: [{ from: [{ source: { namespaces: ['prod'] } }] }] })),
    ],
    [
      'namespace-wide ALLOW',
      () =>
        shop({
          authorizationPolicies: [
            userPolicy('ns-allow', { rules: [{ from: [{ source: { namespaces: ['prod'] } }] }] }),
          ],
        }),
    ],
    [
      'ALLOW selecting the gateway pods',
      () =>
        shop({
          authorizationPolicies: [
            userPolicy('gw-allow', {
              selector: { matchLabels: { 'wpgw.io/gateway': 'shop' } },
              rules: [{ from: [{ source: { namespaces: ['prod'] } }] }],
            }),
          ],
        }),
    ],
  ] as const) {
    it(`${what}: no inbound port opened by wpgw's ALLOW, the egress rule kept, the yield reported`, () => {
      const s = input();
      expect(inboundRules(s)).toEqual([]);
      expect(egressRules(s)).toHaveLength(1);
      if (!what.startsWith('ALLOW selecting')) {
        const c = s.conflicts.find((x) => /NamespacePolicyOnGateway|MeshPolicyOnGateway/.test(x.reason));
        expect(c?.message).toMatch(/wpgw's own ALLOW opens none of their ports/);
      }
    });
  }

  it("with a mesh-wide allow-nothing, a carried ALLOW for legacy's pods opens legacy's port to its callers only; stock stays denied", () => {
    const s = shop(
      {
        authorizationPolicies: [
          userPolicy('legacy-allow', {
            selector: { matchLabels: { app: 'legacy' } },
            rules: [{ from: [{ source: { principals: [FRONTEND] } }] }],
          }),
        ],
      },
      meshAllow({}),
    );
    expect(inboundRules(s)).toEqual([]);
    const carried = spec(get(s.objects, 'AuthorizationPolicy', 'wpgw-authz-legacy-allow'));
    expect(carried.action).toBe('ALLOW');
    expect(JSON.stringify(carried.rules)).toContain(FRONTEND);
    expect([...new Set((carried.rules as any[]).flatMap((r) => r.to.flatMap((t: any) => t.operation.ports)))]).toEqual(
      ports(s, 'legacy'),
    );
  });

  it('DENY, AUDIT and CUSTOM wide policies do not make wpgw yield (they are not ALLOWs); a wpgw-managed or other-namespace ALLOW neither', () => {
    const managed = userPolicy('wpgw', { rules: [] });
    managed.metadata.labels = { 'app.kubernetes.io/managed-by': 'wpgw' };
    const s = shop({
      authorizationPolicies: [
        userPolicy('ns-deny', { action: 'DENY', rules: [{ from: [{ source: { namespaces: ['x'] } }] }] }),
        userPolicy('ns-audit', { action: 'AUDIT', rules: [{}] }),
        managed,
        { ...userPolicy('elsewhere', {}), metadata: { ...userPolicy('elsewhere', {}).metadata, namespace: 'other' } },
      ],
    });
    expect(inboundRules(s).flatMap((r) => r.to[0]!.operation.ports)).toEqual(
      [...ports(s, 'legacy'), ...ports(s, 'stock')].sort(),
    );
  });
});
