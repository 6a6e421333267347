// wpgw uninstall on a control plane of its own (test/lib/cluster-stack.ts in its own state dir: it
// removes wpgw from the whole cluster, which the suite's shared cluster must keep). The webhook
// and the controller are the real processes, holding the real Lease; the Deployments of
// manifests/ are applied too, so there is an install to remove (kwok runs their pods: a stand-in,
// since the processes run outside the cluster). Refused while it would break workloads, naming
// them; --dry-run changes nothing; then it hands everything back and removes wpgw; a second run
// finds nothing.
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from '../lib/cluster-stack.js';
import { eventually as poll } from '../lib/poll.js';
import { printTestTimes, windowsDeployment } from './helpers.js';

printTestTimes();

const ROOT = resolve(import.meta.dirname, '../..');
const DEADLINE = 240_000;
const OUTBOUND = 'orders.sales.svc.cluster.local:9080';
let stack: Stack | undefined;

function kubectl(args: string[], input?: string): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(stack!.kubectl, args, {
    env: { ...process.env, KUBECONFIG: stack!.kubeconfig },
    input,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}
function k(args: string[], input?: string): string {
  const r = kubectl(args, input);
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
/** kubectl get ARGS -o json; undefined when it fails (not found). */
const json = <T = any>(args: string[]): T | undefined => {
  const r = kubectl(['get', ...args, '-o', 'json']);
  return r.status === 0 ? (JSON.parse(r.stdout) as T) : undefined;
};
const items = (args: string[]): any[] => json<{ items: any[] }>(args)?.items ?? [];
const apply = (objs: unknown[]) =>
  k(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objs }));

function wpgw(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'dist/src/cli.js'), ...args], {
    env: { ...process.env, KUBECONFIG: stack!.kubeconfig },
    encoding: 'utf8',
    timeout: 600_000,
  });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

async function eventually<T>(what: string, fn: () => T | undefined | false, timeoutMs = DEADLINE): Promise<T> {
  const t0 = Date.now();
  const v = await poll(what, fn, timeoutMs, 500);
  process.stdout.write(`[e2e] uninstall: ${what} after ${((Date.now() - t0) / 1000).toFixed(1)}s\n`);
  return v;
}

const namespaceObj = (name: string, annotations: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, labels: { 'wpgw.io/inject': 'enabled' }, annotations },
});
const managed = (ns?: string) =>
  items([
    'deployments,services,configmaps,networkpolicies,gateways.networking.istio.io,virtualservices.networking.istio.io,destinationrules.networking.istio.io',
    ...(ns ? ['-n', ns] : ['-A']),
    '-l',
    'app.kubernetes.io/managed-by=wpgw',
  ]).map((o) => `${o.metadata.namespace}/${o.kind}/${o.metadata.name}`);
const injected = (ns: string) =>
  items(['pods', '-n', ns]).filter((p) => !p.metadata.deletionTimestamp && p.metadata.annotations?.['wpgw.io/status']);

beforeAll(async () => {
  stack = await startStack({
    root: ROOT,
    stateDir: join(ROOT, '.e2e-state/uninstall'),
    log: (l) => process.stdout.write(`[uninstall stack] ${l}\n`),
  });
  // The install as manifests/ has it (the webhook configuration is the stack's, registered by URL).
  k([
    'apply',
    '-n',
    'wpgw-system',
    '-f',
    join(ROOT, 'manifests/webhook.yaml'),
    '-f',
    join(ROOT, 'manifests/controller.yaml'),
  ]);
}, 600_000);

afterAll(async () => {
  await stack?.stop();
});

