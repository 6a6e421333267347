import { describe, expect, it } from 'vitest';
import { isSubset, needsApply, ownsFieldsBeyond, parseQuantity } from '../../src/controller/compare.js';

describe('isSubset (desired vs live)', () => {
  const desired = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'wpgw', namespace: 'shop', labels: { 'app.kubernetes.io/managed-by': 'wpgw' } },
    spec: { selector: { 'wpgw.io/gateway': 'shop' }, ports: [{ name: 'http-out-80', port: 80, targetPort: 20000 }] },
  };
  const live = {
    ...desired,
    metadata: {
      ...desired.metadata,
      uid: 'u1',
      resourceVersion: '7',
      labels: { ...desired.metadata.labels, extra: 'x' },
    },
    spec: {
      ...desired.spec,
      clusterIP: '10.96.0.10',
      clusterIPs: ['10.96.0.10'],
      type: 'ClusterIP',
      ports: [{ name: 'http-out-80', port: 80, targetPort: 20000, protocol: 'TCP' }],
    },
    status: { loadBalancer: {} },
  };

  it('ignores fields the API server added (defaults, status, extra labels)', () => {
    expect(isSubset(desired, live)).toBe(true);
  });

  it('detects a changed scalar deep inside', () => {
    const d = structuredClone(desired);
    d.spec.ports[0]!.targetPort = 20001;
    expect(isSubset(d, live)).toBe(false);
  });

  it('compares arrays element-wise and requires equal length', () => {
    const d = structuredClone(desired);
    d.spec.ports.push({ name: 'tcp-out-90', port: 90, targetPort: 20002 });
    expect(isSubset(d, live)).toBe(false);
    const l = structuredClone(live);
    l.spec.ports.push({ name: 'other', port: 1, targetPort: 1, protocol: 'TCP' });
    expect(isSubset(desired, l)).toBe(false);
    expect(isSubset({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
  });

  it('detects a missing label or object', () => {
    const d = structuredClone(desired);
    (d.metadata.labels as Record<string, string>)['wpgw.io/for'] = 'namespace';
    expect(isSubset(d, live)).toBe(false);
    expect(isSubset(desired, undefined)).toBe(false);
  });

  it('treats empty maps/lists as matching absence (the API server drops them)', () => {
    expect(isSubset({ metadata: { annotations: {} }, spec: { list: [] } }, { metadata: {}, spec: {} })).toBe(true);
    expect(isSubset({ spec: { emptyDir: {} } }, { spec: { emptyDir: {} } })).toBe(true);
  });

  it('null in desired means "absent in live"', () => {
    expect(isSubset({ a: null }, {})).toBe(true);
    expect(isSubset({ a: null }, { a: 1 })).toBe(false);
  });

  it('does not confuse types', () => {
    expect(isSubset({ port: 80 }, { port: '80' })).toBe(false);
    expect(isSubset({ a: { b: 1 } }, { a: [1] })).toBe(false);
    expect(isSubset({ a: true }, { a: 'true' })).toBe(false);
  });

  it('compares quantities under resources by value', () => {
    expect(
      isSubset(
        { resources: { requests: { cpu: '0.1', memory: '1024Mi' } } },
        { resources: { requests: { cpu: '100m', memory: '1Gi' } } },
      ),
    ).toBe(true);
    expect(isSubset({ resources: { requests: { cpu: '200m' } } }, { resources: { requests: { cpu: '100m' } } })).toBe(
      false,
    );
    // Outside resources, strings are strings.
    expect(isSubset({ labels: { v: '1k' } }, { labels: { v: '1000' } })).toBe(false);
  });
});

describe('parseQuantity', () => {
  it.each([
    ['100m', 0.1],
    ['1', 1],
    ['1Gi', 2 ** 30],
    ['1k', 1000],
    ['1e3', 1000],
    ['.5', 0.5],
  ])('%s = %d', (q, n) => expect(parseQuantity(q)).toBeCloseTo(n));
  it('rejects non-quantities', () => {
    expect(parseQuantity('abc')).toBeUndefined();
    expect(parseQuantity('1 Gi')).toBeUndefined();
  });
});

describe('ownsFieldsBeyond / needsApply', () => {
  const live = {
    metadata: {
      name: 'x',
      labels: { a: '1', b: '2' },
      managedFields: [
        {
          manager: 'wpgw',
          operation: 'Apply',
          fieldsV1: {
            'f:metadata': { 'f:labels': { 'f:a': {}, 'f:b': {} } },
            'f:spec': { 'f:ports': { 'k:{"port":80,"protocol":"TCP"}': { '.': {}, 'f:port': {} } } },
          },
        },
        { manager: 'kubectl', operation: 'Update', fieldsV1: { 'f:metadata': { 'f:labels': { 'f:c': {} } } } },
      ],
    },
    spec: { ports: [{ port: 80, protocol: 'TCP' }] },
  };

  it('is false when desired still sets every field we own', () => {
    const desired = { metadata: { name: 'x', labels: { a: '1', b: '2' } }, spec: { ports: [{ port: 80 }] } };
    expect(ownsFieldsBeyond(desired, live, 'wpgw')).toBe(false);
    expect(needsApply(desired, live, 'wpgw')).toBe(false);
  });

  it('is true when desired dropped a field we applied earlier (SSA would remove it)', () => {
    const desired = { metadata: { name: 'x', labels: { a: '1' } }, spec: { ports: [{ port: 80 }] } };
    expect(isSubset(desired, live)).toBe(true);
    expect(ownsFieldsBeyond(desired, live, 'wpgw')).toBe(true);
    expect(needsApply(desired, live, 'wpgw')).toBe(true);
  });

  it("ignores other managers' fields and live objects without managedFields", () => {
    const desired = { metadata: { name: 'x', labels: { a: '1', b: '2' } }, spec: { ports: [{ port: 80 }] } };
    expect(ownsFieldsBeyond(desired, { metadata: {} }, 'wpgw')).toBe(false);
    expect(ownsFieldsBeyond(desired, live, 'someone-else')).toBe(false);
  });

  it('needsApply is true for an absent live object', () => {
    expect(needsApply({ metadata: { name: 'x' } }, undefined, 'wpgw')).toBe(true);
  });
});
