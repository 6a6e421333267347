import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../../src/core/desired-types.js';
import { objectKey, selectPrunes } from '../../src/controller/prune.js';

const OURS = { 'app.kubernetes.io/managed-by': 'wpgw' };

function obj(
  apiVersion: string,
  kind: string,
  name: string,
  labels: Record<string, string> | null = OURS,
  extra: Partial<KubeObject['metadata']> & Record<string, unknown> = {},
): KubeObject {
  return { apiVersion, kind, metadata: { name, namespace: 'shop', ...(labels ? { labels } : {}), ...extra } };
}

describe('selectPrunes', () => {
  const desired = [
    obj('v1', 'Service', 'wpgw'),
    obj('apps/v1', 'Deployment', 'wpgw'),
    obj('networking.istio.io/v1', 'Gateway', 'wpgw'),
  ];

  it('deletes our objects that are no longer desired, keeps desired ones', () => {
    const live = [
      ...desired,
      obj('v1', 'Service', 'legacy-app'),
      obj('networking.istio.io/v1', 'VirtualService', 'out-80'),
    ];
    expect(selectPrunes('shop', desired, live).map(objectKey)).toEqual([
      '/Service/shop/legacy-app',
      'networking.istio.io/VirtualService/shop/out-80',
    ]);
  });

  it('never touches objects without the managed-by=wpgw label', () => {
    const live = [
      obj('v1', 'Service', 'legacy', { app: 'legacy' }), // the user's own Service
      obj('v1', 'Service', 'user-svc', { app: 'x' }),
      obj('v1', 'ConfigMap', 'not-ours', null),
      obj('v1', 'ConfigMap', 'helm', { 'app.kubernetes.io/managed-by': 'Helm' }),
    ];
    expect(selectPrunes('shop', desired, live)).toEqual([]);
  });

  it('with an empty desired set (opted out) removes everything we made, and only that', () => {
    const live = [...desired, obj('v1', 'Service', 'legacy', { app: 'legacy' })];
    expect(
      selectPrunes('shop', [], live)
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(['wpgw', 'wpgw', 'wpgw']);
  });

  it('ignores objects of unmanaged kinds, of other namespaces, and already terminating', () => {
    const live = [
      obj('v1', 'Secret', 'wpgw-secret'),
      { ...obj('v1', 'ConfigMap', 'elsewhere'), metadata: { name: 'elsewhere', namespace: 'other', labels: OURS } },
      obj('v1', 'ConfigMap', 'going', OURS, { deletionTimestamp: '2026-01-01T00:00:00Z' }),
    ];
    expect(selectPrunes('shop', [], live)).toEqual([]);
  });

  it('matches by group/kind/name regardless of version', () => {
    const live = [obj('networking.istio.io/v1beta1', 'Gateway', 'wpgw')];
    expect(selectPrunes('shop', desired, live)).toEqual([]);
  });
});
