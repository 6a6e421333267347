// Issue 11, item 2: Pods wpgw leaves unmanaged (bare Linux Pods beside managed Windows ones) are
// not in the webhook's caches, so a Service re-pointed over both cannot narrow <name>-app to the
// managed pods at its admission. What every part says instead, from one definition
// (core/workloads.ts unmanagedPodWarning): the webhook at the Pod's admission, render, the
// controller's Events (for workloads) and `wpgw status` (which reads every Pod).
import type { V1Namespace, V1Pod, V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { cacheAdmissionContext } from '../../src/cluster/admission-context.js';
import { WEBHOOK_RESOURCES } from '../../src/cluster/cache.js';
import { summarizeNamespace } from '../../src/commands/status-report.js';
import { admit } from '../../src/core/admission.js';
import { settingHints } from '../../src/core/hints.js';
import { render } from '../../src/render.js';
import { applyResponse } from './helpers/builders.js';
import { review } from '../lib/admission.js';
import { readOriginal } from '../../src/core/records.js';
import { startCache, World, type Obj } from './helpers/fake-cluster.js';

const NS = 'shop';
const original = JSON.stringify({ selector: { app: 'legacy' }, ports: [{ port: 80, targetPort: 8080 }] });
/** `legacy` as the webhook left it: re-pointed, <name>-app not narrowed (it knew no Linux workload). */
const repointed: Obj = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: {
    name: 'legacy',
    namespace: NS,
    resourceVersion: '1',
    labels: { 'wpgw.io/repointed': 'true' },
    annotations: { 'wpgw.io/original': original },
  },
  spec: { selector: { 'wpgw.io/gateway': NS }, ports: [{ port: 80, targetPort: 20001 }] },
};
const linuxPod = (name: string, labels: Record<string, string> = { app: 'legacy' }): Obj => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: NS, labels },
  spec: { containers: [{ name: 'nginx', image: 'nginx' }] },
});
const EXPECTED =
  'wpgw does not manage this pod (not Windows), yet the re-pointed Service "legacy" selects it, so "legacy-app" sends it the wpgw gateway\'s traffic without mTLS';

