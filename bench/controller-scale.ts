// Controller scale benchmark on the real control plane (test/harness): N opted-in namespaces with
// M Windows Deployments and Services each (kwok pods). Prints time from labelling to converged,
// API writes per managed object, writes during a no-op resync, watch events handled per second
// and peak RSS. A script that prints numbers, not a test: it fails only if the stack breaks.
//
//   npm run bench:controller [-- --namespaces 50 --services 20]
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { parseArgs, promisify } from 'node:util';
import { stringify } from 'yaml';
import { getInsecure, startStack, type Stack } from './cluster-stack.js';
import { cpuSeconds, procStatusMiB } from './proc.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');

const { values } = parseArgs({
  options: {
    namespaces: { type: 'string', default: '50' },
    services: { type: 'string', default: '20' },
    kubeconfig: { type: 'string' },
    resync: { type: 'string', default: '30s' },
  },
});
const N = Number(values.namespaces);
const M = Number(values.services);
const RESYNC_MS = Number(/^(\d+)s$/.exec(values.resync ?? '30s')?.[1] ?? 30) * 1000;

function kubectl(stack: Stack, args: string[], input?: string): Promise<string> {
  return new Promise((res, rej) => {
    const child = execFile(stack.kubectl, args, { env: { ...process.env, KUBECONFIG: stack.kubeconfig }, maxBuffer: 512 * 1024 * 1024 }, (err, stdout, stderr) =>
      err ? rej(new Error(`kubectl ${args.slice(0, 3).join(' ')}: ${stderr || err.message}`)) : res(stdout),
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

async function count(stack: Stack, resource: string, selector: string): Promise<number> {
  const out = await kubectl(stack, ['get', resource, '-A', '-l', selector, '-o', 'name']);
  return out.split('\n').filter(Boolean).length;
}

async function metric(stack: Stack, name: string): Promise<number> {
  const text = (await getInsecure(`https://127.0.0.1:${stack.controllerPort}/metrics`)).body;
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}(\\{[^}]*\\})? ([0-9.e+-]+)$`).exec(line);
    if (m) sum += Number(m[2]);
  }
  return sum;
}

function peakRssMiB(pidFile: string): number {
  return Math.round(procStatusMiB(Number(readFileSync(pidFile, 'utf8').trim()), 'VmHWM'));
}

/** Who used the CPU: every control-plane and wpgw process, and this generator with its kubectl children. */
function cpuAccounts(stack: Stack): Array<[string, () => number]> {
  const pidOf = (file: string) => (existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : 0);
  const out: Array<[string, () => number]> = [];
  if (stack.ownCluster) {
    for (const c of ['etcd', 'apiserver', 'kcm', 'scheduler', 'kwok']) {
      const pid = pidOf(join(stack.stateDir, 'cluster', `${c}.pid`));
      if (pid) out.push([c, () => cpuSeconds(pid)]);
    }
  }
  for (const p of ['webhook', 'controller'] as const) {
    const pid = pidOf(stack.processes[p].pidFile);
    if (pid) out.push([`wpgw ${p}`, () => cpuSeconds(pid)]);
  }
  out.push(['load generator (this process + kubectl)', () => cpuSeconds('self', true)]);
  return out;
}

/** A counter's samples as {labels: value}, e.g. {'verb="apply",kind="Service"': 12}. */
async function metricByLabels(stack: Stack, name: string): Promise<Map<string, number>> {
  const text = (await getInsecure(`https://127.0.0.1:${stack.controllerPort}/metrics`)).body;
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}\\{([^}]*)\\} ([0-9.e+-]+)$`).exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (await check()) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
}

function workloads(ns: string): string {
  const docs: unknown[] = [];
  for (let i = 0; i < M; i++) {
    const app = `app-${i}`;
    docs.push(
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: app, namespace: ns },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app } },
          template: {
            metadata: { labels: { app }, annotations: { 'wpgw.io/outbound': `dest-${i}.example.com:80, orders.sales.svc.cluster.local:9080` } },
            spec: { nodeSelector: { 'kubernetes.io/os': 'windows' }, containers: [{ name: 'app', image: 'app', ports: [{ name: 'http', containerPort: 80 }] }] },
          },
        },
      },
      { apiVersion: 'v1', kind: 'Service', metadata: { name: app, namespace: ns }, spec: { selector: { app }, ports: [{ name: 'http', port: 8080, targetPort: 'http' }] } },
    );
  }
  return docs.map((d) => stringify(d)).join('---\n');
}

async function inBatches<T>(items: T[], size: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

async function main(): Promise<void> {
  const stack = await startStack({
    root: ROOT,
    stateDir: resolve(ROOT, '.bench-state'),
    ...(values.kubeconfig ? { externalKubeconfig: values.kubeconfig } : {}),
    controllerArgs: ['--resync', values.resync ?? '30s'],
  });
  try {
    const namespaces = Array.from({ length: N }, (_, i) => `bench-${String(i).padStart(3, '0')}`);
    const watchStart = await metric(stack, 'wpgw_controller_watch_events_total');
    const accounts = cpuAccounts(stack);
    const cpuStart = accounts.map(([, f]) => f());
    const t0 = Date.now();
    await kubectl(stack, ['apply', '-f', '-'], namespaces.map((name) => stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'wpgw.io/inject': 'enabled' } } })).join('---\n'));
    const gatewaysMs = await until(`${N} gateways`, async () => (await count(stack, 'services', 'app.kubernetes.io/managed-by=wpgw,wpgw.io/for=namespace')) >= N, 600_000);
    // Pods are denied until their namespace's gateway exists (and the default ServiceAccount).
    await until('default ServiceAccounts', async () => (await kubectl(stack, ['get', 'serviceaccounts', '-A', '--field-selector', 'metadata.name=default', '-o', 'name'])).split('\n').filter((l) => l).length >= N + 1, 300_000);
    const t1 = Date.now();
    await inBatches(namespaces, 8, (ns) => kubectl(stack, ["apply", "--server-side", "--field-manager=bench", "-f", "-"], workloads(ns)));
    const applyMs = Date.now() - t1;
    const total = N * M;
    const convergedMs = await until(
      'convergence',
      async () =>
        (await count(stack, 'pods', 'wpgw.io/managed=true')) >= total &&
        (await count(stack, 'services', 'wpgw.io/repointed=true')) >= total &&
        (await count(stack, 'services', 'app.kubernetes.io/managed-by=wpgw')) >= N + total &&
        (await count(stack, 'virtualservices.networking.istio.io', 'app.kubernetes.io/managed-by=wpgw')) >= N * (M + 1) + total &&
        (await metric(stack, 'wpgw_controller_queue_depth')) === 0,
      900_000,
    );
    const tConverged = Date.now();
    const cpuUsed = accounts.map(([name, f], i) => [name, f() - cpuStart[i]!] as const);
    const writes = await metric(stack, 'wpgw_controller_writes_total');
    const watchEvents = (await metric(stack, 'wpgw_controller_watch_events_total')) - watchStart;
    const kinds = 'serviceaccounts,services,configmaps,deployments,poddisruptionbudgets,networkpolicies,gateways.networking.istio.io,virtualservices.networking.istio.io,destinationrules.networking.istio.io,serviceentries.networking.istio.io,authorizationpolicies.security.istio.io';
    const managedKinds = (await kubectl(stack, ['get', kinds, '-A', '-l', 'app.kubernetes.io/managed-by=wpgw', '-o', 'jsonpath={range .items[*]}{.kind}{"\\n"}{end}']))
      .split('\n')
      .filter(Boolean);
    const managed = managedKinds.length;
    const writesByKind = await metricByLabels(stack, 'wpgw_controller_writes_total');

    // No-op resync: every namespace is reconciled again at least once; count writes meanwhile.
    await new Promise((r) => setTimeout(r, 5000));
    const reconcilesBefore = await metric(stack, 'wpgw_controller_reconciles_total');
    const writesBefore = await metric(stack, 'wpgw_controller_writes_total');
    await new Promise((r) => setTimeout(r, RESYNC_MS + 10_000));
    const resyncWrites = (await metric(stack, 'wpgw_controller_writes_total')) - writesBefore;
    const resyncReconciles = (await metric(stack, 'wpgw_controller_reconciles_total')) - reconcilesBefore;

    const rows: Array<[string, string, string]> = [
      ['namespaces x Windows apps', `${N} x ${M} (${total} Deployments, Services, pods)`, ''],
      ['labelling -> all gateways exist', `${(gatewaysMs / 1000).toFixed(1)} s`, ''],
      ['kubectl apply of the workloads', `${(applyMs / 1000).toFixed(1)} s`, ''],
      ['labelling -> fully converged', `${((tConverged - t0) / 1000).toFixed(1)} s`, (tConverged - t0) < 60_000 ? 'PASS (< 60 s)' : 'MISS (target < 60 s)'],
      ['workloads applied -> fully converged', `${(convergedMs / 1000).toFixed(1)} s`, ''],
      ['managed objects', String(managed), ''],
      ['API writes', String(writes), ''],
      ['writes per managed object', (writes / managed).toFixed(2), writes / managed <= 1.1 ? 'PASS (<= 1.1)' : 'MISS (target <= 1.1)'],
      ['no-op resync: reconciles / writes', `${resyncReconciles} / ${resyncWrites}`, resyncWrites === 0 ? 'PASS (0 writes)' : 'MISS (target 0)'],
      ['watch events handled / s', ((watchEvents / (tConverged - t0)) * 1000).toFixed(0), ''],
      ['peak RSS controller / webhook', `${peakRssMiB(stack.processes.controller.pidFile)} MiB / ${peakRssMiB(stack.processes.webhook.pidFile)} MiB`, ''],
    ];
    process.stdout.write('\nwpgw controller scale (real kube-apiserver, kwok nodes)\n');
    for (const [k, v, t] of rows) process.stdout.write(`  ${k.padEnd(38)} ${v.padEnd(44)} ${t}\n`);
    process.stdout.write('\nWrites by kind (controller metric) against managed objects of that kind\n');
    const objectsByKind = new Map<string, number>();
    for (const k of managedKinds) objectsByKind.set(k, (objectsByKind.get(k) ?? 0) + 1);
    const writeRows = [...writesByKind].map(([labels, n]) => {
      const kind = /kind="([^"]*)"/.exec(labels)?.[1] ?? '?';
      const verb = /verb="([^"]*)"/.exec(labels)?.[1] ?? '?';
      return { kind, verb, n };
    });
    for (const r of writeRows.sort((a, b) => b.n - a.n)) {
      const objects = objectsByKind.get(r.kind) ?? 0;
      process.stdout.write(`  ${`${r.verb} ${r.kind}`.padEnd(42)} ${String(r.n).padStart(6)} writes  ${String(objects).padStart(6)} managed  ${objects ? (r.n / objects).toFixed(2) : '-'}\n`);
    }
    const wall = (tConverged - t0) / 1000;
    const cpuTotal = cpuUsed.reduce((a, [, v]) => a + (Number.isFinite(v) ? v : 0), 0);
    process.stdout.write(`\nCPU time from labelling to converged (${wall.toFixed(1)} s wall, ${availableParallelism()} CPUs = ${(wall * availableParallelism()).toFixed(0)} CPU-s available)\n`);
    for (const [name, v] of [...cpuUsed].sort((a, b) => b[1] - a[1])) {
      process.stdout.write(`  ${name.padEnd(42)} ${Number.isFinite(v) ? `${v.toFixed(1).padStart(7)} CPU-s  ${((100 * v) / cpuTotal).toFixed(0).padStart(3)}%` : '  (exited)'}\n`);
    }
    process.stdout.write(`  ${'all of the above'.padEnd(42)} ${cpuTotal.toFixed(1).padStart(7)} CPU-s  (${((100 * cpuTotal) / (wall * availableParallelism())).toFixed(0)}% of the machine)\n`);
  } finally {
    await stack.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:controller failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
