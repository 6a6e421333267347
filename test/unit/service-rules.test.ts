// Issue 11 items 2, 3, 4 and 5: which Services may be re-pointed, and how selectors other controllers
// patch are kept. Real AdmissionReviews through admit(), real JSON patches applied with fast-json-patch.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { V1Ingress, V1Service } from '@kubernetes/client-node';
import type { AdmitResult } from '../../src/core/admission-types.js';
import { admit } from '../../src/core/admission.js';
import { desiredNamespaceState } from '../../src/core/desired.js';
import { readOriginal } from '../../src/core/records.js';
import { nonMeshIngresses } from '../../src/core/service-rules.js';
import { selectNudges } from '../../src/controller/nudge.js';
import { formatStatus, summarizeNamespace } from '../../src/commands/status-report.js';
import { unmanagedWorkloads, type UnmanagedWorkload } from '../../src/core/workloads.js';
import {
  applyResponse,
  find,
  injectedPod,
  namespaceObject,
  repointedService,
  service,
  spec,
} from './helpers/builders.js';
import { review, staticContext } from '../lib/admission.js';

const NS = 'shop';
const WIN = { app: 'legacy', tier: 'web' };
const ctx = (o: Parameters<typeof staticContext>[0] = {}) => staticContext({ windowsLabelSets: { [NS]: [WIN] }, ...o });

function userService(
  name: string,
  extra: Partial<V1Service['spec']> = {},
  annotations?: Record<string, string>,
): V1Service {
  const s = service(name, NS, { app: 'legacy' }, [{ name: 'http', port: 8080, targetPort: 'http' }]);
  s.spec = { ...s.spec, ...extra };
  if (annotations) s.metadata = { ...s.metadata, annotations };
  return s;
}

function admitService(
  object: V1Service,
  c = ctx(),
  operation: 'CREATE' | 'UPDATE' = 'CREATE',
): { res: AdmitResult & { ok: true }; stored: V1Service } {
  const res = admit(
    review({
      kind: 'Service',
      operation,
      namespace: NS,
      object,
      ...(operation === 'UPDATE' ? { oldObject: object } : {}),
    }),
    c,
  );
  if (!res.ok) throw new Error(res.message);
  return { res, stored: applyResponse(object, res) };
}

const nameOfLength = (n: number) => `s${'x'.repeat(n - 2)}1`;
const dnsLabelOfLength = (min: number, max: number) =>
  fc
    .integer({ min, max })
    .chain((n) => fc.stringMatching(n === 1 ? /^[a-z]$/ : new RegExp(`^[a-z][a-z0-9-]{${n - 2}}[a-z0-9]$`)));

