// helm install, upgrade and uninstall of charts/wpgw on a control plane of its own (test/harness,
// not the suite's stack: the chart's cluster-scoped objects have the names the stack already
// uses). kwok runs the pods, so the Deployments roll out through the real scheduler and the
// restricted Pod Security admission of the namespace; the wpgw processes themselves are not run
// from the chart here (the rest of the suite runs them, registered by URL).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caBundlePatch } from '../../src/tls/ca-bundle.js';
import { HARNESS_DIR, Kubectl, readJson, REPO, run } from './istio-helpers.js';

const HELM = path.join(REPO, 'test/helm/bin/helm');
const CHART = path.join(REPO, 'charts/wpgw');
const NS = 'wpgw-system';

let state: string | undefined;
let kc: Kubectl;

function helm(...args: string[]): string {
  const r = spawnSync(HELM, [...args, '--kubeconfig', kc.kubeconfig], {
    encoding: 'utf8',
    timeout: 300_000,
    env: {
      ...process.env,
      HELM_CACHE_HOME: path.join(state!, 'helm/cache'),
      HELM_CONFIG_HOME: path.join(state!, 'helm/config'),
      HELM_DATA_HOME: path.join(state!, 'helm/data'),
    },
  });
  if (r.status !== 0) throw new Error(`helm ${args.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

const exists = (...args: string[]) => kc.try(['get', ...args]).ok;

beforeAll(() => {
  if (!existsSync(HELM)) throw new Error(`${HELM} is missing: run bash test/helm/build.sh first (.ci/run does)`);
  state = mkdtempSync(path.join(os.tmpdir(), 'wpgw-helm-e2e-'));
  run('bash', [path.join(HARNESS_DIR, 'up.sh'), state], { env: { HARNESS_SKIP_CRDS: '1' } });
  const env = readJson<Record<string, string>>(path.join(state, 'env.json'));
  kc = new Kubectl(env.HARNESS_KUBECTL!, env.KUBECONFIG!);
  // What NOTES.txt asks for: Helm does not own its release namespace.
  kc.run(['create', 'namespace', NS]);
  kc.run([
    'label',
    'namespace',
    NS,
    'pod-security.kubernetes.io/enforce=restricted',
    'pod-security.kubernetes.io/audit=restricted',
  ]);
}, 300_000);

afterAll(() => {
  if (!state) return;
  run('bash', [path.join(HARNESS_DIR, 'down.sh'), state]);
  if (!process.env.WPGW_E2E_KEEP) rmSync(state, { recursive: true, force: true });
});

describe('helm install / upgrade / uninstall on a real control plane', () => {
  it('install --wait: both Deployments roll out under restricted Pod Security, on Linux nodes', () => {
    const out = helm('install', 'wpgw', CHART, '-n', NS, '--wait', '--timeout', '3m');
    expect(out).toContain('STATUS: deployed');
    for (const name of ['wpgw-webhook', 'wpgw-controller']) {
      const d = kc.json(['get', 'deployment', name, '-n', NS]);
      expect(d.status.availableReplicas, name).toBe(2);
      const pods = kc.json<{ items: any[] }>(['get', 'pods', '-n', NS, '-l', `app.kubernetes.io/name=${name}`]).items;
      expect(
        pods.map((p) => p.spec.nodeName).every((n: string) => n.startsWith('linux-')),
        name,
      ).toBe(true);
    }
    // Helm relabels what it installs managed-by=Helm: the webhook must still own the caBundle.
    const mwc = kc.json(['get', 'mutatingwebhookconfiguration', 'wpgw']);
    expect(mwc.metadata.labels['app.kubernetes.io/managed-by']).toBe('Helm');
    expect(caBundlePatch(mwc, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n').owned).toBe(true);
    expect(mwc.metadata.annotations['meta.helm.sh/release-name']).toBe('wpgw');
  });

  it('upgrade: values change the running objects (revision flag, replicas), and the release records it', () => {
    helm(
      'upgrade',
      'wpgw',
      CHART,
      '-n',
      NS,
      '--set',
      'istio.revision=asm-1-26',
      '--set',
      'webhook.replicas=3',
      '--wait',
      '--timeout',
      '3m',
    );
    const controller = kc.json(['get', 'deployment', 'wpgw-controller', '-n', NS]);
    expect(controller.spec.template.spec.containers[0].args).toContain('--istio-revision=asm-1-26');
    expect(kc.json(['get', 'deployment', 'wpgw-webhook', '-n', NS]).status.availableReplicas).toBe(3);
    expect(JSON.parse(helm('history', 'wpgw', '-n', NS, '-o', 'json')).map((r: any) => r.revision)).toEqual([1, 2]);
  });

  it('uninstall removes every object it installed, cluster-scoped ones included, and leaves the namespace', () => {
    helm('uninstall', 'wpgw', '-n', NS, '--wait', '--timeout', '3m');
    expect(exists('mutatingwebhookconfiguration', 'wpgw')).toBe(false);
    for (const kind of ['clusterrole', 'clusterrolebinding']) {
      for (const name of ['wpgw-webhook', 'wpgw-controller']) expect(exists(kind, name), `${kind}/${name}`).toBe(false);
    }
    for (const kind of ['deployment', 'service', 'serviceaccount', 'poddisruptionbudget', 'role', 'rolebinding']) {
      expect(
        kc.json<{ items: unknown[] }>(['get', kind, '-n', NS, '-l', 'app.kubernetes.io/part-of=wpgw']).items,
        kind,
      ).toEqual([]);
    }
    expect(exists('namespace', NS)).toBe(true);
  });
});
