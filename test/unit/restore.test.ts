// The pure hand-back plan (core/restore.ts): the restore patch applied, as the API server applies
// a JSON merge patch, to Services as each apply method leaves them; and the phase order.
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../../src/core/desired-types.js';
import { planRestore, serviceRestorePatch } from '../../src/core/restore.js';
import { applyMergePatch } from '../lib/merge-patch.js';

const ORIGINAL = {
  selector: { app: 'legacy', tier: 'web' },
  ports: [
    { name: 'http', port: 80, targetPort: 'http' },
    { name: 'grpc', port: 9000, targetPort: 9000 },
  ],
};
const USER_SPEC = { type: 'ClusterIP', clusterIP: '10.96.0.7', selector: ORIGINAL.selector, ports: ORIGINAL.ports };

function repointed(
  selector: Record<string, string>,
  extra: { labels?: Record<string, string>; annotations?: Record<string, string> } = {},
): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: 'legacy',
      namespace: 'shop',
      resourceVersion: '42',
      labels: { 'wpgw.io/repointed': 'true', team: 'a', ...extra.labels },
      annotations: {
        'wpgw.io/original': JSON.stringify(ORIGINAL),
        'wpgw.io/nudge': '0123',
        'kubectl.kubernetes.io/last-applied-configuration': '{}',
        ...extra.annotations,
      },
    },
    spec: {
      type: 'ClusterIP',
      clusterIP: '10.96.0.7',
      selector,
      ports: [
        { name: 'http', port: 80, targetPort: 31001 },
        { name: 'grpc', port: 9000, targetPort: 31002 },
      ],
    },
  };
}

function restoredBy(live: V1Service): V1Service {
  const r = serviceRestorePatch(live)!;
  expect(r).toBeDefined();
  expect((r.patch.metadata as { resourceVersion?: string }).resourceVersion).toBe('42');
  const out = applyMergePatch(live, r.patch) as V1Service;
  delete out.metadata!.resourceVersion;
  return out;
}

describe('serviceRestorePatch: the live Service ends with exactly the original selector and ports', () => {
  it.each([
    // Admitted and re-pointed, never re-applied (any apply method), or after server-side apply
    // (the selector is atomic: our mutation replaced it whole).
    ['as the webhook left it / server-side applied', { 'wpgw.io/gateway': 'shop' }],
    // Client-side apply and Helm's three-way merge put the user's keys back beside ours.
    ['client-side applied / Helm three-way merged', { 'wpgw.io/gateway': 'shop', app: 'legacy', tier: 'web' }],
  ])('%s', (_name, selector) => {
    const out = restoredBy(repointed(selector));
    expect(out.spec).toEqual(USER_SPEC);
    expect(out.metadata!.labels).toEqual({ team: 'a' });
    expect(out.metadata!.annotations).toEqual({ 'kubectl.kubernetes.io/last-applied-configuration': '{}' });
  });

  it("keeps a selector key the user added since (it is the user's, not ours)", () => {
    const out = restoredBy(repointed({ 'wpgw.io/gateway': 'shop', app: 'legacy', tier: 'web', track: 'stable' }));
    expect(out.spec!.selector).toMatchObject({ ...ORIGINAL.selector, track: 'stable' });
    expect(out.spec!.selector!['wpgw.io/gateway']).toBeUndefined();
  });

  it('leaves alone what is not re-pointed by wpgw', () => {
    expect(serviceRestorePatch({ metadata: { name: 'x' }, spec: { selector: { app: 'x' } } })).toBeUndefined();
    expect(
      serviceRestorePatch({ metadata: { name: 'x', annotations: { 'wpgw.io/original': 'not json' } }, spec: {} }),
    ).toBeUndefined();
    const ours = repointed({ 'wpgw.io/gateway': 'shop' }, { labels: { 'app.kubernetes.io/managed-by': 'wpgw' } });
    expect(serviceRestorePatch(ours)).toBeUndefined();
  });
});

const OURS = (owner: string) => ({ 'app.kubernetes.io/managed-by': 'wpgw', 'wpgw.io/for': owner });
const obj = (kind: string, name: string, owner: string, spec: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: kind === 'Deployment' ? 'apps/v1' : kind === 'DestinationRule' ? 'networking.istio.io/v1' : 'v1',
  kind,
  metadata: { name, namespace: 'shop', labels: OURS(owner) },
  spec,
});
const gateway = (labelled: boolean, ready: boolean) =>
  ({
    ...obj('Deployment', 'wpgw', 'namespace', {
      replicas: 2,
      template: {
        metadata: {
          labels: { 'wpgw.io/gateway': 'shop', ...(labelled ? { 'security.istio.io/tlsMode': 'istio' } : {}) },
        },
      },
    }),
    status: ready ? { replicas: 2, readyReplicas: 2, updatedReplicas: 2, availableReplicas: 2 } : {},
  }) as KubeObject;
