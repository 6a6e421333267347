// `wpgw check` against the real control plane, as a user runs it (the built CLI, the admin
// kubeconfig): a healthy namespace passes (istiod's real injector registered as the chart does, so
// the gateway pods really are injected), and each way of breaking it that the check claims to
// catch is produced for real and named with its hint: a Windows node without containerd (the kwok
// node as it is), a caBundle that does not verify the serving certificate, the controller stopped.
// The harness nodes are kwok's: their runtime is patched to what a containerd node reports (the
// one stand-in here; nothing else about the check's inputs is staged).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parse } from 'yaml';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProcess, stopProcess } from './global-setup.js';
import { createNamespace, env, eventually, getJson, k, kubectl, printTestTimes } from './helpers.js';
import { ISTIO_DIR, REPO, readJson, run } from './istio-helpers.js';

const NS = 'chk-ok';
let harnessState = '';

printTestTimes();

interface Check {
  group: string;
  name: string;
  status: 'ok' | 'warn' | 'fail';
  detail?: string;
  hint?: string;
}

function wpgw(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [path.join(REPO, 'dist/src/cli.js'), ...args], {
    env: { ...process.env, KUBECONFIG: env().kubeconfig },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status ?? -1, out: r.stdout ?? '', err: r.stderr ?? '' };
}

function checkJson(...args: string[]): { code: number; checks: Check[]; raw: string } {
  const r = wpgw('check', '-o', 'json', ...args);
  try {
    return { code: r.code, checks: (JSON.parse(r.out) as { checks: Check[] }).checks, raw: r.out + r.err };
  } catch {
    throw new Error(`wpgw check -o json did not print JSON (exit ${r.code}): ${r.out}${r.err}`);
  }
}

const named = (checks: Check[], name: string) => {
  const c = checks.find((x) => x.name === name);
  if (!c) throw new Error(`no check "${name}" in: ${checks.map((x) => x.name).join(' | ')}`);
  return c;
};

function setRuntime(runtime: string): void {
  k([
    'patch',
    'node',
    'windows-1',
    '--subresource=status',
    '--type=merge',
    '-p',
    JSON.stringify({ status: { nodeInfo: { containerRuntimeVersion: runtime } } }),
  ]);
}

beforeAll(async () => {
  harnessState = path.dirname(env().kubeconfig);
  run('bash', [path.join(ISTIO_DIR, 'build.sh')], { timeoutMs: 45 * 60_000 });
  run('bash', [path.join(ISTIO_DIR, 'start.sh'), harnessState], { env: { ISTIO_INJECTOR_REGISTER: '1' } });
  expect(readJson<Record<string, string>>(path.join(harnessState, 'istio-env.json')).ISTIO_INJECTOR).toBe('enabled');
  createNamespace(NS);
  await eventually(
    `gateway of ${NS} available and injected`,
    () => {
      const d = getJson(['deployment', 'wpgw', '-n', NS]);
      return (d?.status?.availableReplicas ?? 0) >= 1;
    },
    180_000,
  );
}, 50 * 60_000);

afterAll(() => {
  setRuntime('kwok');
  kubectl(['delete', 'namespace', NS, '--ignore-not-found', '--wait=false']);
  if (harnessState) run('bash', [path.join(ISTIO_DIR, 'stop.sh'), harnessState]);
});

