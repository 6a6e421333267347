// The webhook benchmark's measurement (`npm run bench`, bench/run.ts): the servers under test as
// pinned child processes (bench/server.ts), closed-loop load with autocannon, the open-loop paced
// load, the CPU and scheduling accounts of each run, and the checks that a server answers each
// payload as meant before it is measured.
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { dirname, join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { CLK_TCK, cpuSeconds } from '../test/lib/proc.js';
import { percentile } from '../test/lib/stats.js';
import type { BenchConfig } from './run-options.js';
import { pacedLoad } from './paced.js';
import type { Payload } from './payloads.js';
import type { ServerReady } from './server.js';

export interface Server {
  name: string;
  /** Absent for istiod, which test/istio/start.sh starts. */
  child?: ChildProcess;
  pid: number;
  port: number;
  ready: ServerReady;
  /** The admission path (default /mutate; istiod's injector: /inject). */
  path?: string;
}

const here = dirname(fileURLToPath(import.meta.url));

/** Starts bench/server.ts in `mode` as a child process (kept in `children` to stop it). */
export function startServer(
  cfg: BenchConfig,
  children: ChildProcess[],
  name: string,
  certDir: string,
  mode: string,
  extra: string[] = [],
): Promise<Server> {
  const script = join(here, 'server.js');
  const serverArgs = ['--mode', mode, '--cert-dir', certDir, ...extra];
  const nodeFlags = mode === 'floor' ? [] : cfg.wpgwNodeFlags;
  // fork() gives the IPC channel; with pinning, `taskset -c 1 node …` execs node in place, so the
  // child keeps the channel's file descriptor and its pid is the server's pid.
  const child = cfg.pin
    ? fork(script, serverArgs, {
        execPath: 'taskset',
        execArgv: ['-c', '1', process.execPath, ...nodeFlags],
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      })
    : fork(script, serverArgs, { execArgv: nodeFlags, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${name} server exited with ${code} before it was ready`)));
    child.once('message', (m: unknown) => {
      const ready = m as ServerReady & { type: string };
      resolve({ name, child, pid: child.pid ?? 0, port: ready.port, ready });
    });
  });
}

/** Seconds the process spent runnable but waiting for a CPU (other processes on its core). */
export function runQueueWaitSeconds(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e9;
  } catch {
    return NaN;
  }
}

export function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

// ---- measurement -------------------------------------------------------------------------------

export interface Sample {
  requests: number;
  seconds: number;
  latencies: number[];
  non2xx: number;
  errors: number;
  serverCpu: number;
  /** Server CPU seconds spent during the run (warm connections, so ~all of it on these requests). */
  serverCpuSeconds: number;
  /** Share of the run the server's main thread was runnable but waiting for its CPU. */
  serverWait: number;
  clientCpu: number;
}

export interface Stats {
  rps: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  n: number;
  non2xx: number;
  errors: number;
  serverCpu: number;
  /**
   * Server CPU time per answered request, µs: what one core's capacity is made of. The median over
   * the slices (one per round), so one slice the machine disturbed does not move it.
   */
  cpuPerRequestUs: number;
  /** The same per slice, in the order measured (slice i ran in round i). */
  cpuPerRequestSlicesUs: number[];
  serverWait: number;
  clientCpu: number;
}

export function summarize(samples: Sample[]): Stats {
  const all = Float64Array.from(samples.flatMap((s) => s.latencies)).sort();
  const seconds = samples.reduce((a, s) => a + s.seconds, 0);
  const requests = samples.reduce((a, s) => a + s.requests, 0);
  const slices = samples.map((s) => (s.serverCpuSeconds / Math.max(1, s.requests)) * 1e6);
  return {
    rps: requests / seconds,
    p50: percentile(all, 0.5),
    p99: percentile(all, 0.99),
    p999: percentile(all, 0.999),
    max: all.length ? (all[all.length - 1] ?? NaN) : NaN,
    n: all.length,
    non2xx: samples.reduce((a, s) => a + s.non2xx, 0),
    errors: samples.reduce((a, s) => a + s.errors, 0),
    serverCpu: samples.reduce((a, s) => a + s.serverCpu * s.seconds, 0) / seconds,
    cpuPerRequestUs: median(slices),
    cpuPerRequestSlicesUs: slices,
    serverWait: samples.reduce((a, s) => a + s.serverWait * s.seconds, 0) / seconds,
    clientCpu: samples.reduce((a, s) => a + s.clientCpu * s.seconds, 0) / seconds,
  };
}

/**
 * floor CPU/req ÷ server CPU/req within each round (the two slices ran back to back, so drift of
 * the machine hits both), as the median over the rounds and the range. This is the capacity
 * ratio the targets are judged on: on a shared machine one slice can run 10-50% slow, which moves
 * a ratio of pooled totals taken over two rounds by several points (bench/README.md).
 */
export function capacityRatio(s: Stats, floor: Stats): PairedRatio {
  return pairedCpuRatio(floor, s);
}

export interface PairedRatio {
  median: number;
  min: number;
  max: number;
}

/** a's CPU/req ÷ b's within each round (slices paired by index): median and range over the rounds. */
export function pairedCpuRatio(a: Stats, b: Stats): PairedRatio {
  const n = Math.min(a.cpuPerRequestSlicesUs.length, b.cpuPerRequestSlicesUs.length);
  const ratios = Array.from({ length: n }, (_, i) => a.cpuPerRequestSlicesUs[i]! / b.cpuPerRequestSlicesUs[i]!);
  return { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) };
}

/**
 * Runs `rounds` slices on each of two servers, alternating and flipping the order every round so
 * drift and noise hit both alike; slice i of each side belongs to round i (what pairedCpuRatio
 * pairs).
 */
export async function alternate(
  rounds: number,
  a: { name: string; run: () => Promise<Sample> },
  b: { name: string; run: () => Promise<Sample> },
  label: string,
): Promise<{ a: Sample[]; b: Sample[] }> {
  const out = { a: [] as Sample[], b: [] as Sample[] };
  for (let round = 0; round < rounds; round++) {
    const sides = [
      { side: a, into: out.a },
      { side: b, into: out.b },
    ];
    if (round % 2 === 1) sides.reverse();
    for (const { side, into } of sides) {
      log(`  ${label}: ${side.name} round ${round + 1}/${rounds}`);
      into.push(await side.run());
    }
  }
  return out;
}

/** The median (the mean of the middle two for an even count); NaN when there are none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

export type Body = string | string[];

/**
 * One autocannon run. Latencies come from the per-response event (float ms from process.hrtime;
 * autocannon's own histogram keeps whole milliseconds). The first response of each connection is
 * left out: it carries the TLS handshake, which a kept-alive API server connection does not pay.
 */
export async function cannon(
  cfg: BenchConfig,
  server: Server,
  body: Body,
  seconds: number,
  overallRate?: number,
): Promise<Sample> {
  const latencies: number[] = [];
  const seen = new WeakSet<object>();
  const headers = { 'content-type': 'application/json' };
  const path = server.path ?? '/mutate';
  const opts: autocannon.Options = {
    url: `https://127.0.0.1:${server.port}${path}`,
    method: 'POST',
    headers,
    connections: cfg.connections,
    duration: seconds,
    timeout: 10,
    // autocannon stops at its first sample tick after `duration`: tick often so runs end on time.
    sampleInt: 100,
    ...(typeof body === 'string'
      ? { body }
      : { requests: body.map((b) => ({ method: 'POST' as const, path, headers, body: b })) }),
    ...(overallRate ? { overallRate } : {}),
  };
  const cpu0 = cpuSeconds(server.pid);
  const wait0 = runQueueWaitSeconds(server.pid);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let instance!: autocannon.Instance;
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon(opts, (err: unknown, result: autocannon.Result) =>
      err ? reject(err as Error) : resolve(result),
    );
  });
  let ok = 0;
  instance.on('response', (client: object, statusCode: number, _bytes: number, responseTime: number) => {
    if (statusCode < 200 || statusCode > 299) return;
    ok++;
    if (!seen.has(client)) {
      seen.add(client);
      return;
    }
    latencies.push(responseTime);
  });
  const result = await done;
  const wall = (performance.now() - t0) / 1000;
  const c1 = process.cpuUsage(c0);
  const cpu1 = cpuSeconds(server.pid);
  return {
    requests: ok,
    seconds: result.duration || wall,
    latencies,
    non2xx: result.non2xx,
    errors: result.errors,
    serverCpu: (cpu1 - cpu0) / wall,
    serverCpuSeconds: cpu1 - cpu0,
    serverWait: (runQueueWaitSeconds(server.pid) - wait0) / wall,
    clientCpu: (c1.user + c1.system) / 1e6 / wall,
  };
}

