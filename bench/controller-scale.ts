// Controller scale benchmark on the real control plane (test/harness): N opted-in namespaces with
// M Windows Deployments and Services each (kwok pods). Prints time from labelling to converged,
// API writes per managed object, writes during a no-op resync, watch events handled per second
// and peak RSS. A script that prints numbers, not a test: it fails only if the stack breaks.
//
//   npm run bench:controller [-- --namespaces 50 --services 20] [--controller-flags='--max-semi-space-size=4']
//
// --controller-flags runs the controller with other node flags than its Deployment's
// (CONTROLLER_NODE_FLAGS, src/node-flags.ts): the cost of a V8 flag, run against run.
import { resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { isReady, startProcess, startStack, stopProcess, type Stack } from '../test/lib/cluster-stack.js';
import { nodeFlagsFor } from '../src/node-flags.js';
import { elapsedUntil } from '../test/lib/poll.js';
import { scrape } from '../test/lib/metrics.js';
import { count, cpuAccounts, kubectl, metric, optInWindowsApps, peakRssMiB } from './stack-tools.js';

const ROOT = resolve(import.meta.dirname, '../..');

const { values } = parseArgs({
  options: {
    namespaces: { type: 'string', default: '50' },
    services: { type: 'string', default: '20' },
    kubeconfig: { type: 'string' },
    resync: { type: 'string', default: '30s' },
    'controller-flags': { type: 'string' },
  },
});
const CONTROLLER_FLAGS =
  values['controller-flags'] !== undefined
    ? values['controller-flags'].split(' ').filter(Boolean)
    : nodeFlagsFor('controller');
const N = Number(values.namespaces);
const M = Number(values.services);
const RESYNC_MS = Number(/^(\d+)s$/.exec(values.resync ?? '30s')?.[1] ?? 30) * 1000;

/** A counter's samples as {labels: value}, e.g. {'verb="apply",kind="Service"': 12}. */
async function metricByLabels(stack: Stack, name: string): Promise<Map<string, number>> {
  const text = await scrape(stack.controllerPort);
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}\\{([^}]*)\\} ([0-9.e+-]+)$`).exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

async function main(): Promise<void> {
  const stack = await startStack({
    root: ROOT,
    stateDir: resolve(ROOT, '.bench-state'),
    ...(values.kubeconfig ? { externalKubeconfig: values.kubeconfig } : {}),
    controllerArgs: ['--resync', values.resync ?? '30s'],
  });
  try {
    if (values['controller-flags'] !== undefined) {
      await stopProcess(stack.processes.controller);
      startProcess(ROOT, stack.processes.controller, CONTROLLER_FLAGS);
      await elapsedUntil(
        'the controller restarted with --controller-flags',
        () => isReady(stack.controllerPort),
        120_000,
      );
    }
    const namespaces = Array.from({ length: N }, (_, i) => `bench-${String(i).padStart(3, '0')}`);
    const watchStart = await metric(stack, 'wpgw_controller_watch_events_total');
    const accounts = cpuAccounts(stack);
    const cpuStart = accounts.map(([, f]) => f());
    const times = await optInWindowsApps(stack, namespaces, M);
    const t0 = times.labelledAt;
    const tConverged = times.convergedAt;
    const total = N * M;
    const cpuUsed = accounts.map(([name, f], i) => [name, f() - cpuStart[i]!] as const);
    const writes = await metric(stack, 'wpgw_controller_writes_total');
    const watchEvents = (await metric(stack, 'wpgw_controller_watch_events_total')) - watchStart;
    const kinds =
      'serviceaccounts,services,configmaps,deployments,poddisruptionbudgets,networkpolicies,gateways.networking.istio.io,virtualservices.networking.istio.io,destinationrules.networking.istio.io,serviceentries.networking.istio.io,authorizationpolicies.security.istio.io';
    const managedKinds = (
      await kubectl(stack, [
        'get',
        kinds,
        '-A',
        '-l',
        'app.kubernetes.io/managed-by=wpgw',
        '-o',
        'jsonpath={range .items[*]}{.kind}{"\\n"}{end}',
      ])
    )
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

    const controllerCpu = cpuUsed.find(([name]) => name === 'wpgw controller')?.[1] ?? Number.NaN;
    const lagMs = tConverged - times.lastWriteAt;
    const rows: Array<[string, string, string]> = [
      ['namespaces x Windows apps', `${N} x ${M} (${total} Deployments, Services, pods)`, ''],
      // The headline: how far the controller trails the load, and what it costs per object.
      ['controller lag: last workload write -> converged', `${(lagMs / 1000).toFixed(1)} s`, ''],
      [
        'controller CPU per reconciled (managed) object',
        `${((controllerCpu / managed) * 1000).toFixed(2)} ms (${controllerCpu.toFixed(1)} CPU-s / ${managed})`,
        '',
      ],
      ['labelling -> all gateways exist', `${((times.gatewaysAt - t0) / 1000).toFixed(1)} s`, ''],
      ['kubectl apply of the workloads', `${((times.lastWriteAt - times.firstWriteAt) / 1000).toFixed(1)} s`, ''],
      // On 2 cores this is bounded by the API server (see the CPU table below).
      [
        'labelling -> fully converged',
        `${((tConverged - t0) / 1000).toFixed(1)} s`,
        tConverged - t0 < 60_000 ? 'PASS (< 60 s)' : 'MISS (target < 60 s)',
      ],
      ['managed objects', String(managed), ''],
      ['API writes', String(writes), ''],
      [
        'writes per managed object',
        (writes / managed).toFixed(2),
        writes / managed <= 1.1 ? 'PASS (<= 1.1)' : 'MISS (target <= 1.1)',
      ],
      [
        'no-op resync: reconciles / writes',
        `${resyncReconciles} / ${resyncWrites}`,
        resyncWrites === 0 ? 'PASS (0 writes)' : 'MISS (target 0)',
      ],
      ['watch events handled / s', ((watchEvents / (tConverged - t0)) * 1000).toFixed(0), ''],
      [
        'peak RSS controller / webhook',
        `${peakRssMiB(stack.processes.controller.pidFile)} MiB / ${peakRssMiB(stack.processes.webhook.pidFile)} MiB`,
        '',
      ],
    ];
    process.stdout.write('\nwpgw controller scale (real kube-apiserver, kwok nodes)\n');
    process.stdout.write(`  controller node flags [${CONTROLLER_FLAGS.join(' ')}]\n`);
    for (const [k, v, t] of rows) process.stdout.write(`  ${k.padEnd(50)} ${v.padEnd(44)} ${t}\n`);
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
      process.stdout.write(
        `  ${`${r.verb} ${r.kind}`.padEnd(42)} ${String(r.n).padStart(6)} writes  ${String(objects).padStart(6)} managed  ${objects ? (r.n / objects).toFixed(2) : '-'}\n`,
      );
    }
    const wall = (tConverged - t0) / 1000;
    const cpuTotal = cpuUsed.reduce((a, [, v]) => a + (Number.isFinite(v) ? v : 0), 0);
    process.stdout.write(
      `\nCPU time from labelling to converged (${wall.toFixed(1)} s wall, ${availableParallelism()} CPUs = ${(wall * availableParallelism()).toFixed(0)} CPU-s available)\n`,
    );
    for (const [name, v] of [...cpuUsed].sort((a, b) => b[1] - a[1])) {
      process.stdout.write(
        `  ${name.padEnd(42)} ${Number.isFinite(v) ? `${v.toFixed(1).padStart(7)} CPU-s  ${((100 * v) / cpuTotal).toFixed(0).padStart(3)}%` : '  (exited)'}\n`,
      );
    }
    process.stdout.write(
      `  ${'all of the above'.padEnd(42)} ${cpuTotal.toFixed(1).padStart(7)} CPU-s  (${((100 * cpuTotal) / (wall * availableParallelism())).toFixed(0)}% of the machine)\n`,
    );
  } finally {
    await stack.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:controller failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