describe('item 3: a Service whose <name>-app cannot exist is never re-pointed', () => {
  it('a 60-character name is denied with the reason and what to do; 59 characters is re-pointed', () => {
    const long = nameOfLength(60);
    const { res } = admitService(userService(long));
    expect(res.decision).toMatchObject({ allowed: false, decision: 'denied', reason: 'app_name_too_long' });
    expect(res.review.response.status?.message).toBe(
      `service "${long}": cannot be re-pointed at the wpgw gateway: its Windows pods would be reached through a Service named "${long}-app" (64 characters; Service names are at most 63); rename the Service to at most 59 characters`,
    );
    expect(admitService(userService(nameOfLength(59))).res.decision).toMatchObject({
      decision: 'patched',
      reason: 'repointed',
    });
  });

  it('a <name>-app the user already owns is denied naming it; one wpgw owns is fine', () => {
    const { res } = admitService(userService('legacy'), ctx({ serviceOwners: { [NS]: { 'legacy-app': 'user' } } }));
    expect(res.decision).toMatchObject({ allowed: false, reason: 'app_service_taken' });
    expect(res.decision.message).toMatch(
      /^service "legacy": .*a Service named "legacy-app".*already exists that wpgw does not manage; rename or delete "legacy-app"/,
    );
    const ok = admitService(userService('legacy'), ctx({ serviceOwners: { [NS]: { 'legacy-app': 'wpgw' } } }));
    expect(ok.res.decision.reason).toBe('repointed');
  });

  it('an already re-pointed Service whose <name>-app became impossible is restored, not left blackholed', () => {
    const repointed = repointedService(userService('legacy'), WIN);
    const { res, stored } = admitService(
      repointed,
      ctx({ serviceOwners: { [NS]: { 'legacy-app': 'user' } } }),
      'UPDATE',
    );
    expect(res.decision).toMatchObject({ allowed: true, decision: 'patched', reason: 'restored' });
    expect(res.review.response.warnings?.[0]).toMatch(/^service "legacy": .*restored to its original selector$/);
    expect(stored.spec?.selector).toEqual({ app: 'legacy' });
    expect(stored.spec?.ports).toEqual([{ name: 'http', port: 8080, targetPort: 'http' }]);
    expect(readOriginal(stored)).toBeUndefined();
  });

  it("property: any valid name is re-pointed iff <name>-app fits and is not the user's; otherwise denied, never patched", () => {
    fc.assert(
      fc.property(
        dnsLabelOfLength(1, 63),
        fc.constantFrom<'wpgw' | 'user' | undefined>(undefined, 'wpgw', 'user'),
        (name, owner) => {
          const c = ctx({ serviceOwners: owner ? { [NS]: { [`${name}-app`]: owner } } : {} });
          const { res, stored } = admitService(userService(name), c);
          const possible = name.length <= 59 && owner !== 'user';
          if (possible) {
            expect(res.decision.reason).toBe('repointed');
            expect(stored.spec?.selector).toEqual({ 'wpgw.io/gateway': NS });
            return;
          }
          expect(res.decision.allowed).toBe(false);
          expect(res.review.response.patch).toBeUndefined();
          expect(res.decision.message).toContain(`service "${name}": cannot be re-pointed`);
          expect(res.decision.message).toContain(`"${name}-app"`);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('an existing Service that cannot be re-pointed keeps reaching its managed pods (wpgw-direct-<name>), said as NotBehindGateway', () => {
    const opts = { clusterDomain: 'cluster.local', defaultGatewayReplicas: 2, corednsImage: 'coredns:test' };
    const pods = [injectedPod({ name: 'legacy-1', labels: WIN, ip: '10.0.0.1' })];
    const long = userService(nameOfLength(61));
    const usersApp = service('legacy-app', NS, { app: 'other' }, [{ port: 80 }]);
    // wpgw's own <name>-app Services select the managed pods too, and are never opened.
    const ours = {
      ...userService(`${nameOfLength(59)}-app`),
      metadata: { name: `${nameOfLength(59)}-app`, namespace: NS, labels: { 'app.kubernetes.io/managed-by': 'wpgw' } },
    };
    const state = desiredNamespaceState(
      {
        namespace: namespaceObject(NS),
        pods,
        services: [long, userService('legacy'), usersApp, ours],
        clusterDnsIP: '10.96.0.10',
      },
      opts,
    );
    const direct = state.objects
      .filter((o) => o.metadata.name.startsWith('wpgw-direct-'))
      .map((o) => o.metadata.name)
      .sort();
    expect(direct).toEqual(['wpgw-direct-legacy', `wpgw-direct-${nameOfLength(61)}`].sort());
    const notBehind = state.conflicts.filter((c) => c.reason === 'NotBehindGateway');
    expect(notBehind.map((c) => c.subject).sort()).toEqual(['Service/legacy', `Service/${nameOfLength(61)}`].sort());
    expect(notBehind.find((c) => c.subject === 'Service/legacy')!.message).toMatch(
      /^is not re-pointed: it cannot be re-pointed .*"legacy-app".*; NetworkPolicy wpgw-direct-legacy admits its clients/,
    );
  });

  it('opted-out and headless Services that select managed pods keep their clients (wpgw-direct-<name>), said as NotBehindGateway', () => {
    const opts = { clusterDomain: 'cluster.local', defaultGatewayReplicas: 2, corednsImage: 'coredns:test' };
    const pods = [injectedPod({ name: 'legacy-1', labels: WIN, ip: '10.0.0.1' })];
    const optedOut = {
      ...userService('metrics'),
      metadata: { name: 'metrics', namespace: NS, labels: { 'wpgw.io/inject': 'false' } },
    };
    const headless = { ...userService('peers'), spec: { ...userService('peers').spec, clusterIP: 'None' } };
    const elsewhere = service('other', NS, { app: 'nobody' }, [{ port: 80 }]);
    const state = desiredNamespaceState(
      { namespace: namespaceObject(NS), pods, services: [optedOut, headless, elsewhere], clusterDnsIP: '10.96.0.10' },
      opts,
    );
    const direct = state.objects.filter((o) => o.metadata.name.startsWith('wpgw-direct-'));
    expect(direct.map((o) => o.metadata.name).sort()).toEqual(['wpgw-direct-metrics', 'wpgw-direct-peers']);
    // The Service's own selector, narrowed to managed pods (the others are not behind wpgw-managed-pods).
    for (const np of direct)
      expect((np as unknown as { spec: { podSelector: unknown } }).spec.podSelector).toEqual({
        matchLabels: { app: 'legacy', 'wpgw.io/managed': 'true' },
      });
    const notBehind = state.conflicts.filter((c) => c.reason === 'NotBehindGateway');
    expect(notBehind.find((c) => c.subject === 'Service/metrics')!.message).toMatch(
      /^is opted out \(wpgw.io\/inject: "false"\)/,
    );
    expect(notBehind.find((c) => c.subject === 'Service/peers')!.message).toMatch(/^is headless/);
  });

  it("the controller neither nudges such Services nor creates <name>-app over the user's", () => {
    const pods = [injectedPod({ name: 'legacy-1', labels: WIN, ip: '10.0.0.1' })];
    const long = { ...userService(nameOfLength(60)) };
    const taken = userService('legacy');
    const usersApp = service('legacy-app', NS, { app: 'other' }, [{ port: 80 }]);
    expect(selectNudges([long, taken, usersApp], pods).map((n) => n.service)).toEqual([]);
    expect(selectNudges([taken], pods).map((n) => n.service)).toEqual(['legacy']);

    const repointed = repointedService(userService('legacy'), WIN, { uid: 'u1' });
    const state = desiredNamespaceState(
      { namespace: namespaceObject(NS), pods, services: [repointed, usersApp], clusterDnsIP: '10.96.0.10' },
      { clusterDomain: 'cluster.local', defaultGatewayReplicas: 2, corednsImage: 'coredns:test' },
    );
    expect(state.objects.filter((o) => o.kind === 'Service' && o.metadata.name === 'legacy-app')).toEqual([]);
    expect(find(state.objects, 'Gateway', 'wpgw-in-legacy')).toBeUndefined();
    expect(state.conflicts).toContainEqual(
      expect.objectContaining({ subject: 'Service/legacy', reason: 'AppServiceTaken' }),
    );
  });
});

describe('item 5: selector keys other controllers add are merged into the recorded original', () => {
  const argoPatch = (s: V1Service, hash: string): V1Service => ({
    ...s,
    metadata: {
      ...s.metadata,
      annotations: { ...s.metadata?.annotations, 'argo-rollouts.argoproj.io/managed-by-rollouts': 'legacy' },
    },
    spec: { ...s.spec, selector: { ...s.spec?.selector, 'rollouts-pod-template-hash': hash } },
  });

  it('Argo Rollouts adding rollouts-pod-template-hash: recorded {app, hash}, its re-send is a no-op, a new hash replaces the old', () => {
    const c = ctx({ windowsLabelSets: { [NS]: [{ ...WIN, 'rollouts-pod-template-hash': 'abc' }] } });
    const first = admitService(userService('legacy'), c).stored;
    const afterArgo = admitService(argoPatch(first, 'abc'), c, 'UPDATE');
    expect(afterArgo.res.decision.decision).toBe('patched');
    expect(readOriginal(afterArgo.stored)?.selector).toEqual({ app: 'legacy', 'rollouts-pod-template-hash': 'abc' });
    expect(afterArgo.stored.spec?.selector).toEqual({ 'wpgw.io/gateway': NS });
    expect(afterArgo.stored.spec?.ports).toEqual(first.spec?.ports);
    // Argo sees its key missing from the live selector and sends it again: the result is the stored
    // object unchanged, so the API server writes nothing (no resourceVersion bump, no watch event).
    const resent = admitService(argoPatch(afterArgo.stored, 'abc'), c, 'UPDATE');
    expect(resent.stored).toEqual(afterArgo.stored);
    const next = admitService(argoPatch(afterArgo.stored, 'def'), c, 'UPDATE');
    expect(readOriginal(next.stored)?.selector).toEqual({ app: 'legacy', 'rollouts-pod-template-hash': 'def' });
  });

  it("Flagger's full update (its whole selector, the user's ports) re-records the selector, and its periodic re-send is a no-op", () => {
    const c = ctx({ windowsLabelSets: { [NS]: [{ app: 'legacy-primary' }, WIN] } });
    const stored = admitService(userService('legacy'), c).stored;
    const flagger = (live: V1Service): V1Service => ({
      ...live,
      spec: {
        ...live.spec,
        selector: { app: 'legacy-primary' },
        ports: [{ name: 'http', port: 8080, targetPort: 'http' }],
      },
    });
    const once = admitService(flagger(stored), c, 'UPDATE').stored;
    expect(readOriginal(once)?.selector).toEqual({ app: 'legacy-primary' });
    expect(once.spec?.selector).toEqual({ 'wpgw.io/gateway': NS });
    expect(once.spec?.ports).toEqual(stored.spec?.ports);
    expect(admitService(flagger(once), c, 'UPDATE').stored).toEqual(once);
  });

  it('property: keys any client merges into a re-pointed selector are added to (or override) the recorded ones, idempotently', () => {
    const key = fc
      .stringMatching(/^([a-z]{1,6}\.[a-z]{2,3}\/)?[a-z][a-z0-9-]{0,10}$/)
      .filter((k) => !k.startsWith('wpgw.io/'));
    const value = fc.stringMatching(/^[a-z0-9]{1,8}$/);
    fc.assert(
      fc.property(fc.dictionary(key, value, { minKeys: 1, maxKeys: 4 }), (added) => {
        const c = ctx();
        const stored = admitService(userService('legacy'), c).stored;
        const patched = { ...stored, spec: { ...stored.spec, selector: { ...stored.spec?.selector, ...added } } };
        const once = admitService(patched, c, 'UPDATE').stored;
        expect(readOriginal(once)?.selector).toEqual({ app: 'legacy', ...added });
        expect(once.spec?.selector).toEqual({ 'wpgw.io/gateway': NS });
        const twice = admitService(
          { ...once, spec: { ...once.spec, selector: { ...once.spec?.selector, ...added } } },
          c,
          'UPDATE',
        ).stored;
        expect(twice).toEqual(once);
      }),
      { numRuns: 200 },
    );
  });
});

describe('item 2: Services non-mesh clients reach are not moved to mTLS-only gateway ports', () => {
  const access = fc.record({
    type: fc.constantFrom<string | undefined>(undefined, 'ClusterIP', 'NodePort', 'LoadBalancer'),
    externalIPs: fc.constantFrom<string[] | undefined>(undefined, [], ['203.0.113.7']),
    scrape: fc.constantFrom<string | undefined>(undefined, 'true', 'false'),
    probe: fc.constantFrom<string | undefined>(undefined, 'true'),
    declared: fc.constantFrom<string | undefined>(undefined, 'true', 'false'),
    forced: fc.boolean(),
  });

  it('property: re-pointed iff no non-mesh client reaches it or wpgw.io/inject is "true"; otherwise left alone with a warning naming each', () => {
    fc.assert(
      fc.property(access, (a) => {
        const annotations: Record<string, string> = {
          ...(a.scrape !== undefined ? { 'prometheus.io/scrape': a.scrape } : {}),
          ...(a.probe !== undefined ? { 'prometheus.io/probe': a.probe } : {}),
          ...(a.declared !== undefined ? { 'wpgw.io/non-mesh-clients': a.declared } : {}),
          ...(a.forced ? { 'wpgw.io/inject': 'true' } : {}),
        };
        const user = userService(
          'legacy',
          { ...(a.type ? { type: a.type } : {}), ...(a.externalIPs ? { externalIPs: a.externalIPs } : {}) },
          annotations,
        );
        const { res, stored } = admitService(user);
        const expected = [
          ...(a.type === 'LoadBalancer' ? ['type LoadBalancer'] : []),
          ...(a.type === 'NodePort' ? ['type NodePort'] : []),
          ...(a.externalIPs?.length ? ['externalIPs 203.0.113.7'] : []),
          ...(a.declared === 'true' ? ['wpgw.io/non-mesh-clients: "true"'] : []),
          ...(a.scrape === 'true' ? ['prometheus.io/scrape: "true"'] : []),
          ...(a.probe === 'true' ? ['prometheus.io/probe: "true"'] : []),
        ];
        const warnings = res.review.response.warnings ?? [];
        if (expected.length === 0 || a.forced) {
          expect(res.decision.reason).toBe('repointed');
          expect(stored.spec?.selector).toEqual({ 'wpgw.io/gateway': NS });
          if (expected.length > 0) for (const e of expected) expect(warnings[0]).toContain(e);
          return;
        }
        expect(res.decision).toMatchObject({ allowed: true, decision: 'skipped', reason: 'non_mesh_clients' });
        expect(res.review.response.patch).toBeUndefined();
        expect(warnings).toHaveLength(1);
        expect(warnings[0]).toMatch(
          /^service "legacy": is left alone \(not re-pointed at the wpgw gateway\): non-mesh clients reach it/,
        );
        for (const e of expected) expect(warnings[0]).toContain(e);
        expect(warnings[0]).toContain('wpgw.io/inject: "true"');
      }),
      { numRuns: 200 },
    );
  });

  it('a re-pointed Service that becomes a LoadBalancer is restored to its original, with a warning', () => {
    const repointed = repointedService(userService('legacy'), WIN);
    const lb = { ...repointed, spec: { ...repointed.spec, type: 'LoadBalancer' } };
    const { res, stored } = admitService(lb, ctx(), 'UPDATE');
    expect(res.decision).toMatchObject({ decision: 'patched', reason: 'restored' });
    expect(res.review.response.warnings?.[0]).toMatch(
      /^service "legacy": is restored to its original selector: non-mesh clients reach it \(type LoadBalancer/,
    );
    expect(stored.spec?.selector).toEqual({ app: 'legacy' });
    expect(stored.spec?.ports).toEqual([{ name: 'http', port: 8080, targetPort: 'http' }]);
    expect(stored.metadata?.annotations?.['wpgw.io/original']).toBeUndefined();
    expect(stored.metadata?.labels?.['wpgw.io/repointed']).toBeUndefined();
  });

  it('sessionAffinity ClientIP is re-pointed with a warning saying where it is carried and what is lost', () => {
    const user = userService('legacy', {
      sessionAffinity: 'ClientIP',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } },
    });
    const { res } = admitService(user);
    expect(res.decision.reason).toBe('repointed');
    expect(res.review.response.warnings).toEqual([
      'service "legacy": sessionAffinity ClientIP is carried as consistent hashing on the caller\'s source IP from the gateway to legacy-app (DestinationRule wpgw-app-legacy); the key is the address the gateway sees (for ingress traffic, the ingress gateway pod\'s), and timeoutSeconds 600 has no equivalent',
    ]);
  });

  it('the controller does not nudge a Service it would leave alone', () => {
    const pods = [injectedPod({ name: 'legacy-1', labels: WIN, ip: '10.0.0.1' })];
    expect(selectNudges([userService('legacy', { type: 'NodePort' })], pods)).toEqual([]);
    expect(
      selectNudges([userService('legacy', { type: 'NodePort' }, { 'wpgw.io/inject': 'true' })], pods).map(
        (n) => n.service,
      ),
    ).toEqual(['legacy']);
  });
});

describe('item 2: sessionAffinity ClientIP is carried to the gateway -> <name>-app hop', () => {
  it('DestinationRule wpgw-app-<name> hashes on the source IP only when the Service asked for ClientIP affinity', () => {
    const opts = { clusterDomain: 'cluster.local', defaultGatewayReplicas: 2, corednsImage: 'coredns:test' };
    const pods = [injectedPod({ name: 'legacy-1', labels: WIN, ip: '10.0.0.1' })];
    const dr = (svc: V1Service) =>
      find(
        desiredNamespaceState(
          {
            namespace: namespaceObject(NS),
            pods,
            services: [repointedService(svc, WIN, { uid: 'u1' })],
            clusterDnsIP: '10.96.0.10',
          },
          opts,
        ).objects,
        'DestinationRule',
        'wpgw-app-legacy',
      ) as { spec: unknown } | undefined;
    expect(dr(userService('legacy', { sessionAffinity: 'ClientIP' }))?.spec).toEqual({
      host: 'legacy-app.shop.svc.cluster.local',
      exportTo: ['.'],
      workloadSelector: { matchLabels: { 'wpgw.io/gateway': NS } },
      trafficPolicy: { tls: { mode: 'DISABLE' }, loadBalancer: { consistentHash: { useSourceIp: true } } },
    });
    expect(dr(userService('legacy', { sessionAffinity: 'None' }))?.spec).toEqual({
      host: 'legacy-app.shop.svc.cluster.local',
      exportTo: ['.'],
      workloadSelector: { matchLabels: { 'wpgw.io/gateway': NS } },
      trafficPolicy: { tls: { mode: 'DISABLE' } },
    });
  });
});

describe('item 4: a selector that also matches pods wpgw does not manage', () => {
  const linux: UnmanagedWorkload = {
    workload: 'Deployment/legacy-linux',
    why: 'not Windows',
    labels: { app: 'legacy', build: 'linux' },
  };

  it('classifies templates as mutatePod would', () => {
    const os = () => undefined;
    const tpl = (labels: Record<string, string>, spec: Record<string, unknown>) => ({
      metadata: { labels },
      spec: { containers: [{ name: 'c' }], ...spec },
    });
    expect(
      unmanagedWorkloads(
        [
          { workload: 'Deployment/win', template: tpl({ app: 'a' }, { os: { name: 'windows' } }) },
          { workload: 'Deployment/linux', template: tpl({ app: 'a' }, {}) },
          { workload: 'Deployment/opted-in', template: tpl({ app: 'a', 'wpgw.io/inject': 'true' }, {}) },
          {
            workload: 'Deployment/opted-out',
            template: tpl({ app: 'a', 'wpgw.io/inject': 'false' }, { os: { name: 'windows' } }),
          },
          { workload: 'DaemonSet/host', template: tpl({ app: 'a' }, { os: { name: 'windows' }, hostNetwork: true }) },
        ],
        os,
      ).map((w) => `${w.workload}: ${w.why}`),
    ).toEqual(['DaemonSet/host: host network', 'Deployment/linux: not Windows', 'Deployment/opted-out: opted out']);
  });

  it('re-points, names the other workloads, and narrows <name>-app to the managed pods', () => {
    const c = ctx({
      unmanagedWorkloads: {
        [NS]: [linux, { workload: 'Deployment/unrelated', why: 'not Windows', labels: { app: 'web' } }],
      },
    });
    const { res, stored } = admitService(userService('legacy'), c);
    expect(res.decision.reason).toBe('repointed');
    expect(res.review.response.warnings).toEqual([
      'service "legacy": its selector also matches workloads wpgw does not manage: Deployment/legacy-linux (not Windows). legacy-app selects only the wpgw-managed pods (wpgw.io/managed=true), so those get no traffic through legacy any more; give them their own Service, or narrow the selector of legacy to the Windows pods',
    ]);
    expect(readOriginal(stored)).toEqual({
      selector: { app: 'legacy' },
      ports: [{ name: 'http', port: 8080, targetPort: 'http' }],
      onlyManaged: true,
    });
    const state = desiredNamespaceState(
      {
        namespace: namespaceObject(NS),
        pods: [injectedPod({ name: 'legacy-1', labels: WIN, ip: '10.0.0.1' })],
        services: [{ ...stored, metadata: { ...stored.metadata, uid: 'u1' } }],
      },
      { clusterDomain: 'cluster.local', defaultGatewayReplicas: 2, corednsImage: 'coredns:test' },
    );
    expect(spec(find(state.objects, 'Service', 'legacy-app')).selector).toEqual({
      app: 'legacy',
      'wpgw.io/managed': 'true',
    });
    // No overlap: <name>-app keeps the user's selector exactly, and the record has no flag.
    const plain = admitService(
      userService('legacy'),
      ctx({ unmanagedWorkloads: { [NS]: [{ ...linux, labels: { app: 'other' } }] } }),
    );
    expect(plain.res.review.response.warnings).toBeUndefined();
    expect(readOriginal(plain.stored)?.onlyManaged).toBeUndefined();
  });

  it('property: narrowed and warned iff the selector matches an unmanaged workload, naming exactly those', () => {
    const labels = fc.dictionary(fc.constantFrom('app', 'tier', 'build', 'version'), fc.constantFrom('a', 'b'), {
      minKeys: 1,
      maxKeys: 3,
    });
    fc.assert(
      fc.property(labels, fc.array(labels, { maxLength: 5 }), (selector, otherLabels) => {
        const others = otherLabels.map((l, i): UnmanagedWorkload => ({
          workload: `Deployment/linux-${i}`,
          why: 'not Windows',
          labels: l,
        }));
        const c = staticContext({ windowsLabelSets: { [NS]: [selector] }, unmanagedWorkloads: { [NS]: others } });
        const s = service('legacy', NS, selector, [{ name: 'http', port: 8080 }]);
        const { res, stored } = admitService(s, c);
        expect(res.decision.reason).toBe('repointed');
        const matching = others
          .filter((o) => Object.entries(selector).every(([k, v]) => o.labels[k] === v))
          .map((o) => o.workload);
        expect(readOriginal(stored)?.onlyManaged === true).toBe(matching.length > 0);
        const warning = (res.review.response.warnings ?? []).join('\n');
        for (const o of others) expect(warning.includes(`${o.workload} (`)).toBe(matching.includes(o.workload));
      }),
      { numRuns: 200 },
    );
  });

  it('wpgw status says which re-pointed Services reach only their managed pods, and which are left alone', () => {
    const stored = admitService(userService('legacy'), ctx({ unmanagedWorkloads: { [NS]: [linux] } })).stored;
    const nodePort = userService('legacy-np', { type: 'NodePort' });
    const input = {
      namespace: namespaceObject(NS),
      pods: [injectedPod({ name: 'legacy-1', labels: WIN, ip: '10.0.0.1' })],
      services: [stored, nodePort],
    };
    const text = formatStatus({ namespaces: [summarizeNamespace(input, undefined)], errors: [] });
    expect(text).toContain(
      're-pointed:   legacy -> gateway (app reachable as legacy-app; only its wpgw-managed pods: the selector also matches workloads wpgw does not manage)',
    );
    expect(text).toMatch(
      /conflict: {5}Service\/legacy-np: NotBehindGateway: is left alone \(not re-pointed at the wpgw gateway\): non-mesh clients reach it \(type NodePort/,
    );
    expect(text).toContain('NetworkPolicy wpgw-direct-legacy-np admits its clients');
  });
});

describe('item 2: a left-alone Service keeps its non-mesh clients able to reach the Windows pods', () => {
  it('NetworkPolicy wpgw-direct-<name> opens exactly its target ports (and the Prometheus port) on the managed pods it selects', () => {
    const opts = { clusterDomain: 'cluster.local', defaultGatewayReplicas: 2, corednsImage: 'coredns:test' };
    const pods = [injectedPod({ name: 'legacy-1', labels: WIN, ip: '10.0.0.1' })];
    const lb = userService(
      'legacy',
      {
        type: 'LoadBalancer',
        ports: [
          { name: 'http', port: 80, targetPort: 'http' },
          { name: 'raw', port: 9000, targetPort: 9001, protocol: 'TCP' },
        ],
      },
      { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9102' },
    );
    const state = desiredNamespaceState(
      { namespace: namespaceObject(NS), pods, services: [lb], clusterDnsIP: '10.96.0.10' },
      opts,
    );
    expect(find(state.objects, 'NetworkPolicy', 'wpgw-direct-legacy')).toEqual({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: {
        name: 'wpgw-direct-legacy',
        namespace: NS,
        labels: { 'app.kubernetes.io/managed-by': 'wpgw', 'wpgw.io/for': 'service.legacy' },
      },
      spec: {
        podSelector: { matchLabels: { app: 'legacy', 'wpgw.io/managed': 'true' } },
        policyTypes: ['Ingress'],
        ingress: [
          {
            ports: [
              { protocol: 'TCP', port: 'http' },
              { protocol: 'TCP', port: 9001 },
              { protocol: 'TCP', port: 9102 },
            ],
          },
        ],
      },
    });
    expect(state.conflicts.map((c) => `${c.subject} ${c.reason}`)).toEqual(['Service/legacy NotBehindGateway']);
    // Re-pointed on request, or selecting no managed pod: no opening.
    const forced = desiredNamespaceState(
      {
        namespace: namespaceObject(NS),
        pods,
        services: [userService('legacy', { type: 'LoadBalancer' }, { 'wpgw.io/inject': 'true' })],
        clusterDnsIP: '10.96.0.10',
      },
      opts,
    );
    expect(find(forced.objects, 'NetworkPolicy', 'wpgw-direct-legacy')).toBeUndefined();
    const none = desiredNamespaceState(
      { namespace: namespaceObject(NS), pods: [], services: [lb], clusterDnsIP: '10.96.0.10' },
      opts,
    );
    expect(find(none.objects, 'NetworkPolicy', 'wpgw-direct-legacy')).toBeUndefined();
  });
});

describe('item 2: Services another ingress controller sends to', () => {
  const ingress = (
    name: string,
    backend: string,
    cls?: string,
    via: 'rule' | 'default' | 'annotation' = 'rule',
  ): V1Ingress => ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: {
      name,
      namespace: NS,
      ...(via === 'annotation' && cls ? { annotations: { 'kubernetes.io/ingress.class': cls } } : {}),
    },
    spec: {
      ...(cls && via !== 'annotation' ? { ingressClassName: cls } : {}),
      ...(via === 'default'
        ? { defaultBackend: { service: { name: backend, port: { number: 8080 } } } }
        : {
            rules: [
              {
                host: 'shop.example.com',
                http: {
                  paths: [
                    { path: '/', pathType: 'Prefix', backend: { service: { name: backend, port: { number: 8080 } } } },
                  ],
                },
              },
            ],
          }),
    },
  });

  it('names every non-Istio Ingress sending to the Service, by rule or default backend, class by field or annotation', () => {
    const list = [
      ingress('web', 'legacy', 'nginx'),
      ingress('fallback', 'legacy', undefined, 'default'),
      ingress('old', 'legacy', 'traefik', 'annotation'),
      ingress('mesh', 'legacy', 'istio'),
      ingress('mesh-old', 'legacy', 'istio', 'annotation'),
      ingress('other', 'orders', 'nginx'),
    ];
    expect(nonMeshIngresses('legacy', list)).toEqual([
      'Ingress/fallback (class default)',
      'Ingress/old (class traefik)',
      'Ingress/web (class nginx)',
    ]);
  });

  it('such a Service is left alone at admission, and opened to its clients by wpgw-direct-<name>', () => {
    const c = ctx({ ingresses: { [NS]: [ingress('web', 'legacy', 'nginx')] } });
    const { res } = admitService(userService('legacy'), c);
    expect(res.decision.reason).toBe('non_mesh_clients');
    expect(res.review.response.warnings?.[0]).toContain(
      'non-mesh clients reach it (sent to by Ingress/web (class nginx))',
    );
    expect(
      admitService(userService('legacy'), ctx({ ingresses: { [NS]: [ingress('web', 'legacy', 'istio')] } })).res
        .decision.reason,
    ).toBe('repointed');
    const pods = [injectedPod({ name: 'legacy-1', labels: WIN, ip: '10.0.0.1' })];
    const state = desiredNamespaceState(
      {
        namespace: namespaceObject(NS),
        pods,
        services: [userService('legacy')],
        ingresses: [ingress('web', 'legacy', 'nginx')],
      },
      { clusterDomain: 'cluster.local', defaultGatewayReplicas: 2, corednsImage: 'coredns:test' },
    );
    expect(find(state.objects, 'NetworkPolicy', 'wpgw-direct-legacy')).toBeDefined();
  });

  it('an Ingress appearing after re-pointing: the controller nudges once, the webhook restores, and nothing is nudged again', () => {
    const pods = [injectedPod({ name: 'legacy-1', labels: WIN, ip: '10.0.0.1' })];
    const ingresses = [ingress('web', 'legacy', 'nginx')];
    const repointed = repointedService(userService('legacy'), WIN);
    const [nudge, ...rest] = selectNudges([repointed], pods, undefined, ingresses);
    expect(rest).toEqual([]);
    expect(nudge).toMatchObject({
      service: 'legacy',
      why: 'restore',
      access: ['sent to by Ingress/web (class nginx)'],
    });
    const nudged = {
      ...repointed,
      metadata: {
        ...repointed.metadata,
        annotations: { ...repointed.metadata?.annotations, 'wpgw.io/nudge': nudge!.value },
      },
    };
    const { res, stored } = admitService(nudged, ctx({ ingresses: { [NS]: ingresses } }), 'UPDATE');
    expect(res.decision.reason).toBe('restored');
    expect(stored.spec?.selector).toEqual({ app: 'legacy' });
    expect(selectNudges([stored], pods, undefined, ingresses)).toEqual([]);
    // Without the Ingress, the re-pointed Service is left as it is.
    expect(selectNudges([repointed], pods)).toEqual([]);
  });
});

describe('items 2 and 3 together', () => {
  it('a long-named LoadBalancer Service is left alone (it needs no <name>-app), not denied', () => {
    const long = nameOfLength(61);
    const { res } = admitService(userService(long, { type: 'LoadBalancer' }));
    expect(res.decision).toMatchObject({ allowed: true, reason: 'non_mesh_clients' });
  });
});