/** Schedule lag of each server's paced run, p50/p99 ms, by server name. */
export type ScheduleLag = Map<string, { p50: number; p99: number }>;

/** The open-loop paced load (bench/paced.ts) with the same bookkeeping as `cannon`; its schedule lag goes to `lags`. */
export async function paced(
  cfg: BenchConfig,
  server: Server,
  body: string,
  rate: number,
  seconds: number,
  ca: string,
  lags: ScheduleLag,
): Promise<Sample> {
  const cpu0 = cpuSeconds(server.pid);
  const wait0 = runQueueWaitSeconds(server.pid);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await pacedLoad({ port: server.port, ca, body, rate, seconds, connections: cfg.connections });
  const lag = Float64Array.from(r.scheduleLag).sort();
  lags.set(server.name, { p50: percentile(lag, 0.5), p99: percentile(lag, 0.99) });
  const wall = (performance.now() - t0) / 1000;
  const c1 = process.cpuUsage(c0);
  return {
    requests: r.ok,
    seconds: r.seconds,
    latencies: r.latencies,
    non2xx: r.non2xx,
    errors: r.errors,
    serverCpu: (cpuSeconds(server.pid) - cpu0) / wall,
    serverCpuSeconds: cpuSeconds(server.pid) - cpu0,
    serverWait: (runQueueWaitSeconds(server.pid) - wait0) / wall,
    clientCpu: (c1.user + c1.system) / 1e6 / wall,
  };
}

