// Issue 11 items 2, 3 and 5: which Services may be re-pointed, and how selectors other controllers
// patch are kept. Real AdmissionReviews through admit(), real JSON patches applied with fast-json-patch.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { V1Service } from '@kubernetes/client-node';
import type { AdmitResult } from '../../src/core/admission-types.js';
import { admit } from '../../src/core/admission.js';
import { desiredNamespaceState } from '../../src/core/desired.js';
import { readOriginal } from '../../src/core/service.js';
import { selectNudges } from '../../src/controller/nudge.js';
import { applyResponse, find, injectedPod, namespaceObject, repointedService, review, service, staticContext } from './helpers/builders.js';

const NS = 'shop';
const WIN = { app: 'legacy', tier: 'web' };
const ctx = (o: Parameters<typeof staticContext>[0] = {}) => staticContext({ windowsLabelSets: { [NS]: [WIN] }, ...o });

function userService(name: string, extra: Partial<V1Service['spec']> = {}, annotations?: Record<string, string>): V1Service {
  const s = service(name, NS, { app: 'legacy' }, [{ name: 'http', port: 8080, targetPort: 'http' }]);
  s.spec = { ...s.spec, ...extra };
  if (annotations) s.metadata = { ...s.metadata, annotations };
  return s;
}

function admitService(object: V1Service, c = ctx(), operation: 'CREATE' | 'UPDATE' = 'CREATE'): { res: AdmitResult & { ok: true }; stored: V1Service } {
  const res = admit(review({ kind: 'Service', operation, namespace: NS, object, ...(operation === 'UPDATE' ? { oldObject: object } : {}) }), c);
  if (!res.ok) throw new Error(res.message);
  return { res, stored: applyResponse(object, res) };
}

const nameOfLength = (n: number) => `s${'x'.repeat(n - 2)}1`;
const dnsLabelOfLength = (min: number, max: number) =>
  fc.integer({ min, max }).chain((n) => fc.stringMatching(n === 1 ? /^[a-z]$/ : new RegExp(`^[a-z][a-z0-9-]{${n - 2}}[a-z0-9]$`)));

describe('item 3: a Service whose <name>-app cannot exist is never re-pointed', () => {
  it('a 60-character name is denied with the reason and what to do; 59 characters is re-pointed', () => {
    const long = nameOfLength(60);
    const { res } = admitService(userService(long));
    expect(res.decision).toMatchObject({ allowed: false, decision: 'denied', reason: 'app_name_too_long' });
    expect(res.review.response.status?.message).toBe(
      `service "${long}": cannot be re-pointed at the wpgw gateway: its Windows pods would be reached through a Service named "${long}-app" (64 characters; Service names are at most 63); rename the Service to at most 59 characters`,
    );
    expect(admitService(userService(nameOfLength(59))).res.decision).toMatchObject({ decision: 'patched', reason: 'repointed' });
  });

  it('a <name>-app the user already owns is denied naming it; one wpgw owns is fine', () => {
    const { res } = admitService(userService('legacy'), ctx({ serviceOwners: { [NS]: { 'legacy-app': 'user' } } }));
    expect(res.decision).toMatchObject({ allowed: false, reason: 'app_service_taken' });
    expect(res.decision.message).toMatch(/^service "legacy": .*a Service named "legacy-app".*already exists that wpgw does not manage; rename or delete "legacy-app"/);
    const ok = admitService(userService('legacy'), ctx({ serviceOwners: { [NS]: { 'legacy-app': 'wpgw' } } }));
    expect(ok.res.decision.reason).toBe('repointed');
  });

  it('an already re-pointed Service whose <name>-app became impossible is restored, not left blackholed', () => {
    const repointed = repointedService(userService('legacy'), WIN);
    const { res, stored } = admitService(repointed, ctx({ serviceOwners: { [NS]: { 'legacy-app': 'user' } } }), 'UPDATE');
    expect(res.decision).toMatchObject({ allowed: true, decision: 'patched', reason: 'restored' });
    expect(res.review.response.warnings?.[0]).toMatch(/^service "legacy": .*restored to its original selector$/);
    expect(stored.spec?.selector).toEqual({ app: 'legacy' });
    expect(stored.spec?.ports).toEqual([{ name: 'http', port: 8080, targetPort: 'http' }]);
    expect(readOriginal(stored)).toBeUndefined();
  });

  it('property: any valid name is re-pointed iff <name>-app fits and is not the user\'s; otherwise denied, never patched', () => {
    fc.assert(
      fc.property(dnsLabelOfLength(1, 63), fc.constantFrom<'wpgw' | 'user' | undefined>(undefined, 'wpgw', 'user'), (name, owner) => {
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
      }),
      { numRuns: 300 },
    );
  });

  it('the controller neither nudges such Services nor creates <name>-app over the user\'s', () => {
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
    expect(state.conflicts).toContainEqual(expect.objectContaining({ subject: 'Service/legacy', reason: 'AppServiceTaken' }));
  });
});

