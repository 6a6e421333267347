// wpgw check's decisions over a scripted API (the e2e suite runs it against the real control
// plane): what each check concludes from what it reads, and the table it prints.
import { describe, expect, it } from 'vitest';
import { ApiException } from '@kubernetes/client-node';
import { runChecks, type CheckResult } from '../../src/cluster/checks.js';
import type { KubeRest } from '../../src/cluster/client.js';
import { formatChecks } from '../../src/commands/check.js';

/** Answers GETs from a path -> body map (404 otherwise) and POSTs with `post`. */
function api(
  gets: Record<string, unknown>,
  post: (path: string, body: any) => unknown = () => ({ status: { allowed: true } }),
): KubeRest {
  return {
    async request<T>(method: string, path: string, opts: { body?: unknown } = {}): Promise<T> {
      if (method === 'POST') return post(path, opts.body) as T;
      if (Object.hasOwn(gets, path)) return gets[path] as T;
      throw new ApiException(404, 'not found', {}, {});
    },
  };
}

const byName = (results: CheckResult[], name: string) => results.find((r) => r.name === name);
const NOW = Date.parse('2026-12-01T12:00:00Z');

describe('runChecks', () => {
  it('stops after the API check when the server cannot be reached', async () => {
    const rest: KubeRest = { request: async () => Promise.reject(new Error('connect ECONNREFUSED')) };
    const results = await runChecks({ rest, wpgwNamespace: 'wpgw-system', pre: false });
    expect(results).toEqual([
      expect.objectContaining({ name: 'can reach the API server', status: 'fail', detail: 'connect ECONNREFUSED' }),
    ]);
  });

  it('reads versions, runtimes, leases and access reviews into ok / warn / fail with hints', async () => {
    const rest = api(
      {
        '/version': { gitVersion: 'v1.28.5' },
        '/api/v1/nodes': {
          items: [{ metadata: { name: 'win-a' }, status: { nodeInfo: { containerRuntimeVersion: 'docker://20.10' } } }],
        },
        '/apis/apps/v1/daemonsets': {
          items: [
            {
              metadata: { name: 'calico-node-windows', namespace: 'calico-system' },
              spec: { template: { spec: { nodeSelector: { 'kubernetes.io/os': 'windows' } } } },
            },
          ],
        },
        '/api/v1/namespaces': { items: [{ metadata: { name: 'kube-system' } }] },
        '/apis/coordination.k8s.io/v1/namespaces/wpgw-system/leases/wpgw-controller': {
          spec: { holderIdentity: 'c-1', leaseDurationSeconds: 15, renewTime: new Date(NOW - 60_000).toISOString() },
        },
      },
      (path, body) =>
        path.endsWith('/subjectaccessreviews')
          ? { status: { allowed: body.spec.resourceAttributes.resource !== 'leases' } }
          : {},
    );
    const results = await runChecks({ rest, wpgwNamespace: 'wpgw-system', pre: false, now: () => NOW });
    expect(byName(results, 'Kubernetes is 1.29 or newer')).toMatchObject({ status: 'warn', detail: 'v1.28.5' });
    expect(byName(results, 'Windows nodes run containerd')).toMatchObject({
      status: 'fail',
      detail: 'win-a: docker://20.10',
    });
    expect(byName(results, 'a NetworkPolicy-enforcing CNI runs on Windows nodes (heuristic)')).toMatchObject({
      status: 'ok',
      detail: 'calico-system/calico-node-windows',
    });
    expect(byName(results, 'ServiceAccount wpgw-controller has its RBAC')).toMatchObject({
      status: 'fail',
      detail: 'denied: update leases.coordination.k8s.io/wpgw-controller',
    });
    expect(byName(results, 'ServiceAccount wpgw-webhook has its RBAC')?.status).toBe('ok');
    expect(byName(results, 'system namespaces are not opted in')).toMatchObject({
      status: 'fail',
      detail: 'kube-system',
    });
    expect(byName(results, 'the controller has a leader')).toMatchObject({
      status: 'fail',
      detail: 'held by c-1, last renewed 60s ago (lease 15s)',
    });
    expect(byName(results, 'Istio CRDs wpgw writes')?.status).toBe('fail');
    expect(byName(results, 'MutatingWebhookConfiguration wpgw')).toMatchObject({ status: 'fail', detail: 'not found' });
    for (const r of results.filter((x) => x.status !== 'ok')) expect(r.hint, r.name).toBeTruthy();
  });

  it('--pre reviews your own access and skips wpgw', async () => {
    const seen: string[] = [];
    const rest = api(
      {
        '/version': { gitVersion: 'v1.36.3' },
        '/api/v1/nodes': { items: [] },
        '/apis/apps/v1/daemonsets': { items: [] },
        '/api/v1/namespaces': { items: [] },
      },
      (path, body) => {
        seen.push(
          `${path.split('/').pop()} ${body.spec.resourceAttributes.verb} ${body.spec.resourceAttributes.resource}`,
        );
        return { status: { allowed: body.spec.resourceAttributes.resource !== 'mutatingwebhookconfigurations' } };
      },
    );
    const results = await runChecks({ rest, wpgwNamespace: 'wpgw-system', pre: true });
    expect(byName(results, 'you may install wpgw')).toMatchObject({
      status: 'fail',
      detail: 'denied: create mutatingwebhookconfigurations.admissionregistration.k8s.io',
    });
    expect(seen.every((s) => s.startsWith('selfsubjectaccessreviews'))).toBe(true);
    expect(results.map((r) => r.group)).not.toContain('wpgw control plane');
    expect(byName(results, 'Windows nodes')).toMatchObject({ status: 'warn', detail: 'none' });
  });
});

