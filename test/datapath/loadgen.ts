// The data-path benchmark's load: vegeta (loadgen/build.sh) run inside a pod's network namespace
// (with its hosts file and resolver, as the app itself would call), at a constant open-loop rate or
// closed-loop with a fixed number of workers (saturation); and what a proxy of the runner (its
// pilot-agent and the Envoy under it) used meanwhile, from /proc.
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cpuSeconds, procStatusMiB } from '../lib/proc.js';
import { vegetaResults, type ProxyUsage, type VegetaResult } from './report.js';
import { nsExec } from './network.js';
import { run } from './procs.js';
import type { RunningPod } from './runner.js';

export const VEGETA = resolve(import.meta.dirname, 'bin/vegeta');

export interface Target {
  url: string;
  headers?: Record<string, string>;
}

export interface Attack {
  /** requests per second, or 'max': closed loop with `workers` concurrent requests */
  rate: number | 'max';
  seconds: number;
  workers?: number;
  /** e.g. ['taskset', '-c', '0'] to pin the generator */
  prefix?: string[];
}

/** Runs one vegeta attack in `netns` and returns every result (answered or not). */
export async function attack(
  netns: string,
  target: Target,
  a: Attack,
  dir: string,
  name: string,
): Promise<VegetaResult[]> {
  const targets = join(dir, `${name}.targets`);
  const bin = join(dir, `${name}.bin`);
  writeFileSync(
    targets,
    [`GET ${target.url}`, ...Object.entries(target.headers ?? {}).map(([k, v]) => `${k}: ${v}`), ''].join('\n'),
  );
  const rate =
    a.rate === 'max'
      ? ['-rate=0', `-max-workers=${a.workers ?? 8}`, `-workers=${a.workers ?? 8}`]
      : [`-rate=${a.rate}/1s`];
  // -max-body=0: bodies are not kept (the probes check them); -timeout: a stuck request counts as failed.
  await nsExec(
    netns,
    [
      ...(a.prefix ?? []),
      VEGETA,
      'attack',
      `-targets=${targets}`,
      ...rate,
      `-duration=${a.seconds}s`,
      '-timeout=10s',
      '-max-body=0',
      `-output=${bin}`,
    ],
    (a.seconds + 60) * 1000,
  );
  const csv = await run(VEGETA, ['encode', '-to', 'csv', bin], { timeoutMs: 120_000 });
  rmSync(bin, { force: true });
  return vegetaResults(csv);
}

/** The pid and every descendant (pilot-agent -> Envoy), from /proc. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(root);
  return out;
}

/** The pid of a running pod's istio-proxy container (pilot-agent: unshare and sh exec into it). */
export function proxyPid(p: RunningPod): number {
  const pid = p.procs.find((x) => x.name.endsWith('/istio-proxy'))?.child.pid;
  if (!pid) throw new Error(`${p.namespace}/${p.name}: no istio-proxy process`);
  return pid;
}

/** CPU seconds of a proxy (pilot-agent + Envoy) over fn(), and their RSS after it. */
export async function usageDuring<T>(
  p: RunningPod | undefined,
  fn: () => Promise<T>,
): Promise<{ value: T; usage?: Omit<ProxyUsage, 'requests'> }> {
  if (!p) return { value: await fn() };
  const pids = processTree(proxyPid(p));
  const cpu = () => pids.reduce((a, pid) => a + cpuSeconds(pid), 0);
  const c0 = cpu();
  const value = await fn();
  const cpuUsed = cpu() - c0;
  const rssMiB = pids.reduce((a, pid) => a + procStatusMiB(pid, 'VmRSS'), 0);
  if (!Number.isFinite(cpuUsed) || !Number.isFinite(rssMiB))
    throw new Error(`${p.namespace}/${p.name}: a proxy process exited during the run`);
  return { value, usage: { cpuSeconds: cpuUsed, rssMiB } };
}
