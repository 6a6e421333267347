import type { V1Pod, V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { nudgeValue, selectNudges } from '../../src/controller/nudge.js';

function svc(
  name: string,
  selector: Record<string, string> | undefined,
  extra: {
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    spec?: Partial<NonNullable<V1Service['spec']>>;
  } = {},
): V1Service {
  return {
    metadata: { name, namespace: 'shop', annotations: extra.annotations, labels: extra.labels },
    spec: { ...(selector ? { selector } : {}), ports: [{ port: 80 }], ...extra.spec },
  };
}

function pod(name: string, labels: Record<string, string>, terminating = false): V1Pod {
  return {
    metadata: {
      name,
      namespace: 'shop',
      labels: { 'wpgw.io/managed': 'true', ...labels },
      ...(terminating ? { deletionTimestamp: new Date() } : {}),
    },
  };
}

const pods = [
  pod('legacy-1', { app: 'legacy', 'pod-template-hash': 'a' }),
  pod('legacy-2', { app: 'legacy', 'pod-template-hash': 'a' }),
  pod('billing-1', { app: 'billing' }),
];

describe('selectNudges', () => {
  it('nudges plain Services whose selector matches a managed pod', () => {
    const out = selectNudges([svc('legacy', { app: 'legacy' }), svc('unrelated', { app: 'nginx' })], pods);
    expect(out).toEqual([
      { service: 'legacy', value: nudgeValue([pods[0]!.metadata!.labels!]), why: 'repoint', access: [] },
    ]);
  });

  it('skips re-pointed, wpgw-managed, headless, ExternalName, selector-less and opted-out Services', () => {
    const services = [
      svc('repointed', { app: 'legacy' }, { annotations: { 'wpgw.io/original': '{}' } }),
      svc('ours', { app: 'legacy' }, { labels: { 'app.kubernetes.io/managed-by': 'wpgw' } }),
      svc('headless', { app: 'legacy' }, { spec: { clusterIP: 'None' } }),
      svc('external', { app: 'legacy' }, { spec: { type: 'ExternalName', externalName: 'example.com' } }),
      svc('manual', undefined),
      svc('empty', {}),
      svc('optout', { app: 'legacy' }, { labels: { 'wpgw.io/inject': 'false' } }),
    ];
    expect(selectNudges(services, pods)).toEqual([]);
  });

  it('is idempotent: no nudge when the annotation already has the value, or this process wrote it', () => {
    const value = nudgeValue([pods[0]!.metadata!.labels!]);
    expect(selectNudges([svc('legacy', { app: 'legacy' }, { annotations: { 'wpgw.io/nudge': value } })], pods)).toEqual(
      [],
    );
    expect(selectNudges([svc('legacy', { app: 'legacy' })], pods, () => value)).toEqual([]);
    // A new distinct set of pods gives a new value: one more nudge.
    const rolled = [pod('legacy-3', { app: 'legacy', 'pod-template-hash': 'b' })];
    expect(
      selectNudges([svc('legacy', { app: 'legacy' }, { annotations: { 'wpgw.io/nudge': value } })], rolled),
    ).toHaveLength(1);
  });

  it('ignores terminating pods', () => {
    expect(selectNudges([svc('billing', { app: 'billing' })], [pod('billing-1', { app: 'billing' }, true)])).toEqual(
      [],
    );
  });
});

describe('nudgeValue', () => {
  it('does not depend on order or duplicates', () => {
    const a = { app: 'a', x: '1' };
    const b = { app: 'b' };
    expect(nudgeValue([a, b, a])).toBe(nudgeValue([b, { x: '1', app: 'a' }]));
    expect(nudgeValue([a])).not.toBe(nudgeValue([b]));
    expect(nudgeValue([a])).toMatch(/^[0-9a-f]{16}$/);
  });
});