describe('wpgw check on the real control plane', () => {
  it('a Windows node whose runtime is not containerd fails its check, with the hint', () => {
    const { code, checks } = checkJson('-n', NS);
    expect(code).toBe(1);
    const c = named(checks, 'Windows nodes run containerd');
    expect(c).toMatchObject({ status: 'fail', detail: 'windows-1: kwok' });
    expect(c.hint).toMatch(/hostAliases reach the Windows hosts file only with containerd/);
  });

  it('a healthy install passes: exit 0, every check ok or a warning that names why', () => {
    setRuntime('containerd://2.1.4');
    const { code, checks, raw } = checkJson('-n', NS);
    expect(
      checks.filter((c) => c.status === 'fail'),
      raw,
    ).toEqual([]);
    expect(code).toBe(0);
    // The checks that prove the path works end to end, each against the live cluster.
    expect(named(checks, 'a Windows pod is admitted with its routing (server-side dry run)')).toMatchObject({
      status: 'ok',
    });
    expect(named(checks, 'the caBundle verifies the serving certificate').detail).toMatch(
      /^TLS handshake with 127\.0\.0\.1:\d+, for 127\.0\.0\.1$/,
    );
    expect(named(checks, `${NS}: gateway pods injected`).status).toBe('ok');
    expect(named(checks, `${NS}: a new gateway pod would be injected`).detail).toMatch(/proxyv2.*\(gateway template\)/);
    expect(named(checks, "Istio's sidecar injector").detail).toContain('istio-sidecar-injector; revisions: default');
    expect(named(checks, 'the controller has a leader').detail).toMatch(/^stack-controller, renewed \d+s ago$/);
    expect(named(checks, 'gateway pods are injected (no revision set)').detail).toBe(
      'by istio-sidecar-injector/object.sidecar-injector.istio.io',
    );
    expect(named(checks, 'ServiceAccount wpgw-controller has its RBAC').status).toBe('ok');
    // Warnings here are the harness's shape, each with its reason: wpgw runs as local processes
    // (registered by URL), istiod is a process too (its templates are files, not a ConfigMap), and
    // no CNI runs on the kwok nodes.
    expect(
      checks
        .filter((c) => c.status === 'warn')
        .map((c) => c.name)
        .sort(),
    ).toEqual([
      'Deployment wpgw-controller',
      'Deployment wpgw-webhook',
      'a NetworkPolicy-enforcing CNI runs on Windows nodes (heuristic)',
      'istiod version',
      "the injector's gateway template",
    ]);
    for (const c of checks.filter((x) => x.status !== 'ok')) expect(c.hint, c.name).toBeTruthy();
    // The table form: grouped, symbols, hints, the summary line.
    const table = wpgw('check', '-n', NS);
    expect(table.code).toBe(0);
    expect(table.out).toMatch(/^Kubernetes API\n-{14}\n✔ can reach the API server: v1\.36\.\d+/);
    expect(table.out).toContain('‼ istiod version: no Deployment labelled app=istiod\n    see: ');
    expect(table.out).toMatch(/Status check results are ✔ \(5 warning\(s\)\)\n$/);
  });

  it('--pre checks the cluster only: your permissions and Istio, not wpgw', () => {
    const { code, checks } = checkJson('--pre');
    expect(code).toBe(0);
    expect(named(checks, 'you may install wpgw').status).toBe('ok');
    expect(checks.map((c) => c.group)).not.toContain('wpgw control plane');
  });

  it('a caBundle that does not verify the serving certificate fails, and so does the admission probe', async () => {
    const mwc = getJson(['mutatingwebhookconfiguration', 'wpgw'])!;
    const original = mwc.webhooks.map((w: any) => w.clientConfig.caBundle);
    const labels = mwc.metadata.labels;
    // Another CA: the harness cluster's own (any CA that did not sign the webhook's certificate).
    const otherCa = readFileSync(path.join(harnessState, 'pki', 'ca.crt')).toString('base64');
    try {
      // Without its label the webhook leaves the configuration alone, so it cannot repair it mid-test.
      k(['label', 'mutatingwebhookconfiguration', 'wpgw', 'wpgw.io/ca-bundle-', 'app.kubernetes.io/managed-by-']);
      k([
        'patch',
        'mutatingwebhookconfiguration',
        'wpgw',
        '--type=json',
        '-p',
        JSON.stringify(
          original.map((_: string, i: number) => ({
            op: 'replace',
            path: `/webhooks/${i}/clientConfig/caBundle`,
            value: otherCa,
          })),
        ),
      ]);
      const { code, checks } = await eventually('check sees the wrong caBundle', () => {
        const r = checkJson('-n', NS);
        return named(r.checks, 'the caBundle verifies the serving certificate').status === 'fail' ? r : undefined;
      });
      expect(code).toBe(1);
      const tls = named(checks, 'the caBundle verifies the serving certificate');
      expect(tls.detail).toMatch(/is not in the caBundle/);
      expect(tls.hint).toMatch(/re-patches the caBundle/);
      const probe = named(checks, 'a Windows pod is admitted with its routing (server-side dry run)');
      expect(probe.status).toBe('fail');
      expect(probe.detail).toMatch(/failed calling webhook/);
      expect(probe.hint).toMatch(/cannot call the webhook/);
    } finally {
      k([
        'patch',
        'mutatingwebhookconfiguration',
        'wpgw',
        '--type=json',
        '-p',
        JSON.stringify(
          original.map((b: string, i: number) => ({
            op: 'replace',
            path: `/webhooks/${i}/clientConfig/caBundle`,
            value: b,
          })),
        ),
      ]);
      k([
        'label',
        '--overwrite',
        'mutatingwebhookconfiguration',
        'wpgw',
        ...Object.entries(labels).map(([key, v]) => `${key}=${v}`),
      ]);
    }
    // The API server picks up the restored configuration within moments.
    await eventually('check passes again with the caBundle restored', () => checkJson('-n', NS).code === 0);
  });

  it("check-inject -f: a Windows pod meets wpgw's webhook and not Istio's, and comes back routed", () => {
    const file = path.join(harnessState, 'check-inject-pod.yaml');
    writeFileSync(
      file,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'legacy', annotations: { 'wpgw.io/outbound': 'example.com:80' } },
        spec: {
          nodeSelector: { 'kubernetes.io/os': 'windows' },
          containers: [{ name: 'app', image: 'mcr.microsoft.com/windows/nanoserver:ltsc2022' }],
        },
      }),
    );
    const r = wpgw('check-inject', '-f', file, '-n', NS);
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toContain(`Pod ${NS}/legacy (from ${file})`);
    expect(r.out).toContain(
      '✖ istio-sidecar-injector / namespace.sidecar-injector.istio.io: not called: namespace istio-injection in [enabled] required (absent)',
    );
    expect(r.out).toContain(
      '✖ istio-sidecar-injector / object.sidecar-injector.istio.io: not called: pod label sidecar.istio.io/inject in [true] required (absent)',
    );
    expect(r.out).toContain('✔ wpgw / pods.wpgw.io: called (failurePolicy Fail)');
    const ip = getJson(['service', 'wpgw', '-n', NS])!.spec.clusterIP;
    expect(r.out).toContain(`wpgw: managed; hostAliases ${ip} example.com`);
    expect(r.out).toContain('Istio: not injected (sidecar.istio.io/inject=false)');
    expect(getJson(['pods', '-n', NS, '-l', 'wpgw.io/managed=true'])!.items).toEqual([]); // a dry run: nothing created
  });

  it("check-inject POD: a live gateway pod skips wpgw's webhook by its label and is injected by Istio", () => {
    const pod = getJson(['pods', '-n', NS, '-l', `wpgw.io/gateway=${NS}`])!.items[0];
    const r = wpgw('check-inject', pod.metadata.name, '-n', NS);
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toMatch(/\(live; admitted from its ReplicaSet wpgw-\S+'s template\)/);
    expect(r.out).toContain(`✖ wpgw / pods.wpgw.io: not called: pod label wpgw.io/gateway must not exist (is "${NS}")`);
    expect(r.out).toContain('✔ istio-sidecar-injector / object.sidecar-injector.istio.io: called');
    expect(r.out).toMatch(/Istio: injected \(\S*proxyv2\S*\)/);
  });

  it('kubectl wpgw: kubectl runs kubectl-wpgw from PATH and hands it the whole line, --kubeconfig and --context included', () => {
    // What `npm install -g .` links as the kubectl-wpgw bin: the same CLI under Node 24.
    const dir = mkdtempSync(path.join(tmpdir(), 'wpgw-plugin-'));
    writeFileSync(
      path.join(dir, 'kubectl-wpgw'),
      `#!/bin/sh\nexec "${process.execPath}" "${path.join(REPO, 'dist/src/cli.js')}" "$@"\n`,
      { mode: 0o755 },
    );
    const context = (parse(readFileSync(env().kubeconfig, 'utf8')) as { 'current-context': string })['current-context'];
    // No usable KUBECONFIG in the environment: only the flags kubectl passes on can reach the cluster.
    const run = (...args: string[]) =>
      spawnSync(env().kubectl, args, {
        env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, KUBECONFIG: path.join(dir, 'missing') },
        encoding: 'utf8',
        timeout: 120_000,
      });
    expect(run('plugin', 'list').stdout).toContain(path.join(dir, 'kubectl-wpgw'));
    const r = run('wpgw', 'status', '-n', NS, '-o', 'json', '--kubeconfig', env().kubeconfig, `--context=${context}`);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).namespaces.map((n: { namespace: string }) => n.namespace)).toEqual([NS]);
    const wrong = run('wpgw', 'status', '-A', '--kubeconfig', env().kubeconfig, '--context', 'no-such-context');
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toContain('--context no-such-context: no such context');
    rmSync(dir, { recursive: true, force: true });
  });

  it('the controller stopped: "no leader" fails with the hint, and --wait passes once it is back', async () => {
    const controller = env().processes.controller;
    await stopProcess(controller);
    try {
      const { code, checks } = checkJson('-n', NS);
      expect(code).toBe(1);
      const leader = named(checks, 'the controller has a leader');
      expect(leader.status).toBe('fail');
      expect(leader.hint).toMatch(/no controller replica runs|stopped renewing/);
    } finally {
      startProcess('controller', controller);
    }
    // --wait re-runs until nothing fails: the restarted controller takes the Lease again.
    const r = wpgw('check', '-n', NS, '--wait', '90s');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/✔ the controller has a leader: stack-controller/);
  });
});
