import { describe, expect, it } from 'vitest';
import type { CacheEvent, ResourceKey } from '../../src/cluster/cache.js';
import type { KubeObjectLike } from '../../src/cluster/store.js';
import { namespacesForEvent } from '../../src/controller/routing.js';

const view = {
  isOptedIn: (ns: string) => ns === 'shop' || ns === 'bank',
  optedInNamespaces: () => ['bank', 'shop'],
};

function ev(resource: ResourceKey, type: CacheEvent['type'], obj: KubeObjectLike, old?: KubeObjectLike): CacheEvent {
  return { source: resource, resource, kind: obj.kind ?? '', type, obj, old };
}

const nsObj = (name: string, enabled: boolean): KubeObjectLike => ({
  kind: 'Namespace',
  metadata: { name, labels: enabled ? { 'wpgw.io/inject': 'enabled' } : {} },
});

describe('namespacesForEvent', () => {
  it('enqueues an opted-in namespace and one that just lost the label (cleanup)', () => {
    expect(namespacesForEvent(ev('namespaces', 'add', nsObj('shop', true)), view)).toEqual(['shop']);
    expect(namespacesForEvent(ev('namespaces', 'update', nsObj('shop', false), nsObj('shop', true)), view)).toEqual([
      'shop',
    ]);
    expect(namespacesForEvent(ev('namespaces', 'update', nsObj('quiet', false), nsObj('quiet', false)), view)).toEqual(
      [],
    );
    expect(namespacesForEvent(ev('namespaces', 'delete', nsObj('shop', true)), view)).toEqual([]);
  });

  it('enqueues the namespace of any object in an opted-in namespace', () => {
    expect(
      namespacesForEvent(
        ev('services', 'update', { kind: 'Service', metadata: { name: 'legacy', namespace: 'shop' } }),
        view,
      ),
    ).toEqual(['shop']);
    expect(
      namespacesForEvent(
        ev('managedPods', 'delete', { kind: 'Pod', metadata: { name: 'p', namespace: 'bank' } }),
        view,
      ),
    ).toEqual(['bank']);
    expect(
      namespacesForEvent(
        ev('deployments', 'update', { kind: 'Deployment', metadata: { name: 'd', namespace: 'quiet' } }),
        view,
      ),
    ).toEqual([]);
  });

  it("a caller's VirtualService or DestinationRule enqueues the opted-in namespaces its hosts name (before and after a change)", () => {
    const vs = (hosts: string[], ns = 'sales') =>
      ({
        kind: 'VirtualService',
        metadata: { name: 'to-legacy', namespace: ns },
        spec: { hosts, http: [{ route: [{ destination: { host: hosts[0] } }] }] },
      }) as KubeObjectLike;
    expect(namespacesForEvent(ev('virtualservices', 'add', vs(['legacy.shop.svc.cluster.local'])), view)).toEqual([
      'shop',
    ]);
    expect(namespacesForEvent(ev('virtualservices', 'update', vs(['legacy.bank']), vs(['legacy.shop'])), view)).toEqual(
      ['bank', 'shop'],
    );
    expect(namespacesForEvent(ev('virtualservices', 'add', vs(['legacy.shop'], 'bank')), view)).toEqual([
      'bank',
      'shop',
    ]);
    expect(namespacesForEvent(ev('virtualservices', 'add', vs(['api.example.com'])), view)).toEqual([]);
    const dr = {
      kind: 'DestinationRule',
      metadata: { name: 'legacy', namespace: 'sales' },
      spec: { host: 'legacy.shop' },
    } as KubeObjectLike;
    expect(namespacesForEvent(ev('destinationrules', 'delete', dr), view)).toEqual(['shop']);
  });

  it("a policy in Istio's root namespace enqueues every opted-in namespace; elsewhere only its own", () => {
    const root = { ...view, rootNamespace: 'aks-istio-system' };
    const ap = (ns: string) =>
      ({ kind: 'AuthorizationPolicy', metadata: { name: 'mesh', namespace: ns }, spec: {} }) as KubeObjectLike;
    for (const r of ['authorizationpolicies', 'peerauthentications', 'requestauthentications'] as const) {
      expect(namespacesForEvent(ev(r, 'add', ap('aks-istio-system')), root)).toEqual(['bank', 'shop']);
    }
    expect(namespacesForEvent(ev('authorizationpolicies', 'add', ap('istio-system')), root)).toEqual([]);
  });

  it('enqueues a namespace that is not opted in when one of our objects lives there (leftover)', () => {
    const ours = {
      kind: 'ConfigMap',
      metadata: { name: 'x', namespace: 'quiet', labels: { 'app.kubernetes.io/managed-by': 'wpgw' } },
    };
    expect(namespacesForEvent(ev('managedOutputs', 'add', ours), view)).toEqual(['quiet']);
  });

  it('opting out waits on re-pointed Services and injected pods in a namespace no longer opted in', () => {
    const repointed = {
      kind: 'Service',
      metadata: { name: 'legacy', namespace: 'quiet', annotations: { 'wpgw.io/original': '{}' } },
    };
    const restored = { kind: 'Service', metadata: { name: 'legacy', namespace: 'quiet' } };
    expect(namespacesForEvent(ev('services', 'update', restored, repointed), view)).toEqual(['quiet']);
    expect(namespacesForEvent(ev('services', 'update', restored, restored), view)).toEqual([]);
    expect(
      namespacesForEvent(
        ev('managedPods', 'delete', { kind: 'Pod', metadata: { name: 'p', namespace: 'quiet' } }),
        view,
      ),
    ).toEqual(['quiet']);
  });

  it('a kube-dns change affects every opted-in namespace; runtime classes none', () => {
    expect(
      namespacesForEvent(
        ev('services', 'update', { kind: 'Service', metadata: { name: 'kube-dns', namespace: 'kube-system' } }),
        view,
      ),
    ).toEqual(['bank', 'shop']);
    expect(
      namespacesForEvent(ev('runtimeclasses', 'add', { kind: 'RuntimeClass', metadata: { name: 'win' } }), view),
    ).toEqual([]);
  });
});