describe('wpgw uninstall', () => {
  it('refuses naming what it would break; --dry-run changes nothing; then hands everything back and removes wpgw; twice', async () => {
    apply([
      namespaceObj('u-shop'),
      namespaceObj('u-quiet', { 'wpgw.io/restart-on-ip-change': 'false' }),
      namespaceObj('u-bare'),
    ]);
    for (const ns of ['u-shop', 'u-quiet', 'u-bare']) {
      await eventually(`default ServiceAccount in ${ns}`, () => json(['serviceaccount', 'default', '-n', ns]));
      // Windows pods are admitted once their gateway has an address (before, the webhook refuses them).
      await eventually(`gateway Service in ${ns}`, () => json(['service', 'wpgw', '-n', ns])?.spec?.clusterIP);
    }
    const user = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'legacy', namespace: 'u-shop' },
      spec: { selector: { app: 'legacy' }, ports: [{ name: 'http', port: 8080, targetPort: 'http' }] },
    };
    apply([
      windowsDeployment('legacy', 'u-shop', OUTBOUND, 2),
      windowsDeployment('quiet', 'u-quiet', OUTBOUND, 1),
      user,
    ]);
    apply([
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'lonely', namespace: 'u-bare', annotations: { 'wpgw.io/outbound': 'example.com:80' } },
        spec: {
          nodeSelector: { 'kubernetes.io/os': 'windows' },
          tolerations: [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }],
          containers: [{ name: 'app', image: 'iis' }],
        },
      },
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sales' } },
      {
        apiVersion: 'security.istio.io/v1',
        kind: 'PeerAuthentication',
        metadata: { name: 'default', namespace: 'sales' },
        spec: { mtls: { mode: 'STRICT' } },
      },
    ]);
    await eventually(
      'legacy re-pointed',
      () => json(['service', 'legacy', '-n', 'u-shop'])?.spec?.selector?.['wpgw.io/gateway'] === 'u-shop',
    );
    await eventually(
      'pods injected',
      () => injected('u-shop').length === 2 && injected('u-quiet').length === 1 && injected('u-bare').length === 1,
    );
    await eventually('gateways', () =>
      ['u-shop', 'u-quiet', 'u-bare'].every((ns) => managed(ns).includes(`${ns}/Deployment/wpgw`)),
    );
    const legacyIP = json(['service', 'legacy', '-n', 'u-shop']).spec.clusterIP;

    const refused = wpgw('uninstall');
    process.stdout.write(`[e2e] uninstall refused:\n${refused.out}${refused.err}`);
    expect(refused.code).toBe(3);
    expect(refused.err).toContain('refusing: uninstalling would break');
    expect(refused.out).toMatch(
      /would break: Namespace u-bare: pods lonely \(Pod\/lonely\) have no owner wpgw can restart/,
    );
    expect(refused.out).toMatch(
      /would break: Namespace u-quiet: wpgw.io\/restart-on-ip-change=false: its pods quiet-\S+ are not restarted/,
    );
    expect(refused.out).toMatch(
      /would break: Pod u-shop\/legacy-\S+: once replaced without wpgw it calls orders.sales.svc.cluster.local:9080 \(PeerAuthentication sales\/default is STRICT\)/,
    );
    const unchanged = () => ({
      labels: ['u-shop', 'u-quiet', 'u-bare'].map((ns) => json(['namespace', ns]).metadata.labels['wpgw.io/inject']),
      mwc: Boolean(json(['mutatingwebhookconfiguration', 'wpgw'])),
      legacy: json(['service', 'legacy', '-n', 'u-shop']).spec.selector,
    });
    expect(unchanged()).toEqual({
      labels: ['enabled', 'enabled', 'enabled'],
      mwc: true,
      legacy: { 'wpgw.io/gateway': 'u-shop' },
    });

    const dry = wpgw('uninstall', '--dry-run', '--force');
    expect(dry.code).toBe(0);
    expect(dry.out).toContain('would opt out: u-bare, u-quiet, u-shop');
    expect(dry.out).toContain('by the controller, whose Lease wpgw-system/wpgw-controller is held');
    expect(dry.out).toContain('would delete MutatingWebhookConfiguration wpgw');
    expect(dry.out).toContain('would delete deployments/wpgw-controller in wpgw-system');
    expect(dry.out).toContain('would delete clusterroles/wpgw-webhook');
    expect(unchanged()).toEqual({
      labels: ['enabled', 'enabled', 'enabled'],
      mwc: true,
      legacy: { 'wpgw.io/gateway': 'u-shop' },
    });

    // The user fixes two of them; --force covers the namespace that disabled restarts.
    k(['delete', 'peerauthentication', 'default', '-n', 'sales']);
    k(['delete', 'pod', 'lonely', '-n', 'u-bare']);
    const quietPods = new Set(injected('u-quiet').map((p) => p.metadata.uid));
    const done = wpgw('uninstall', '--force');
    process.stdout.write(`[e2e] uninstall --force:\n${done.out}${done.err}`);
    expect(done.err).toBe('');
    expect(done.code).toBe(0);
    expect(done.out).toContain('wpgw is removed');
    for (const ns of ['u-shop', 'u-quiet', 'u-bare']) {
      expect(done.out).toContain(`opted out namespace ${ns}`);
      expect(done.out).toContain(`handed back namespace ${ns}`);
      expect(json(['namespace', ns]).metadata.labels['wpgw.io/inject']).toBeUndefined();
      expect(injected(ns)).toEqual([]);
    }
    expect(done.out).toContain('u-quiet: restarted Deployment/quiet');
    expect(
      items(['pods', '-n', 'u-quiet']).some((p) => quietPods.has(p.metadata.uid) && !p.metadata.deletionTimestamp),
    ).toBe(false);
    const legacy = json(['service', 'legacy', '-n', 'u-shop']);
    expect({
      selector: legacy.spec.selector,
      ports: legacy.spec.ports,
      clusterIP: legacy.spec.clusterIP,
      labels: legacy.metadata.labels ?? {},
    }).toEqual({
      selector: { app: 'legacy' },
      ports: [{ name: 'http', port: 8080, protocol: 'TCP', targetPort: 'http' }],
      clusterIP: legacyIP,
      labels: {},
    });
    expect(managed()).toEqual([]);
    expect(json(['mutatingwebhookconfiguration', 'wpgw'])).toBeUndefined();
    for (const [kind, name] of [
      ['deployment', 'wpgw-controller'],
      ['deployment', 'wpgw-webhook'],
      ['serviceaccount', 'wpgw-controller'],
      ['lease', 'wpgw-controller'],
    ]) {
      expect(json([kind!, name!, '-n', 'wpgw-system']), `${kind}/${name}`).toBeUndefined();
    }
    for (const name of ['wpgw-controller', 'wpgw-webhook']) expect(json(['clusterrole', name])).toBeUndefined();
    // Deleted pods were re-created by their owners, without wpgw (no webhook any more).
    await eventually(
      'Windows pods back, plain',
      () =>
        items(['pods', '-n', 'u-shop', '-l', 'app=legacy']).filter((p) => !p.metadata.deletionTimestamp).length === 2,
    );
    expect(items(['pods', '-n', 'u-shop', '-l', 'app=legacy']).every((p) => !p.spec.hostAliases)).toBe(true);

    const again = wpgw('uninstall');
    expect(again).toEqual({ code: 0, out: 'nothing of wpgw left to remove\n', err: '' });
  }, 900_000);
});
