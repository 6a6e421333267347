// Monitoring against the real processes: the plain-HTTP http-metrics ports of a real webhook and
// controller (started beside the suite's own, with the same ServiceAccounts and flags as the chart
// passes), and every metric the chart's PrometheusRule and Grafana dashboard name checked against
// what those processes and the real kube-apiserver export. The API server's webhook series exist
// only once a call was made, so the test makes it fail for real: configurations whose webhooks are
// named like wpgw's (pods.wpgw.io) and point at a closed port, selecting only this file's probe pods.
// Expressions are read by Prometheus's own PromQL parser (test/monitoring/build.sh).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exposedFamilies, isExposed } from '../lib/promql.js';
import { freePort, startProcess, stopProcess, type ManagedProcess } from './global-setup.js';
import { apply, createNamespace, env, eventually, k, kubectl, printTestTimes } from './helpers.js';

const ROOT = resolve(import.meta.dirname, '../..');
const HELM = join(ROOT, 'test/helm/bin/helm');
const PROMQL_NAMES = join(ROOT, 'test/monitoring/bin/promql-names');

/** Each expression as Prometheus's own parser reads it: the metric names, or the parse error. */
function parsePromql(exprs: string[]): Array<{ names: string[]; error?: string }> {
  const r = spawnSync(PROMQL_NAMES, [], { input: JSON.stringify(exprs), encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`promql-names (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Array<{ names: string[]; error?: string }>;
}
const NS = 'mon-probe';
const PROBE_CONFIGS = ['wpgw-monitoring-probe-fail', 'wpgw-monitoring-probe-open'];

printTestTimes();

interface Rendered {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
  data?: Record<string, string>;
}

function render(...args: string[]): Rendered[] {
  const r = spawnSync(HELM, ['template', 'wpgw', join(ROOT, 'charts/wpgw'), '--namespace', 'wpgw-system', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`helm template: ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Rendered)
    .filter(Boolean);
}

/** The API server's own /metrics (several MB: more than kubectl()'s default output buffer). */
function apiserverMetrics(): string {
  const r = spawnSync(env().kubectl, ['get', '--raw', '/metrics'], {
    env: { ...process.env, KUBECONFIG: env().kubeconfig },
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.status !== 0)
    throw new Error(`kubectl get --raw /metrics (${r.status}): ${r.stderr}${r.error ? String(r.error) : ''}`);
  return r.stdout;
}

async function scrape(url: string): Promise<string> {
  const r = await fetch(url);
  if (r.status !== 200) throw new Error(`GET ${url}: ${r.status}`);
  return r.text();
}

const processes: ManagedProcess[] = [];
let webhookMetrics = '';
let controllerMetrics = '';

beforeAll(async () => {
  if (!existsSync(HELM)) throw new Error(`${HELM} is missing: run bash test/helm/build.sh first (.ci/run does)`);
  // Prometheus's PromQL parser; cached after the first build (seconds).
  spawnSync('bash', [join(ROOT, 'test/monitoring/build.sh')], { stdio: 'inherit', timeout: 20 * 60_000 });
  if (!existsSync(PROMQL_NAMES)) throw new Error(`${PROMQL_NAMES} is missing: bash test/monitoring/build.sh failed`);
  const e = env();
  const [wPort, wMetrics, cPort, cMetrics] = [await freePort(), await freePort(), await freePort(), await freePort()];
  webhookMetrics = `http://127.0.0.1:${wMetrics}/metrics`;
  controllerMetrics = `http://127.0.0.1:${cMetrics}/metrics`;
  const dir = e.stateDir;
  // A second replica of each: the webhook shares the suite's Secret (same CA, so its caBundle
  // publication is "unchanged"), the controller waits as a follower of the suite's Lease holder.
  processes.push(
    {
      args: [
        'webhook',
        '--host',
        '127.0.0.1',
        '--port',
        String(wPort),
        '--metrics-port',
        String(wMetrics),
        '--tls-secret',
        'wpgw-system/wpgw-webhook-tls',
        '--webhook-config',
        'wpgw',
      ],
      kubeconfig: e.processes.webhook.kubeconfig,
      pidFile: join(dir, 'monitoring-webhook.pid'),
      log: join(dir, 'monitoring-webhook.log'),
      env: {},
    },
    {
      args: [
        'controller',
        '--namespace',
        'wpgw-system',
        '--host',
        '127.0.0.1',
        '--port',
        String(cPort),
        '--metrics-port',
        String(cMetrics),
      ],
      kubeconfig: e.processes.controller.kubeconfig,
      pidFile: join(dir, 'monitoring-controller.pid'),
      log: join(dir, 'monitoring-controller.log'),
      env: { POD_NAME: 'monitoring-follower' },
    },
  );
  for (const p of processes) startProcess(p.args[0]!, p);
  await eventually(
    'webhook http-metrics',
    // Its caBundle pass and its cache's start-up lists run independently: wait for both.
    () =>
      scrape(webhookMetrics).then(
        (t) =>
          t.includes('wpgw_webhook_ca_bundle_patches_total{result="unchanged"}') &&
          /^wpgw_webhook_cache_synced 1$/m.test(t),
      ),
    90_000,
  );
  await eventually(
    'controller http-metrics',
    () => scrape(controllerMetrics).then((t) => t.includes('wpgw_build_info')),
    90_000,
  );
}, 180_000);

afterAll(async () => {
  for (const p of processes) await stopProcess(p);
  for (const name of PROBE_CONFIGS) kubectl(['delete', 'mutatingwebhookconfiguration', name, '--ignore-not-found']);
  kubectl(['delete', 'namespace', NS, '--ignore-not-found', '--wait=false']);
});

describe('the http-metrics ports of the real webhook and controller', () => {
  it('serve /metrics over plain HTTP: build info, certificate expiry, caBundle results, leader state', async () => {
    const w = await scrape(webhookMetrics);
    expect(w).toMatch(/^wpgw_build_info\{component="webhook",version="\d+\.\d+\.\d+[^"]*",node="24\.[^"]+"\} 1$/m);
    const served = Number(
      /^wpgw_webhook_certificate_expiry_timestamp_seconds\{certificate="serving"\} (\d+)$/m.exec(w)?.[1],
    );
    const ca = Number(/^wpgw_webhook_certificate_expiry_timestamp_seconds\{certificate="ca"\} (\d+)$/m.exec(w)?.[1]);
    // The self-managed leaf lives 30 days, its CA a year (src/tls/rotation.ts).
    expect(served * 1000 - Date.now()).toBeGreaterThan(10 * 86_400_000);
    expect(ca).toBeGreaterThanOrEqual(served);
    expect(w).toMatch(/^wpgw_webhook_ca_bundle_patches_total\{result="unchanged"\} [1-9]/m);
    expect(w).toMatch(/^wpgw_webhook_cache_synced 1$/m);
    expect(w).toMatch(/^wpgw_webhook_watch_events_total\{resource="[^"]+",type="add"\} [1-9]/m);
    const c = await scrape(controllerMetrics);
    expect(c).toMatch(/^wpgw_build_info\{component="controller",version="[^"]+",node="[^"]+"\} 1$/m);
    expect(c).toMatch(/^wpgw_controller_is_leader 0$/m); // the suite's controller holds the Lease
  });

  it('serve nothing but /metrics: no admission, no probes on the plain port', async () => {
    const base = webhookMetrics.replace(/\/metrics$/, '');
    expect(
      (await fetch(`${base}/mutate`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } }))
        .status,
    ).toBe(404);
    expect((await fetch(`${base}/readyz`)).status).toBe(404);
  });
});

describe("the chart's PrometheusRule and dashboard name only metrics that really exist", () => {
  const objs = () => render('--set', 'metrics.prometheusRule.enabled=true', '--set', 'metrics.dashboard.enabled=true');
  const alerts = () =>
    objs()
      .find((o) => o.kind === 'PrometheusRule')!
      .spec!.groups.flatMap((g) => g.rules);
  const panels = () => {
    const cm = objs().find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'wpgw-dashboard')!;
    expect(cm.metadata.labels?.grafana_dashboard).toBe('1');
    return (
      JSON.parse(cm.data!['wpgw.json']!) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> }
    ).panels;
  };

  it('a wpgw webhook the API server cannot call yields the series WpgwWebhookCallsFailing and WpgwWebhookFailingOpen select', async () => {
    createNamespace(NS, false);
    const closed = await freePort();
    for (const [name, policy] of [
      [PROBE_CONFIGS[0], 'Fail'],
      [PROBE_CONFIGS[1], 'Ignore'],
    ] as const) {
      apply([
        {
          apiVersion: 'admissionregistration.k8s.io/v1',
          kind: 'MutatingWebhookConfiguration',
          metadata: { name },
          webhooks: [
            {
              name: 'pods.wpgw.io',
              admissionReviewVersions: ['v1'],
              sideEffects: 'None',
              failurePolicy: policy,
              timeoutSeconds: 2,
              clientConfig: { url: `https://127.0.0.1:${closed}/mutate` },
              rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }],
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': NS } },
              objectSelector: { matchLabels: { 'wpgw-probe': policy } },
            },
          ],
        },
      ]);
    }
    const pod = (name: string, probe: string) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: NS, labels: { 'wpgw-probe': probe } },
      spec: { nodeSelector: { 'kubernetes.io/os': 'linux' }, containers: [{ name: 'c', image: 'nginx' }] },
    });
    // The webhook configuration takes effect once the API server's informer has it: retry.
    await eventually('a pod refused by the unreachable Fail webhook', () => {
      const r = kubectl(['create', '--dry-run=server', '-f', '-'], JSON.stringify(pod('refused', 'Fail')));
      return r.status !== 0 && /failed calling webhook "pods\.wpgw\.io"/.test(r.stderr);
    });
    await eventually('a pod admitted past the unreachable Ignore webhook', () => {
      k(['create', '--dry-run=server', '-f', '-'], JSON.stringify(pod('opened', 'Ignore')));
      return /apiserver_admission_webhook_fail_open_count\{[^}]*name="pods\.wpgw\.io"/.test(apiserverMetrics());
    });
    const apiserver = apiserverMetrics();
    const selector = (alert: string) => alerts().find((a) => a.alert === alert)!.expr;
    const nameRe = /name=~"([^"]+)"/.exec(selector('WpgwWebhookCallsFailing'))![1]!;
    expect(selector('WpgwWebhookCallsFailing')).toContain('error_type="calling_webhook_error"');
    const rejections = [
      ...apiserver.matchAll(/^apiserver_admission_webhook_rejection_count\{([^}]*)\} (\S+)$/gm),
    ].filter(
      ([, labels]) =>
        /error_type="calling_webhook_error"/.test(labels!) && new RegExp(`name="(${nameRe})"`).test(labels!),
    );
    expect(
      rejections.length,
      apiserver
        .split('\n')
        .filter((l) => l.includes('rejection_count'))
        .join('\n'),
    ).toBeGreaterThan(0);
    expect(new RegExp(`^(${nameRe})$`).test('services.wpgw.io')).toBe(true);
    expect(new RegExp(`^(${nameRe})$`).test('pods.wpgw.io.evil')).toBe(false);
  });

  it('every alert and panel expression reads only metrics the webhook, the controller or the API server export', async () => {
    const families = new Map([
      ...exposedFamilies(await scrape(webhookMetrics)),
      ...exposedFamilies(await scrape(controllerMetrics)),
      ...exposedFamilies(apiserverMetrics()),
    ]);
    const exprs = [
      ...alerts().map((a) => [`alert ${a.alert}`, a.expr] as const),
      ...panels().flatMap((p) => p.targets.map((t) => [`panel "${p.title}"`, t.expr] as const)),
    ];
    expect(exprs.length).toBeGreaterThanOrEqual(15);
    const expected = [
      'WpgwWebhookCallsFailing',
      'WpgwWebhookFailingOpen',
      'WpgwWebhookSlow',
      'WpgwWebhookCertificateExpiring',
      'WpgwCaBundlePatchFailing',
      'WpgwControllerReconcileErrors',
      'WpgwControllerNoLeader',
    ];
    expect(alerts().map((a) => a.alert)).toEqual(expected);
    const parsed = parsePromql(exprs.map(([, expr]) => expr));
    const missing: string[] = [];
    exprs.forEach(([where, expr], i) => {
      const { names, error } = parsed[i]!;
      expect(error, `${where}: ${expr}`).toBeUndefined(); // Prometheus would refuse the rule
      expect(names.length, `${where}: ${expr}`).toBeGreaterThan(0);
      for (const name of names) if (!isExposed(name, families)) missing.push(`${where}: ${name}`);
    });
    expect(missing).toEqual([]);
    // The parser really reports what it cannot read, and a name that is not exported is caught.
    expect(parsePromql(['rate(wpgw_controller_errors_total[5m] > 0'])[0]!.error).toMatch(/parse error/);
    expect(isExposed(parsePromql(['rate(wpwg_controller_errors_total[5m])'])[0]!.names[0]!, families)).toBe(false);
  });
});