// ---- checks before measuring -------------------------------------------------------------------

export function postOnce(
  port: number,
  ca: string,
  body: string,
  path = '/mutate',
): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path,
        ca,
        servername: 'localhost',
        agent: false,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            json: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The answer must be what the payload is meant to exercise (a patch), not a cheap skip or denial. */
export async function checkPayload(server: Server, ca: string, p: Payload, requirePatch: boolean): Promise<number> {
  const { status, json } = await postOnce(server.port, ca, p.body);
  const response = json.response as { allowed?: boolean; patch?: string; status?: { message?: string } } | undefined;
  if (status !== 200 || response?.allowed !== true || (requirePatch && typeof response.patch !== 'string')) {
    throw new Error(`${server.name} answered ${p.key} with ${status} ${JSON.stringify(json).slice(0, 400)}`);
  }
  return response.patch ? Buffer.from(response.patch, 'base64').length : 0;
}

export function tlsInfo(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const c = s.getCipher();
      resolve(`${s.getProtocol() ?? '?'} ${c.standardName ?? c.name}`);
      s.end();
    });
    s.on('error', reject);
  });
}

/** Seconds CPU `cpu` spent running tasks (user, nice, system) or stolen by the hypervisor. */
function cpuBusySeconds(cpu: number): number {
  const line = readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`cpu${cpu} `));
  if (!line) return NaN;
  const v = line.trim().split(/\s+/).slice(1).map(Number); // user nice system idle iowait irq softirq steal
  return ((v[0] ?? 0) + (v[1] ?? 0) + (v[2] ?? 0) + (v[7] ?? 0)) / CLK_TCK;
}

/**
 * `cannon`, with `serverWait` replaced by the share of the run that the servers' core (CPU 1) spent
 * on anything but the server: its wait counter reads the main thread only, which says little for
 * a Go process (any thread runs goroutines), and summing every thread's wait counts a process's
 * threads queueing behind each other. Needs pinning (NaN otherwise).
 */
export async function cannonCoreOthers(
  cfg: BenchConfig,
  server: Server,
  body: string,
  seconds: number,
): Promise<Sample> {
  const b0 = cpuBusySeconds(1);
  const c0 = cpuSeconds(server.pid);
  const t0 = performance.now();
  const s = await cannon(cfg, server, body, seconds);
  const others = cpuBusySeconds(1) - b0 - (cpuSeconds(server.pid) - c0);
  s.serverWait = cfg.pin ? Math.max(0, others) / ((performance.now() - t0) / 1000) : NaN;
  return s;
}