describe("the injector's gateway template", () => {
  const run = (config: string) =>
    runChecks({
      rest: api({
        '/version': { gitVersion: 'v1.36.3' },
        '/api/v1/nodes': { items: [] },
        '/apis/apps/v1/daemonsets': { items: [] },
        '/api/v1/namespaces': { items: [] },
        '/api/v1/configmaps': {
          items: [
            { metadata: { name: 'istio-sidecar-injector-asm-1-26', namespace: 'aks-istio-system' }, data: { config } },
          ],
        },
      }),
      wpgwNamespace: 'wpgw-system',
      pre: true,
    });
  it("ok when istiod's ConfigMap holds templates.gateway, a failure with the hint when not", async () => {
    expect(
      byName(
        await run('policy: enabled\ntemplates:\n  sidecar: |\n    x\n  gateway: |\n    y\n'),
        "the injector's gateway template",
      ),
    ).toMatchObject({ status: 'ok', detail: 'aks-istio-system/istio-sidecar-injector-asm-1-26' });
    const missing = byName(
      await run('policy: enabled\ntemplates:\n  sidecar: |\n    gateway: not a template key\n'),
      "the injector's gateway template",
    );
    expect(missing).toMatchObject({
      status: 'fail',
      detail: 'no gateway template in aks-istio-system/istio-sidecar-injector-asm-1-26',
    });
    expect(missing?.hint).toContain('inject.istio.io/templates: gateway');
  });
});

describe('gateway pods are injected', () => {
  // Istio's per-revision webhooks as the istio-discovery chart renders them for asm-1-26, no default.
  const core = { rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }] };
  const revisionOnly = {
    metadata: { name: 'istio-sidecar-injector-asm-1-26', labels: { 'istio.io/rev': 'asm-1-26' } },
    webhooks: [
      {
        name: 'rev.namespace.sidecar-injector.istio.io',
        ...core,
        namespaceSelector: {
          matchExpressions: [
            { key: 'istio.io/rev', operator: 'In', values: ['asm-1-26'] },
            { key: 'istio-injection', operator: 'DoesNotExist' },
          ],
        },
      },
      {
        name: 'rev.object.sidecar-injector.istio.io',
        ...core,
        namespaceSelector: {
          matchExpressions: [
            { key: 'istio.io/rev', operator: 'DoesNotExist' },
            { key: 'istio-injection', operator: 'DoesNotExist' },
          ],
        },
        objectSelector: {
          matchExpressions: [
            { key: 'sidecar.istio.io/inject', operator: 'NotIn', values: ['false'] },
            { key: 'istio.io/rev', operator: 'In', values: ['asm-1-26'] },
          ],
        },
      },
    ],
  };
  const run = (istioRevision?: string) =>
    runChecks({
      rest: api({
        '/version': { gitVersion: 'v1.36.3' },
        '/api/v1/nodes': { items: [] },
        '/apis/apps/v1/daemonsets': { items: [] },
        '/api/v1/namespaces': { items: [] },
        '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations': { items: [revisionOnly] },
      }),
      wpgwNamespace: 'wpgw-system',
      pre: true,
      ...(istioRevision ? { istioRevision } : {}),
    });
  it("the AKS add-on shape: no revision set fails with the revision to set; with it, the revision's object webhook injects", async () => {
    const without = byName(await run(), 'gateway pods are injected (no revision set)');
    expect(without).toMatchObject({
      status: 'fail',
      detail:
        'no injector webhook selects a pod labelled sidecar.istio.io/inject=true, security.istio.io/tlsMode=istio',
    });
    expect(without?.hint).toContain('istio.revision) to one of asm-1-26');
    expect(byName(await run('asm-1-26'), 'gateway pods are injected (revision asm-1-26)')).toMatchObject({
      status: 'ok',
      detail: 'by istio-sidecar-injector-asm-1-26/rev.object.sidecar-injector.istio.io',
    });
  });
});

describe('formatChecks', () => {
  it('groups, marks ✔ ‼ ✖, puts the hint under what is not ok, and sums up', () => {
    const text = formatChecks([
      { group: 'A', name: 'one', status: 'ok', detail: 'fine' },
      { group: 'A', name: 'two', status: 'warn', hint: 'do x' },
      { group: 'B', name: 'three', status: 'fail', detail: 'broken', hint: 'do y' },
    ]);
    expect(text).toBe(
      'A\n-\n✔ one: fine\n‼ two\n    see: do x\n\nB\n-\n✖ three: broken\n    see: do y\n\nStatus check results are ✖ (1 failed, 1 warning(s))\n',
    );
  });
});
