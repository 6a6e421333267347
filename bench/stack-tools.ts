// Helpers the benchmarks on the real control plane share (bench:controller, bench:footprint):
// kubectl and metrics of a running Stack, polling, per-process CPU accounts, the Windows apps.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { Stack } from '../test/lib/cluster-stack.js';
import { kubectlAsync } from '../test/lib/kubectl.js';
import { scrapeSum } from '../test/lib/metrics.js';
import { elapsedUntil } from '../test/lib/poll.js';
import { cpuSeconds, procStatusMiB } from '../test/lib/proc.js';

export function kubectl(stack: Stack, args: string[], input?: string): Promise<string> {
  return kubectlAsync(stack.kubectl, stack.kubeconfig, args, input);
}

export async function count(stack: Stack, resource: string, selector: string): Promise<number> {
  const out = await kubectl(stack, ['get', resource, '-A', '-l', selector, '-o', 'name']);
  return out.split('\n').filter(Boolean).length;
}

/** Sum of a controller metric's samples. */
export function metric(stack: Stack, name: string): Promise<number> {
  return scrapeSum(stack.controllerPort, name);
}

export function pidOf(file: string): number {
  return existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : 0;
}

export function peakRssMiB(pidFile: string): number {
  return Math.round(procStatusMiB(pidOf(pidFile), 'VmHWM'));
}

/** Control-plane processes of the harness by name (empty with an external cluster). */
export function controlPlanePids(stack: Stack): Record<string, number> {
  const out: Record<string, number> = {};
  if (!stack.ownCluster) return out;
  for (const c of ['etcd', 'apiserver', 'kcm', 'scheduler', 'kwok']) {
    const pid = pidOf(join(stack.stateDir, 'cluster', `${c}.pid`));
    if (pid) out[c] = pid;
  }
  return out;
}

/** Who used the CPU: every control-plane and wpgw process, and this generator with its kubectl children. */
export function cpuAccounts(stack: Stack): Array<[string, () => number]> {
  const out: Array<[string, () => number]> = Object.entries(controlPlanePids(stack)).map(([c, pid]) => [
    c,
    () => cpuSeconds(pid),
  ]);
  for (const p of ['webhook', 'controller'] as const) {
    const pid = pidOf(stack.processes[p].pidFile);
    if (pid) out.push([`wpgw ${p}`, () => cpuSeconds(pid)]);
  }
  out.push(['load generator (this process + kubectl)', () => cpuSeconds('self', true)]);
  return out;
}

export async function inBatches<T>(items: T[], size: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

/** M Windows Deployments, each with a Service, in `ns`, as YAML for kubectl apply. */
export function windowsApps(ns: string, m: number): string {
  const docs: unknown[] = [];
  for (let i = 0; i < m; i++) {
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
            metadata: {
              labels: { app },
              annotations: { 'wpgw.io/outbound': `dest-${i}.example.com:80, orders.sales.svc.cluster.local:9080` },
            },
            spec: {
              nodeSelector: { 'kubernetes.io/os': 'windows' },
              containers: [{ name: 'app', image: 'app', ports: [{ name: 'http', containerPort: 80 }] }],
            },
          },
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: app, namespace: ns },
        spec: { selector: { app }, ports: [{ name: 'http', port: 8080, targetPort: 'http' }] },
      },
    );
  }
  return docs.map((d) => stringify(d)).join('---\n');
}

export interface OptInTimes {
  /** Date.now() when the namespaces were labelled, all gateways existed, the last workload was written, all was converged. */
  labelledAt: number;
  gatewaysAt: number;
  firstWriteAt: number;
  lastWriteAt: number;
  convergedAt: number;
}

/** Label namespaces opted in, apply M Windows apps to each, and wait until all is converged. */
export async function optInWindowsApps(stack: Stack, namespaces: string[], m: number): Promise<OptInTimes> {
  const n = namespaces.length;
  const labelledAt = Date.now();
  await kubectl(
    stack,
    ['apply', '-f', '-'],
    namespaces
      .map((name) =>
        stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'wpgw.io/inject': 'enabled' } } }),
      )
      .join('---\n'),
  );
  const gateways = async () =>
    (await count(stack, 'services', 'app.kubernetes.io/managed-by=wpgw,wpgw.io/for=namespace')) >= n;
  await elapsedUntil(`${n} gateways`, gateways, 600_000);
  const gatewaysAt = Date.now();
  // Pods are denied until their namespace's gateway exists (and the default ServiceAccount).
  await elapsedUntil(
    'default ServiceAccounts',
    async () =>
      (
        await kubectl(stack, [
          'get',
          'serviceaccounts',
          '-A',
          '--field-selector',
          'metadata.name=default',
          '-o',
          'name',
        ])
      )
        .split('\n')
        .filter((l) => l).length >=
      n + 1,
    300_000,
  );
  const firstWriteAt = Date.now();
  await inBatches(namespaces, 8, (ns) =>
    kubectl(stack, ['apply', '--server-side', '--field-manager=bench', '-f', '-'], windowsApps(ns, m)),
  );
  const lastWriteAt = Date.now();
  const total = n * m;
  await elapsedUntil(
    'convergence',
    async () =>
      (await count(stack, 'pods', 'wpgw.io/managed=true')) >= total &&
      (await count(stack, 'services', 'wpgw.io/repointed=true')) >= total &&
      (await count(stack, 'services', 'app.kubernetes.io/managed-by=wpgw')) >= n + total &&
      (await count(stack, 'virtualservices.networking.istio.io', 'app.kubernetes.io/managed-by=wpgw')) >=
        n * (m + 1) + total &&
      (await metric(stack, 'wpgw_controller_queue_depth')) === 0,
    900_000,
    500,
  );
  return { labelledAt, gatewaysAt, firstWriteAt, lastWriteAt, convergedAt: Date.now() };
}
