// charts/wpgw against a real kube-apiserver: every ci values file renders objects the API server
// accepts under strict field validation (server-side dry run, so the stack's own install is left
// as it is). The render-and-assert tests (test/helm) check what the objects say; this checks that
// Kubernetes takes them, including the free-form values (securityContext, affinity, ...) the
// schema cannot type. cert-manager and Prometheus Operator objects are left out: the harness has
// neither's CRDs (test/helm checks what they say).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { kubectl } from './helpers.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CHART = join(ROOT, 'charts/wpgw');
const HELM = join(ROOT, 'test/helm/bin/helm');
const NS = 'wpgw-system';

/** The release's objects; `helm test` hooks only with withTests (they are checked on their own below). */
function render(args: string[], withTests = false): string {
  const r = spawnSync(
    HELM,
    ['template', 'wpgw', CHART, '--namespace', NS, ...(withTests ? [] : ['--skip-tests']), ...args],
    { encoding: 'utf8', timeout: 60_000 },
  );
  if (r.status !== 0) throw new Error(`helm template ${args.join(' ')}: ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as { apiVersion?: string } | null)
    .filter(
      (o): o is { apiVersion: string } =>
        Boolean(o) &&
        !o!.apiVersion!.startsWith('cert-manager.io/') &&
        !o!.apiVersion!.startsWith('monitoring.coreos.com/'),
    )
    .map((o) => stringify(o))
    .join('---\n');
}

function dryRunApply(yaml: string) {
  return kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], yaml);
}

beforeAll(() => {
  if (!existsSync(HELM)) throw new Error(`${HELM} is missing: run bash test/helm/build.sh first (.ci/run does)`);
});

describe('charts/wpgw on a real API server (server-side dry run, strict field validation)', () => {
  const files = readdirSync(join(CHART, 'ci')).filter((f) => f.endsWith('-values.yaml'));

  it.each(files)('ci/%s: every object is accepted', (file) => {
    const r = dryRunApply(render(['-f', join(CHART, 'ci', file)]));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /mutatingwebhookconfiguration.admissionregistration.k8s.io\/wpgw (created|configured|unchanged) \(server dry run\)/,
    );
  });

  it('the helm test hook: its ServiceAccount and RBAC are accepted, and its pod is under restricted Pod Security', () => {
    const hooks = parseAllDocuments(render([], true))
      .map((d) => d.toJS())
      .filter((o) => o?.metadata?.annotations?.['helm.sh/hook'] === 'test');
    expect(hooks.map((o) => o.kind).sort()).toEqual(['ClusterRole', 'ClusterRoleBinding', 'Pod', 'ServiceAccount']);
    const yaml = (kinds: string[]) =>
      hooks
        .filter((o) => kinds.includes(o.kind))
        .map((o) => stringify(o))
        .join('---\n');
    // A Pod's dry run needs its ServiceAccount to exist, as helm test creates it first (hook weight -1).
    const sa = kubectl(['apply', '-f', '-'], yaml(['ServiceAccount']));
    expect(sa.status, sa.stderr).toBe(0);
    try {
      const r = dryRunApply(yaml(['ClusterRole', 'ClusterRoleBinding', 'Pod']));
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).not.toMatch(/would violate PodSecurity/);
      expect(r.stdout).toContain('pod/wpgw-check created (server dry run)');
    } finally {
      kubectl(['delete', 'serviceaccount', 'wpgw-check', '-n', NS, '--ignore-not-found']);
    }
  });

  it('a misspelt field inside a free-form value is refused (the check above can fail)', () => {
    const r = dryRunApply(render(['--set', 'webhook.podSecurityContext.runAsUsr=1000']));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/unknown field "spec.template.spec.securityContext.runAsUsr"/);
  });
});
