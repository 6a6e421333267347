import type { V1DaemonSet, V1Deployment, V1Pod, V1ReplicaSet, V1StatefulSet } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { Rollout } from '../../src/cluster/cache.js';
import { findDrift } from '../../src/core/records.js';
import { planDriftActions, resolveTopOwner, restartPatch, type OwnerLookup } from '../../src/controller/owners.js';

const NS = 'shop';

function owned(kind: string, name: string) {
  return [{ apiVersion: 'apps/v1', kind, name, uid: `${kind}-${name}-uid`, controller: true }];
}

function pod(
  name: string,
  opts: { owner?: [string, string]; gatewayIP?: string; mode?: string; created?: string; phase?: string } = {},
): V1Pod {
  const status =
    opts.gatewayIP !== undefined
      ? JSON.stringify({ v: 1, mode: opts.mode ?? 'hostAliases', gatewayIP: opts.gatewayIP, outbound: [] })
      : undefined;
  return {
    metadata: {
      name,
      namespace: NS,
      uid: `${name}-uid`,
      creationTimestamp: (opts.created ?? '2026-01-01T00:00:00Z') as unknown as Date,
      ...(opts.owner ? { ownerReferences: owned(...opts.owner) } : {}),
      ...(status ? { annotations: { 'wpgw.io/status': status } } : {}),
    },
    ...(opts.phase ? { status: { phase: opts.phase } } : {}),
  };
}

function lookup(objs: {
  rs?: V1ReplicaSet[];
  deploy?: V1Deployment[];
  sts?: V1StatefulSet[];
  ds?: V1DaemonSet[];
  ro?: Rollout[];
}): OwnerLookup {
  const find = <T extends { metadata?: { name?: string } }>(list: T[] | undefined, name: string) =>
    list?.find((o) => o.metadata?.name === name);
  return {
    replicaSet: (_ns, n) => find(objs.rs, n),
    deployment: (_ns, n) => find(objs.deploy, n),
    statefulSet: (_ns, n) => find(objs.sts, n),
    daemonSet: (_ns, n) => find(objs.ds, n),
    rollout: (_ns, n) => find(objs.ro, n),
  };
}

const deploy: V1Deployment = {
  metadata: { name: 'legacy', namespace: NS, uid: 'd-uid' },
  spec: { selector: {}, template: {} },
};
const rs: V1ReplicaSet = {
  metadata: { name: 'legacy-abc', namespace: NS, ownerReferences: owned('Deployment', 'legacy') },
  spec: { selector: {} },
};
const orphanRs: V1ReplicaSet = { metadata: { name: 'orphan-rs', namespace: NS }, spec: { selector: {} } };
const sts: V1StatefulSet = {
  metadata: { name: 'db', namespace: NS },
  spec: { selector: {}, serviceName: 'db', template: {} },
};
const world = lookup({ rs: [rs, orphanRs], deploy: [deploy], sts: [sts] });