const callerRule = obj('DestinationRule', 'wpgw-in-legacy', 'service.legacy', {
  host: 'legacy.shop.svc.cluster.local',
});
const appRule = obj('DestinationRule', 'wpgw-app-legacy', 'service.legacy', {
  host: 'legacy-app.shop.svc.cluster.local',
});
const appService = obj('Service', 'legacy-app', 'service.legacy');
const status = JSON.stringify({
  v: 1,
  mode: 'hostAliases',
  gatewayIP: '10.96.0.9',
  hostnames: ['orders'],
  outbound: ['orders:80'],
});
const pod = (name: string, extra: Partial<V1Pod> = {}): V1Pod => ({
  metadata: {
    name,
    namespace: 'shop',
    labels: { 'wpgw.io/managed': 'true' },
    annotations: { 'wpgw.io/status': status },
  },
  ...extra,
});

describe('planRestore: one phase at a time, in an order that keeps callers working', () => {
  const svc = repointed({ 'wpgw.io/gateway': 'shop' });

  it('labels the gateway pods for auto-mTLS first, then waits for their rollout', () => {
    const managed = [gateway(false, true), callerRule, appRule, appService];
    let p = planRestore({ namespace: 'shop', services: [svc], pods: [pod('w-1')], managed });
    expect(p.phase).toBe('gateway');
    expect(p.gatewayPatch).toEqual({
      spec: { template: { metadata: { labels: { 'security.istio.io/tlsMode': 'istio' } } } },
    });
    expect(p.deletions).toEqual([]);
    expect(p.services).toEqual([]);
    p = planRestore({ namespace: 'shop', services: [svc], pods: [], managed: [gateway(true, false), callerRule] });
    expect(p).toMatchObject({ phase: 'gateway', deletions: [], services: [] });
    expect(p.gatewayPatch).toBeUndefined();
  });

  it('regression (data-path flow 10): waits while a pod of the old, unlabelled template still serves', () => {
    // New pods updated and ready, the old one not yet gone (or the new ones not yet available):
    // deleting the caller rule now would make callers send plaintext to the old pod's mTLS listener.
    for (const status of [
      { replicas: 3, readyReplicas: 3, updatedReplicas: 2, availableReplicas: 3 },
      { replicas: 2, readyReplicas: 2, updatedReplicas: 2, availableReplicas: 1 },
    ]) {
      const gw = { ...gateway(true, true), status } as KubeObject;
      expect(
        planRestore({ namespace: 'shop', services: [svc], pods: [], managed: [gw, callerRule] }).phase,
        JSON.stringify(status),
      ).toBe('gateway');
    }
  });

  it('then deletes only the caller-side rule for <name>, then restores the Services, keeping the gateway', () => {
    const managed = [gateway(true, true), callerRule, appRule, appService];
    let p = planRestore({ namespace: 'shop', services: [svc], pods: [pod('w-1')], managed });
    expect(p.phase).toBe('callers');
    expect(p.deletions.map((o) => o.metadata.name)).toEqual(['wpgw-in-legacy']);
    p = planRestore({
      namespace: 'shop',
      services: [svc],
      pods: [pod('w-1')],
      managed: [gateway(true, true), appRule, appService],
    });
    expect(p.phase).toBe('services');
    expect(p.services.map((s) => s.service)).toEqual(['legacy']);
    expect(p.deletions).toEqual([]);
  });

  it('keeps everything while a running pod still points at the gateway; then deletes all of it', () => {
    const managed = [gateway(true, true), appRule, appService];
    const restored = restoredBy(svc);
    const done = pod('done', { status: { phase: 'Succeeded' } });
    const going = pod('going', { metadata: { ...pod('going').metadata, deletionTimestamp: new Date() } });
    const clean: V1Pod = { metadata: { name: 'clean', namespace: 'shop', labels: { 'wpgw.io/managed': 'true' } } };
    let p = planRestore({ namespace: 'shop', services: [restored], pods: [pod('w-1'), done, going, clean], managed });
    expect(p.phase).toBe('pods');
    expect(p.pointing.map((x) => x.metadata!.name)).toEqual(['w-1']);
    expect(p.deletions).toEqual([]);
    p = planRestore({ namespace: 'shop', services: [restored], pods: [done, going, clean], managed });
    expect(p.phase).toBe('cleanup');
    expect(p.deletions.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'Deployment/wpgw',
      'DestinationRule/wpgw-app-legacy',
      'Service/legacy-app',
    ]);
    expect(planRestore({ namespace: 'shop', services: [restored], pods: [], managed: [] }).phase).toBe('done');
  });

  it("never deletes an object without both of the controller's labels", () => {
    const user = { ...appRule, metadata: { ...appRule.metadata, labels: {} } };
    const install = {
      ...appRule,
      metadata: { ...appRule.metadata, labels: { 'app.kubernetes.io/managed-by': 'wpgw' } },
    };
    expect(planRestore({ namespace: 'shop', services: [], pods: [], managed: [user, install] }).phase).toBe('done');
  });
});
