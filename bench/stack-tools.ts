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

export async function count(stack: Stack, resource: string, selector: string, fieldSelector?: string): Promise<number> {
  const fields = fieldSelector ? ['--field-selector', fieldSelector] : [];
  const out = await kubectl(stack, ['get', resource, '-A', '-l', selector, ...fields, '-o', 'name']);
  return out.split('\n').filter(Boolean).length;
}

interface NodeJson {
  metadata: { annotations?: Record<string, string>; labels?: Record<string, string> };
  status: { capacity?: Record<string, string>; allocatable?: { pods?: string }; nodeInfo?: unknown };
}

/**
 * kwok Windows nodes enough for `pods` running pods: the harness has one (windows-1, 110 pods),
 * and a pod that cannot be scheduled gets no IP, so the load would stop short of what it names.
 * The extra nodes copy windows-1 (kwok manages them by its annotation) with their own pod CIDRs.
 */
export async function ensureWindowsCapacity(stack: Stack, pods: number): Promise<void> {
  const base = JSON.parse(await kubectl(stack, ['get', 'node', 'windows-1', '-o', 'json'])) as NodeJson;
  const perNode = Number(base.status.allocatable?.pods ?? 110);
  const want = Math.ceil(pods / perNode) - 1;
  const have = new Set((await kubectl(stack, ['get', 'nodes', '-o', 'name'])).split('\n').filter(Boolean));
  const docs: unknown[] = [];
  const names: string[] = [];
  for (let i = 1; i <= want; i++) {
    const name = `windows-bench-${i}`;
    names.push(name);
    if (have.has(`node/${name}`)) continue;
    const cidr = `10.244.${64 + i}.0/24`;
    docs.push({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name,
        annotations: base.metadata.annotations,
        labels: { ...base.metadata.labels, 'kubernetes.io/hostname': name },
      },
      spec: { podCIDR: cidr, podCIDRs: [cidr] },
      status: {
        addresses: [
          { type: 'InternalIP', address: `127.0.101.${i}` },
          { type: 'Hostname', address: name },
        ],
        capacity: base.status.capacity,
        allocatable: base.status.allocatable,
        nodeInfo: base.status.nodeInfo,
      },
    });
  }
  if (docs.length > 0) await kubectl(stack, ['create', '-f', '-'], docs.map((d) => stringify(d)).join('---\n'));
  if (names.length === 0) return;
  await elapsedUntil(
    `${names.length} more Windows nodes Ready`,
    async () => {
      const out = await kubectl(stack, [
        'get',
        'nodes',
        '-o',
        'jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
      ]);
      const ready = new Set(
        out
          .split('\n')
          .filter((l) => l.endsWith(' True'))
          .map((l) => l.split(' ')[0]),
      );
      return names.every((n) => ready.has(n));
    },
    300_000,
  );
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
  await ensureWindowsCapacity(stack, n * m);
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
      // Running: scheduled and given an IP, which the gateway's policies list.
      (await count(stack, 'pods', 'wpgw.io/managed=true', 'status.phase=Running')) >= total &&
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