describe('resolveTopOwner', () => {
  it('walks Pod → ReplicaSet → Deployment', () => {
    expect(resolveTopOwner(pod('p', { owner: ['ReplicaSet', 'legacy-abc'] }), world)).toEqual({
      kind: 'Deployment',
      name: 'legacy',
      uid: 'd-uid',
    });
  });
  it('walks Pod → ReplicaSet → Argo Rollout, and stops at the ReplicaSet when the Rollout is not cached', () => {
    const roRs: V1ReplicaSet = {
      metadata: {
        name: 'web-5d8f',
        namespace: NS,
        ownerReferences: [
          { apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', name: 'web', uid: 'r-uid', controller: true },
        ],
      },
      spec: { selector: {} },
    };
    const ro: Rollout = { metadata: { name: 'web', namespace: NS, uid: 'r-uid' }, spec: { template: {} } };
    expect(resolveTopOwner(pod('p', { owner: ['ReplicaSet', 'web-5d8f'] }), lookup({ rs: [roRs], ro: [ro] }))).toEqual({
      kind: 'Rollout',
      name: 'web',
      uid: 'r-uid',
    });
    expect(resolveTopOwner(pod('p', { owner: ['ReplicaSet', 'web-5d8f'] }), lookup({ rs: [roRs] })).kind).toBe(
      'ReplicaSet',
    );
  });
  it('stops at a ReplicaSet without a Deployment, or whose Deployment is not cached', () => {
    expect(resolveTopOwner(pod('p', { owner: ['ReplicaSet', 'orphan-rs'] }), world).kind).toBe('ReplicaSet');
    expect(resolveTopOwner(pod('p', { owner: ['ReplicaSet', 'legacy-abc'] }), lookup({ rs: [rs] })).kind).toBe(
      'ReplicaSet',
    );
    expect(resolveTopOwner(pod('p', { owner: ['ReplicaSet', 'unknown'] }), world).kind).toBe('ReplicaSet');
  });
  it('returns StatefulSet / DaemonSet / Job owners directly, and the pod itself when bare', () => {
    expect(resolveTopOwner(pod('p', { owner: ['StatefulSet', 'db'] }), world)).toMatchObject({
      kind: 'StatefulSet',
      name: 'db',
    });
    expect(resolveTopOwner(pod('p', { owner: ['DaemonSet', 'agent'] }), world)).toMatchObject({
      kind: 'DaemonSet',
      name: 'agent',
    });
    expect(resolveTopOwner(pod('p', { owner: ['Job', 'once'] }), world)).toMatchObject({ kind: 'Job', name: 'once' });
    expect(resolveTopOwner(pod('bare'), world)).toEqual({ kind: 'Pod', name: 'bare', uid: 'bare-uid' });
  });
});

describe('findDrift', () => {
  it('reports only live hostAliases pods whose recorded IP differs', () => {
    const pods = [
      pod('ok', { gatewayIP: '10.0.0.2' }),
      pod('old', { gatewayIP: '10.0.0.1' }),
      pod('dns', { gatewayIP: '10.0.0.1', mode: 'dnsConfig' }),
      pod('done', { gatewayIP: '10.0.0.1', phase: 'Succeeded' }),
      pod('unmanaged'),
    ];
    expect(findDrift(pods, '10.0.0.2')).toEqual([{ pod: 'old', recordedIP: '10.0.0.1', currentIP: '10.0.0.2' }]);
    expect(findDrift(pods, undefined)).toEqual([]);
  });
});

describe('planDriftActions', () => {
  const pods = [
    pod('legacy-abc-1', { owner: ['ReplicaSet', 'legacy-abc'], gatewayIP: '10.0.0.1' }),
    pod('legacy-abc-2', { owner: ['ReplicaSet', 'legacy-abc'], gatewayIP: '10.0.0.1' }),
    pod('db-0', { owner: ['StatefulSet', 'db'], gatewayIP: '10.0.0.1' }),
    pod('bare', { gatewayIP: '10.0.0.1' }),
    pod('fresh', { owner: ['StatefulSet', 'db'], gatewayIP: '10.0.0.2' }),
  ];

  it('restarts each restartable owner once, and warns about the rest', () => {
    const plan = planDriftActions({ pods, currentIP: '10.0.0.2', restartEnabled: true, lookup: world });
    expect(plan.restarts.map((r) => [r.owner.kind, r.owner.name, r.pods])).toEqual([
      ['Deployment', 'legacy', ['legacy-abc-1', 'legacy-abc-2']],
      ['StatefulSet', 'db', ['db-0']],
    ]);
    expect(plan.warnings).toEqual([
      {
        subject: { kind: 'Pod', name: 'bare', uid: 'bare-uid' },
        pods: ['bare'],
        toIP: '10.0.0.2',
        why: 'not-restartable',
      },
    ]);
  });

  it('only warns when the namespace disabled restarts', () => {
    const plan = planDriftActions({ pods, currentIP: '10.0.0.2', restartEnabled: false, lookup: world });
    expect(plan.restarts).toEqual([]);
    expect(plan.warnings.map((w) => [w.subject.kind, w.why])).toEqual([
      ['Deployment', 'disabled'],
      ['Pod', 'disabled'],
      ['StatefulSet', 'disabled'],
    ]);
  });

  it('restarts once per owner per IP (memory), and not again after a restart stamped later than the pod', () => {
    const memo = planDriftActions({
      pods,
      currentIP: '10.0.0.2',
      restartEnabled: true,
      lookup: world,
      restartedFor: (k) => (k === 'Deployment/legacy' ? '10.0.0.2' : undefined),
    });
    expect(memo.restarts.map((r) => r.owner.name)).toEqual(['db']);
    const stamped: V1StatefulSet = {
      ...sts,
      spec: {
        ...sts.spec!,
        template: { metadata: { annotations: { 'wpgw.io/restartedAt': '2026-01-02T00:00:00Z' } } },
      },
    };
    const durable = planDriftActions({
      pods,
      currentIP: '10.0.0.2',
      restartEnabled: true,
      lookup: lookup({ rs: [rs], deploy: [deploy], sts: [stamped] }),
    });
    expect(durable.restarts.map((r) => r.owner.name)).toEqual(['legacy']);
    // Another IP change later: the memory is per IP.
    const again = planDriftActions({
      pods,
      currentIP: '10.0.0.3',
      restartEnabled: true,
      lookup: world,
      restartedFor: () => '10.0.0.2',
    });
    expect(again.restarts.map((r) => r.owner.name)).toEqual(['legacy', 'db']);
  });

  it("restartPatch sets the template annotation, or a Rollout's spec.restartAt", () => {
    expect(restartPatch(new Date('2026-01-01T00:00:00Z'))).toEqual({
      spec: { template: { metadata: { annotations: { 'wpgw.io/restartedAt': '2026-01-01T00:00:00.000Z' } } } },
    });
    expect(restartPatch(new Date('2026-01-01T00:00:00Z'), 'Rollout')).toEqual({
      spec: { restartAt: '2026-01-01T00:00:00.000Z' },
    });
  });

  it('a Rollout whose spec.restartAt is later than the pod is not restarted again', () => {
    const roRs: V1ReplicaSet = {
      metadata: {
        name: 'web-1',
        namespace: NS,
        ownerReferences: [
          { apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', name: 'web', uid: 'r', controller: true },
        ],
      },
      spec: { selector: {} },
    };
    const drifted = [pod('web-1-a', { owner: ['ReplicaSet', 'web-1'], gatewayIP: '10.0.0.1' })];
    const at = (restartAt?: string): Rollout => ({
      metadata: { name: 'web', namespace: NS, uid: 'r' },
      spec: { template: {}, ...(restartAt ? { restartAt } : {}) },
    });
    const plan = (ro: Rollout) =>
      planDriftActions({
        pods: drifted,
        currentIP: '10.0.0.2',
        restartEnabled: true,
        lookup: lookup({ rs: [roRs], ro: [ro] }),
      }).restarts.map((r) => `${r.owner.kind}/${r.owner.name}`);
    expect(plan(at())).toEqual(['Rollout/web']);
    expect(plan(at('2026-01-02T00:00:00Z'))).toEqual([]);
  });
});
