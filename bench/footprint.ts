// Footprint benchmark on the real control plane (test/harness): the webhook's and the controller's
// memory and start-up time as the cluster grows around them.
//   (a) an empty cluster;
//   (b) + 10,000 Deployments, 30,000 ReplicaSets (replicas 0), 10,000 Services and 5,000 pods in
//       500 namespaces that are not opted in, created directly through the API (no workload
//       controller: Deployments paused, so kube-controller-manager adds no ReplicaSets or pods);
//   (c) + 50 opted-in namespaces x 20 Windows apps (the bench:controller load, converged).
// In each phase both processes are restarted one after the other: start-up = process start ->
// /readyz 200, with the API server's (and etcd's) CPU time over that start-up printed beside it,
// then RSS once settled and the process's peak (VmHWM); after a controller's restart the next waits
// until it has stopped writing (a baseline controller rewrites the managed objects). A script that prints numbers and
// PASS/MISS, not a test: it fails only if the stack breaks.
//
//   npm run bench:footprint [-- --scale 0.2] [--baseline DIR [--baseline-flags '--flag ...']] [--skip-c]
//
// --scale multiplies the (b) and (c) namespace counts (object counts per namespace stay).
// --baseline DIR also measures another build (DIR/dist/src/cli.js, e.g. a copy of main) in every
// phase, same cluster, same moment: the "before" next to the "after".
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { RawKubeClient, errorStatus } from '../src/cluster/client.js';
import {
  isReady,
  startProcess,
  startStack,
  stopProcess,
  type ManagedProcess,
  type Stack,
} from '../test/lib/cluster-stack.js';
import { scrape } from '../test/lib/metrics.js';
import { cpuSeconds, procStatusMiB } from '../test/lib/proc.js';
import { nodeFlagsFor } from '../src/node-flags.js';
import { controlPlanePids, metric, optInWindowsApps, pidOf } from './stack-tools.js';

const ROOT = resolve(import.meta.dirname, '../..');

const { values } = parseArgs({
  options: {
    scale: { type: 'string', default: '1' },
    baseline: { type: 'string' },
    'skip-c': { type: 'boolean', default: false },
    settle: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '24' },
    'baseline-flags': { type: 'string', default: '' },
  },
});
/** node flags of the baseline build (default none: main before src/node-flags.ts). */
const BASELINE_FLAGS = (values['baseline-flags'] ?? '').split(' ').filter(Boolean);
const SCALE = Number(values.scale);
const SETTLE_MS = Number(values.settle) * 1000;
const PER_NS = { deployments: 20, replicasets: 60, services: 20, pods: 10 };
const OTHER_NS = Math.max(1, Math.round(500 * SCALE));
const OPTED_NS = Math.max(1, Math.round(50 * SCALE));
const APPS = 20;

const log = (line: string): void => void process.stderr.write(`${line}\n`);

// ---- creating the cluster around wpgw ------------------------------------------------------------

/** A realistic user pod template: several containers with env, probes, resources (Linux: not wpgw's). */
function template(app: string): Record<string, unknown> {
  const container = (name: string) => ({
    name,
    image: `registry.example.com/team/${app}-${name}:1.4.2`,
    ports: [{ name: 'http', containerPort: 8080 }],
    env: Array.from({ length: 8 }, (_, i) => ({ name: `SETTING_${i}`, value: `value-${i}-${app}` })),
    resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
    readinessProbe: { httpGet: { path: '/ready', port: 8080 }, periodSeconds: 10 },
    livenessProbe: { httpGet: { path: '/live', port: 8080 }, periodSeconds: 20 },
    volumeMounts: [{ name: 'config', mountPath: '/etc/app' }],
  });
  return {
    metadata: { labels: { app, tier: 'backend' }, annotations: { 'prometheus.io/scrape': 'true' } },
    spec: {
      nodeSelector: { 'kubernetes.io/os': 'linux' },
      containers: [container('main'), container('sidecar')],
      volumes: [{ name: 'config', configMap: { name: `${app}-config` } }],
    },
  };
}