describe('item 5: selector keys other controllers add are merged into the recorded original', () => {
  const argoPatch = (s: V1Service, hash: string): V1Service => ({
    ...s,
    metadata: { ...s.metadata, annotations: { ...s.metadata?.annotations, 'argo-rollouts.argoproj.io/managed-by-rollouts': 'legacy' } },
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

  it('property: keys any client merges into a re-pointed selector are added to (or override) the recorded ones, idempotently', () => {
    const key = fc.stringMatching(/^([a-z]{1,6}\.[a-z]{2,3}\/)?[a-z][a-z0-9-]{0,10}$/).filter((k) => !k.startsWith('wpgw.io/'));
    const value = fc.stringMatching(/^[a-z0-9]{1,8}$/);
    fc.assert(
      fc.property(fc.dictionary(key, value, { minKeys: 1, maxKeys: 4 }), (added) => {
        const c = ctx();
        const stored = admitService(userService('legacy'), c).stored;
        const patched = { ...stored, spec: { ...stored.spec, selector: { ...stored.spec?.selector, ...added } } };
        const once = admitService(patched, c, 'UPDATE').stored;
        expect(readOriginal(once)?.selector).toEqual({ app: 'legacy', ...added });
        expect(once.spec?.selector).toEqual({ 'wpgw.io/gateway': NS });
        const twice = admitService({ ...once, spec: { ...once.spec, selector: { ...once.spec?.selector, ...added } } }, c, 'UPDATE').stored;
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
    forced: fc.boolean(),
  });

  it('property: re-pointed iff no non-mesh client reaches it or wpgw.io/inject is "true"; otherwise left alone with a warning naming each', () => {
    fc.assert(
      fc.property(access, (a) => {
        const annotations: Record<string, string> = {
          ...(a.scrape !== undefined ? { 'prometheus.io/scrape': a.scrape } : {}),
          ...(a.probe !== undefined ? { 'prometheus.io/probe': a.probe } : {}),
          ...(a.forced ? { 'wpgw.io/inject': 'true' } : {}),
        };
        const user = userService('legacy', { ...(a.type ? { type: a.type } : {}), ...(a.externalIPs ? { externalIPs: a.externalIPs } : {}) }, annotations);
        const { res, stored } = admitService(user);
        const expected = [
          ...(a.type === 'LoadBalancer' ? ['type LoadBalancer'] : []),
          ...(a.type === 'NodePort' ? ['type NodePort'] : []),
          ...(a.externalIPs?.length ? ['externalIPs 203.0.113.7'] : []),
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
        expect(warnings[0]).toMatch(/^service "legacy": is left alone \(not re-pointed at the wpgw gateway\): non-mesh clients reach it/);
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
    expect(res.review.response.warnings?.[0]).toMatch(/^service "legacy": is restored to its original selector: non-mesh clients reach it \(type LoadBalancer/);
    expect(stored.spec?.selector).toEqual({ app: 'legacy' });
    expect(stored.spec?.ports).toEqual([{ name: 'http', port: 8080, targetPort: 'http' }]);
    expect(stored.metadata?.annotations?.['wpgw.io/original']).toBeUndefined();
    expect(stored.metadata?.labels?.['wpgw.io/repointed']).toBeUndefined();
  });

  it('sessionAffinity ClientIP is re-pointed with a warning saying where it is carried and what is lost', () => {
    const user = userService('legacy', { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } } });
    const { res } = admitService(user);
    expect(res.decision.reason).toBe('repointed');
    expect(res.review.response.warnings).toEqual([
      'service "legacy": sessionAffinity ClientIP is carried as consistent hashing on the caller\'s source IP from the gateway to legacy-app (DestinationRule wpgw-app-legacy); the key is the address the gateway sees (for ingress traffic, the ingress gateway pod\'s), and timeoutSeconds 600 has no equivalent',
    ]);
  });

  it('the controller does not nudge a Service it would leave alone', () => {
    const pods = [injectedPod({ name: 'legacy-1', labels: WIN, ip: '10.0.0.1' })];
    expect(selectNudges([userService('legacy', { type: 'NodePort' })], pods)).toEqual([]);
    expect(selectNudges([userService('legacy', { type: 'NodePort' }, { 'wpgw.io/inject': 'true' })], pods).map((n) => n.service)).toEqual(['legacy']);
  });
});

describe('item 2: sessionAffinity ClientIP is carried to the gateway -> <name>-app hop', () => {
  it('DestinationRule wpgw-app-<name> hashes on the source IP only when the Service asked for ClientIP affinity', () => {
    const opts = { clusterDomain: 'cluster.local', defaultGatewayReplicas: 2, corednsImage: 'coredns:test' };
    const pods = [injectedPod({ name: 'legacy-1', labels: WIN, ip: '10.0.0.1' })];
    const dr = (svc: V1Service) =>
      find(desiredNamespaceState({ namespace: namespaceObject(NS), pods, services: [repointedService(svc, WIN, { uid: 'u1' })], clusterDnsIP: '10.96.0.10' }, opts).objects, 'DestinationRule', 'wpgw-app-legacy') as { spec: unknown } | undefined;
    expect(dr(userService('legacy', { sessionAffinity: 'ClientIP' }))?.spec).toEqual({
      host: 'legacy-app.shop.svc.cluster.local',
      exportTo: ['.'],
      trafficPolicy: { tls: { mode: 'DISABLE' }, loadBalancer: { consistentHash: { useSourceIp: true } } },
    });
    expect(dr(userService('legacy', { sessionAffinity: 'None' }))?.spec).toEqual({ host: 'legacy-app.shop.svc.cluster.local', exportTo: ['.'], trafficPolicy: { tls: { mode: 'DISABLE' } } });
  });
});