describe('a Pod wpgw leaves unmanaged that a re-pointed Service still reaches', () => {
  it('the webhook warns at its admission (through the real cache), and only when the selector matches', async () => {
    const world = new World();
    world.objects = [
      {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: NS, resourceVersion: '1', labels: { 'wpgw.io/inject': 'enabled' } },
      },
      repointed,
    ];
    const ctx = cacheAdmissionContext(await startCache(world, WEBHOOK_RESOURCES));
    const res = admit(review({ kind: 'Pod', namespace: NS, object: linuxPod('nginx') }), ctx, {
      clusterDomain: 'cluster.local',
    });
    expect(res.ok && res.decision.decision).toBe('skipped');
    const warnings = res.ok ? (res.review.response.warnings ?? []) : [];
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(EXPECTED);
    const other = admit(review({ kind: 'Pod', namespace: NS, object: linuxPod('other', { app: 'web' }) }), ctx, {
      clusterDomain: 'cluster.local',
    });
    expect(other.ok && other.review.response.warnings).toBeUndefined();
    // Narrowed (onlyManaged): <name>-app does not select it, nothing to say.
    world.emit('MODIFIED', {
      ...repointed,
      metadata: {
        ...repointed.metadata,
        annotations: { 'wpgw.io/original': JSON.stringify({ ...JSON.parse(original), onlyManaged: true }) },
      },
    });
    const narrowed = admit(review({ kind: 'Pod', namespace: NS, object: linuxPod('nginx') }), ctx, {
      clusterDomain: 'cluster.local',
    });
    expect(narrowed.ok && narrowed.review.response.warnings).toBeUndefined();
  });

  it('render says it whichever comes first in the input, once', () => {
    const svc = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'legacy', namespace: NS },
      spec: { selector: { app: 'legacy' }, ports: [{ port: 80, targetPort: 8080 }] },
    };
    const win = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'legacy-win', namespace: NS, labels: { app: 'legacy' } },
      spec: { containers: [{ name: 'c', image: 'i' }], nodeSelector: { 'kubernetes.io/os': 'windows' } },
    };
    for (const order of [
      [win, linuxPod('nginx'), svc],
      [win, svc, linuxPod('nginx')],
    ]) {
      const r = render(order.map((o) => JSON.stringify(o)).join('\n---\n'));
      expect(r.errors).toEqual([]);
      const about = r.report.filter(
        (l) => l.startsWith('warning: Pod/nginx in namespace shop: ') && l.includes(EXPECTED),
      );
      expect(about, JSON.stringify(order.map((o) => o.metadata?.name))).toHaveLength(1);
    }
  });

  it('wpgw status names bare Pods (it reads every Pod); the controller names workloads created after the Service', () => {
    const namespace: V1Namespace = { metadata: { name: NS, labels: { 'wpgw.io/inject': 'enabled' } } };
    const s = summarizeNamespace(
      { namespace, pods: [], services: [repointed as V1Service] },
      undefined,
      () => ({ objects: [], conflicts: [], notes: [] }),
      undefined,
      [],
      {
        allPods: [
          linuxPod('nginx') as V1Pod,
          {
            ...linuxPod('managed'),
            metadata: { ...linuxPod('managed').metadata, labels: { app: 'legacy', 'wpgw.io/managed': 'true' } },
          } as V1Pod,
        ],
      },
    );
    expect(s.hints?.map((h) => h.subject)).toEqual(['Pod/nginx']);
    expect(s.hints?.[0]?.message).toContain(EXPECTED);
    const linux = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'legacy-linux' },
      spec: { template: { metadata: { labels: { app: 'legacy' } }, spec: { containers: [{ name: 'c' }] } } },
    };
    const [hint, ...more] = settingHints(
      namespace,
      { workloads: [linux], services: [repointed as V1Service] },
      () => undefined,
    );
    expect(more).toEqual([]);
    expect(hint).toMatchObject({ kind: 'Deployment', name: 'legacy-linux' });
    expect(hint!.message).toContain(
      'wpgw does not manage its pods (not Windows), yet the re-pointed Service "legacy" selects them, so "legacy-app" sends them',
    );
    expect(hint!.message).toContain(
      'have the webhook admit the Service again (kubectl annotate --overwrite service legacy wpgw.io/nudge=now), which narrows "legacy-app" to the wpgw-managed pods',
    );
  });

  it('the fix the warning names works: once a workload of those pods exists, admitting the Service again narrows <name>-app', async () => {
    const template = (os: string) => ({
      metadata: { labels: { app: 'legacy', os } },
      spec: { containers: [{ name: 'c', image: 'i' }], nodeSelector: { 'kubernetes.io/os': os } },
    });
    const deployment = (name: string, os: string): Obj => ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace: NS, resourceVersion: '1' },
      spec: { selector: { matchLabels: { app: 'legacy', os } }, template: template(os) },
    });
    const world = new World();
    world.objects = [
      {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: NS, resourceVersion: '1', labels: { 'wpgw.io/inject': 'enabled' } },
      },
      repointed,
      deployment('legacy-win', 'windows'),
      deployment('legacy-linux', 'linux'),
    ];
    const ctx = cacheAdmissionContext(await startCache(world, WEBHOOK_RESOURCES));
    const nudged = {
      ...repointed,
      metadata: { ...repointed.metadata, annotations: { ...repointed.metadata?.annotations, 'wpgw.io/nudge': 'now' } },
    };
    const res = admit(
      review({ kind: 'Service', operation: 'UPDATE', namespace: NS, object: nudged, oldObject: repointed }),
      ctx,
      { clusterDomain: 'cluster.local' },
    );
    expect(res.ok && res.decision.reason).toBe('repointed');
    const stored = applyResponse(structuredClone(nudged), res) as V1Service;
    expect(readOriginal(stored)?.onlyManaged).toBe(true);
  });
});