function objectsOf(ns: string): Array<{ path: string; body: unknown }> {
  const out: Array<{ path: string; body: unknown }> = [];
  for (let i = 0; i < PER_NS.deployments; i++) {
    const app = `svc-${i}`;
    // Selecting tier too, so the Deployment controller does not adopt (rewrite) the ReplicaSets below.
    out.push({
      path: `/apis/apps/v1/namespaces/${ns}/deployments`,
      body: {
        metadata: { name: app, labels: { app } },
        spec: {
          paused: true,
          replicas: 0,
          selector: { matchLabels: { app, tier: 'backend' } },
          template: template(app),
        },
      },
    });
    out.push({
      path: `/api/v1/namespaces/${ns}/services`,
      body: {
        metadata: { name: app, labels: { app } },
        spec: { selector: { app }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
      },
    });
  }
  // Revision history: three ReplicaSets per Deployment, scaled to zero.
  for (let i = 0; i < PER_NS.replicasets; i++) {
    const app = `svc-${i % PER_NS.deployments}`;
    const hash = `r${Math.floor(i / PER_NS.deployments)}`;
    out.push({
      path: `/apis/apps/v1/namespaces/${ns}/replicasets`,
      body: {
        metadata: { name: `${app}-${hash}`, labels: { app, 'pod-template-hash': hash } },
        spec: {
          replicas: 0,
          selector: { matchLabels: { app, 'pod-template-hash': hash } },
          template: { ...template(app), metadata: { labels: { app, 'pod-template-hash': hash } } },
        },
      },
    });
  }
  for (let i = 0; i < PER_NS.pods; i++) {
    const app = `svc-${i}`;
    // Bound to a kwok Linux node (no scheduling); wpgw watches only its managed pods by label.
    out.push({
      path: `/api/v1/namespaces/${ns}/pods`,
      body: {
        metadata: { name: `${app}-pod`, labels: { app } },
        spec: { ...(template(app).spec as object), nodeName: 'linux-1' },
      },
    });
  }
  return out;
}

async function createAll(
  rest: RawKubeClient,
  items: Array<{ path: string; body: unknown }>,
  concurrency: number,
): Promise<void> {
  let next = 0;
  let done = 0;
  const t0 = Date.now();
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      for (let attempt = 0; ; attempt++) {
        try {
          await rest.request('POST', item.path, { body: item.body });
          break;
        } catch (err) {
          if (errorStatus(err) === 409) break; // exists (a retried request that did land)
          if (attempt >= 5) throw err;
          await new Promise((r) => setTimeout(r, 500 * (attempt + 1)));
        }
      }
      if (++done % 5000 === 0)
        log(`[footprint]   ${done}/${items.length} objects (${Math.round(done / ((Date.now() - t0) / 1000))}/s)`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

async function populateOthers(stack: Stack): Promise<{ objects: number; seconds: number }> {
  const kc = new KubeConfig();
  kc.loadFromFile(stack.kubeconfig);
  const rest = new RawKubeClient(kc);
  const namespaces = Array.from({ length: OTHER_NS }, (_, i) => `other-${String(i).padStart(3, '0')}`);
  const t0 = Date.now();
  await createAll(
    rest,
    namespaces.map((name) => ({
      path: '/api/v1/namespaces',
      body: { metadata: { name, labels: { team: `t${name.slice(-1)}` } } },
    })),
    8,
  );
  const items = namespaces.flatMap(objectsOf);
  await createAll(rest, items, Number(values.concurrency));
  return { objects: items.length + namespaces.length, seconds: (Date.now() - t0) / 1000 };
}

// ---- measuring -----------------------------------------------------------------------------------

interface Sample {
  startupS: number;
  apiserverCpuS: number;
  etcdCpuS: number;
  rssMiB: number;
  peakMiB: number;
  /** V8 heap in use / reserved (the process's own metrics), to tell live objects from allocator slack. */
  heapUsedMiB: number;
  heapTotalMiB: number;
}

async function heapMiB(port: number): Promise<{ used: number; total: number }> {
  const text = await scrape(port);
  const value = (name: string) => Number(new RegExp(`^${name} ([0-9.e+]+)$`, 'm').exec(text)?.[1] ?? NaN) / 2 ** 20;
  return { used: value('nodejs_heap_size_used_bytes'), total: value('nodejs_heap_size_total_bytes') };
}

/**
 * The stack's args that a build knows: an older baseline may not have options added since (its
 * `<command> --help` lists the ones it has). Dropped options (with their value) are said once.
 */
const knownArgsCache = new Map<string, string[]>();
function argsKnownTo(root: string, args: readonly string[]): string[] {
  const key = `${root}\0${args.join('\0')}`;
  const hit = knownArgsCache.get(key);
  if (hit) return hit;
  const help = execFileSync(process.execPath, [resolve(root, 'dist/src/cli.js'), args[0]!, '--help'], {
    encoding: 'utf8',
  });
  const known = new Set(help.match(/--[a-z][a-z0-9-]*/g) ?? []);
  const out: string[] = [args[0]!];
  const dropped: string[] = [];
  for (let i = 1; i < args.length; i++) {
    const a = args[i]!;
    const name = a.split('=')[0]!;
    const takesNext = !a.includes('=') && i + 1 < args.length && !args[i + 1]!.startsWith('--');
    if (!a.startsWith('--') || known.has(name)) {
      out.push(a);
      continue;
    }
    dropped.push(takesNext ? `${a} ${args[i + 1]}` : a);
    if (takesNext) i++;
  }
  if (dropped.length > 0) log(`[footprint] ${root}: ${args[0]} does not know ${dropped.join(', ')}: left out`);
  knownArgsCache.set(key, out);
  return out;
}

/** Restart one process (this build or the baseline's) and measure its start-up and memory. */
async function restartAndMeasure(
  stack: Stack,
  which: 'webhook' | 'controller',
  root: string,
  nodeFlags: readonly string[],
): Promise<Sample> {
  const p: ManagedProcess = stack.processes[which];
  await stopProcess(p);
  const cp = controlPlanePids(stack);
  const cpu0 = { api: cp.apiserver ? cpuSeconds(cp.apiserver) : NaN, etcd: cp.etcd ? cpuSeconds(cp.etcd) : NaN };
  const t0 = performance.now();
  const child = startProcess(root, { ...p, args: argsKnownTo(root, p.args) }, nodeFlags);
  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = String(code ?? signal)));
  const port = which === 'webhook' ? stack.webhookPort : stack.controllerPort;
  const deadline = Date.now() + 300_000;
  while (!(await isReady(port))) {
    if (exited !== undefined) throw new Error(`${which} (${root}) exited (${exited}) before ready; see ${p.log}`);
    if (Date.now() > deadline) throw new Error(`${which} (${root}) not ready after 300 s; see ${p.log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const startupS = (performance.now() - t0) / 1000;
  const apiserverCpuS = cp.apiserver ? cpuSeconds(cp.apiserver) - cpu0.api : NaN;
  const etcdCpuS = cp.etcd ? cpuSeconds(cp.etcd) - cpu0.etcd : NaN;
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const pid = pidOf(p.pidFile);
  const heap = await heapMiB(port);
  return {
    startupS,
    apiserverCpuS,
    etcdCpuS,
    rssMiB: procStatusMiB(pid, 'VmRSS'),
    peakMiB: procStatusMiB(pid, 'VmHWM'),
    heapUsedMiB: heap.used,
    heapTotalMiB: heap.total,
  };
}

/** Until the controller's queue is empty and it wrote nothing for 5 s (at most 5 min, then said). */
async function controllerQuiet(stack: Stack, what: string): Promise<void> {
  const deadline = Date.now() + 300_000;
  let last = NaN;
  let quietSince = Date.now();
  while (Date.now() < deadline) {
    const writes = await metric(stack, 'wpgw_controller_writes_total');
    const depth = await metric(stack, 'wpgw_controller_queue_depth');
    if (writes !== last || depth !== 0) quietSince = Date.now();
    last = writes;
    if (Date.now() - quietSince >= 5000) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
  log(`[footprint] ${what}: the controller was still writing after 5 min; going on`);
}

type Build = 'this' | 'baseline';
type Row = { phase: string; build: Build; process: 'webhook' | 'controller'; s: Sample; runningPeakMiB?: number };

async function measurePhase(stack: Stack, phase: string, builds: Array<[Build, string]>, rows: Row[]): Promise<void> {
  // The running processes' peak so far (in (c): while the opted-in load converged).
  const runningPeak = {
    webhook: procStatusMiB(pidOf(stack.processes.webhook.pidFile), 'VmHWM'),
    controller: procStatusMiB(pidOf(stack.processes.controller.pidFile), 'VmHWM'),
  };
  // The build under test last, so the stack keeps running it for the next phase.
  for (const [build, root] of [...builds].reverse()) {
    for (const which of ['webhook', 'controller'] as const) {
      log(`[footprint] ${phase}: restarting the ${which} (${build})`);
      const s = await restartAndMeasure(stack, which, root, build === 'this' ? nodeFlagsFor(which) : BASELINE_FLAGS);
      rows.push({
        phase,
        build,
        process: which,
        s,
        ...(build === 'this' ? { runningPeakMiB: runningPeak[which] } : {}),
      });
      // A controller of another build rewrites the managed objects to its own desired form: let
      // it finish before the next process starts, so no start-up is measured amid that churn.
      if (which === 'controller') await controllerQuiet(stack, `${phase}, ${build}`);
    }
  }
}

const f1 = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '' : n.toFixed(1));
const verdict = (ok: boolean, target: string) => `${ok ? 'PASS' : 'MISS'} (${target})`;

function report(rows: Row[], setup: string[]): string[] {
  const out: string[] = [];
  out.push(
    `wpgw footprint (real kube-apiserver, kwok nodes), node ${process.version}, ${availableParallelism()} CPUs, --scale ${SCALE}`,
  );
  out.push(...setup);
  out.push('');
  out.push(
    '| phase | build | process | start-up s | apiserver CPU-s | etcd CPU-s | RSS MiB (settled) | heap used / total MiB | peak MiB (fresh process) | peak MiB (running process) |',
  );
  out.push('|:--|:--|:--|--:|--:|--:|--:|--:|--:|--:|');
  for (const r of rows)
    out.push(
      `| ${r.phase} | ${r.build} | ${r.process} | ${f1(r.s.startupS)} | ${f1(r.s.apiserverCpuS)} | ${f1(r.s.etcdCpuS)} | ${f1(r.s.rssMiB)} | ${f1(r.s.heapUsedMiB)} / ${f1(r.s.heapTotalMiB)} | ${f1(r.s.peakMiB)} | ${f1(r.runningPeakMiB)} |`,
    );
  out.push(
    '(start-up: process start -> /readyz 200; apiserver/etcd CPU-s: their CPU time over that start-up, i.e. the start-up lists and watches;',
  );
  out.push(
    ` RSS: VmRSS ${SETTLE_MS / 1000} s after ready; peak: VmHWM of the restarted process, and of the process that ran through the phase's load before it)`,
  );
  out.push('');
  const get = (phase: string, p: 'webhook' | 'controller', build: Build = 'this') =>
    rows.find((r) => r.phase.startsWith(phase) && r.process === p && r.build === build);
  const misses: string[] = [];
  const target = (name: string, ok: boolean | undefined, text: string, value: string) => {
    if (ok === undefined) return;
    out.push(`  ${name.padEnd(52)} ${value.padEnd(28)} ${verdict(ok, text)}`);
    if (!ok) misses.push(name);
  };
  out.push('Targets (this build)');
  for (const p of ['webhook', 'controller'] as const) {
    const a = get('(a)', p);
    const b = get('(b)', p);
    if (a && b) {
      const growth = Math.max(b.s.peakMiB - a.s.peakMiB, b.s.rssMiB - a.s.rssMiB);
      target(
        `${p}: growth (a) -> (b), peak and settled RSS`,
        growth < 50,
        '< 50 MiB',
        `+${f1(b.s.peakMiB - a.s.peakMiB)} / +${f1(b.s.rssMiB - a.s.rssMiB)} MiB`,
      );
      target(
        `${p}: start-up at (b)`,
        b.s.startupS < 20,
        '< 20 s',
        `${f1(b.s.startupS)} s (apiserver ${f1(b.s.apiserverCpuS)} CPU-s)`,
      );
    }
    const c = get('(c)', p);
    if (c) {
      const limit = p === 'controller' ? 250 : 150;
      const peak = Math.max(c.s.peakMiB, c.runningPeakMiB ?? 0);
      target(`${p}: peak RSS at (c), fresh or running`, peak < limit, `< ${limit} MiB`, `${f1(peak)} MiB`);
    }
  }
  out.push(misses.length > 0 ? `MISS: ${misses.join(', ')}` : 'All targets PASS.');
  return out;
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const builds: Array<[Build, string]> = [
    ['this', ROOT],
    ...(values.baseline ? [['baseline', resolve(values.baseline)] as [Build, string]] : []),
  ];
  const stack = await startStack({
    root: ROOT,
    stateDir: resolve(ROOT, '.bench-footprint-state'),
    controllerArgs: ['--resync', '5m'],
    log,
  });
  const rows: Row[] = [];
  const setup: string[] = [];
  try {
    await measurePhase(stack, '(a) empty', builds, rows);
    log(`[footprint] (b): creating ${OTHER_NS} namespaces with ${JSON.stringify(PER_NS)} each`);
    const made = await populateOthers(stack);
    setup.push(
      `(b): ${OTHER_NS} namespaces not opted in, each ${PER_NS.deployments} Deployments (paused), ${PER_NS.replicasets} ReplicaSets (replicas 0), ${PER_NS.services} Services, ${PER_NS.pods} pods: ${made.objects} objects created through the API in ${made.seconds.toFixed(0)} s`,
    );
    await measurePhase(stack, `(b) +${OTHER_NS} other ns`, builds, rows);
    if (!values['skip-c']) {
      log(`[footprint] (c): opting in ${OPTED_NS} namespaces x ${APPS} Windows apps`);
      const namespaces = Array.from({ length: OPTED_NS }, (_, i) => `opted-${String(i).padStart(3, '0')}`);
      const times = await optInWindowsApps(stack, namespaces, APPS);
      setup.push(
        `(c): + ${OPTED_NS} opted-in namespaces x ${APPS} Windows apps, converged ${((times.convergedAt - times.labelledAt) / 1000).toFixed(0)} s after labelling`,
      );
      await measurePhase(stack, `(c) +${OPTED_NS}x${APPS} opted in`, builds, rows);
    }
    if (values.baseline)
      setup.push(
        `baseline: ${resolve(values.baseline)} (dist/src/cli.js), node flags [${BASELINE_FLAGS.join(' ')}], measured in the same phases`,
      );
    setup.push(
      `this build: node flags webhook [${nodeFlagsFor('webhook').join(' ')}], controller [${nodeFlagsFor('controller').join(' ')}] (src/node-flags.ts)`,
    );
    for (const line of report(rows, setup)) process.stdout.write(`${line}\n`);
    process.stdout.write(`Total bench time ${((Date.now() - t0) / 1000).toFixed(0)} s.\n`);
  } finally {
    await stack.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:footprint failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
