// `npm run bench [-- --quick]`: the built webhook against a floor server, side by side.
//
// Each server runs in its own child process (bench/server.ts) pinned to CPU 1 with `taskset -c 1`
// (every thread of it: event loop, libuv pool, V8 GC helpers), so "on one core" holds literally and
// each has its own peak RSS (VmHWM). This process generates the load with autocannon, pinned to
// CPU 0, over keep-alive HTTPS on 127.0.0.1. See bench/README.md for what each number means.

import { execFileSync, fork, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { benchNamespace } from './context.js';
import { pacedLoad } from './paced.js';
import { CLK_TCK, cpuSeconds, procStatusMiB } from './proc.js';
import { percentile } from './stats.js';
import { legacyService, payloads, podReview, serviceReview, typicalPod, type Payload } from './payloads.js';
import type { ServerReady } from './server.js';
import { SERVER_NODE_FLAGS } from '../src/node-flags.js';

// ---- options ---------------------------------------------------------------------------------

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    connections: { type: 'string' },
    seconds: { type: 'string' },
    rounds: { type: 'string' },
    namespaces: { type: 'string' },
    'no-pin': { type: 'boolean' },
    istiod: { type: 'boolean' },
    'no-istiod': { type: 'boolean' },
    'node-flags': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (args.help) {
  process.stdout.write(`Usage: npm run bench -- [--quick] [--connections N] [--seconds S] [--rounds R] [--namespaces N] [--no-pin]
  --quick          ~30 s instead of ~2.5 min (1 round of 1 s slices)
  --connections N  keep-alive connections per run (default 10)
  --seconds S      length of one measured slice (default 3; quick 1)
  --rounds R       floor/wpgw alternations per payload (default 2; quick 1)
  --namespaces N   the large cache size (default 10000)
  --no-pin         do not pin servers to CPU 1 and the load generator to CPU 0
  --istiod         require the istiod row (fail if test/istio or test/harness is not built)
  --no-istiod      skip the istiod row (by default it runs when both are built)
  --node-flags F   node flags of the wpgw servers (default: src/node-flags.ts, as the image runs
                   them; the floor runs with Node's defaults)
`);
  process.exit(0);
}
const QUICK = args.quick === true;
const CONNECTIONS = Number(args.connections ?? 10);
const SLICE_S = Number(args.seconds ?? (QUICK ? 1 : 3));
const ROUNDS = Number(args.rounds ?? (QUICK ? 1 : 2));
const WARMUP_S = QUICK ? 0.3 : 1;
const FIXED_S = QUICK ? 2 : 5;
const FIXED_RATE = 1000;
const LARGE_NS = Number(args.namespaces ?? 10_000);
const SMALL_NS = 10;
const CACHE_BODIES = 1000;
/** The wpgw servers run with the image's node flags; the floor is any Node webhook, on defaults. */
const WPGW_FLAGS = args['node-flags'] !== undefined ? args['node-flags'].split(' ').filter(Boolean) : [...SERVER_NODE_FLAGS];

const TARGET = { throughputRatio: 0.7, p99Ratio: 2, fixedP99Ms: 5 };

// ---- pinning -----------------------------------------------------------------------------------

const cpus = availableParallelism();
const PIN = !args['no-pin'] && cpus >= 2 && hasTaskset();
function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
if (PIN) execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
// ---- servers -----------------------------------------------------------------------------------

interface Server {
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
const children: ChildProcess[] = [];

function startServer(name: string, certDir: string, mode: string, extra: string[] = []): Promise<Server> {
  const script = join(here, 'server.js');
  const serverArgs = ['--mode', mode, '--cert-dir', certDir, ...extra];
  const nodeFlags = mode === 'floor' ? [] : WPGW_FLAGS;
  // fork() gives the IPC channel; with pinning, `taskset -c 1 node …` execs node in place, so the
  // child keeps the channel's file descriptor and its pid is the server's pid.
  const child = PIN
    ? fork(script, serverArgs, { execPath: 'taskset', execArgv: ['-c', '1', process.execPath, ...nodeFlags], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
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
function runQueueWaitSeconds(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e9;
  } catch {
    return NaN;
  }
}

// ---- measurement -------------------------------------------------------------------------------

interface Sample {
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

interface Stats {
  rps: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  n: number;
  non2xx: number;
  errors: number;
  serverCpu: number;
  /** Server CPU time per answered request, µs: what one core's capacity is made of. */
  cpuPerRequestUs: number;
  serverWait: number;
  clientCpu: number;
}

function summarize(samples: Sample[]): Stats {
  const all = Float64Array.from(samples.flatMap((s) => s.latencies)).sort();
  const seconds = samples.reduce((a, s) => a + s.seconds, 0);
  const requests = samples.reduce((a, s) => a + s.requests, 0);
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
    cpuPerRequestUs: (samples.reduce((a, s) => a + s.serverCpuSeconds, 0) / Math.max(1, requests)) * 1e6,
    serverWait: samples.reduce((a, s) => a + s.serverWait * s.seconds, 0) / seconds,
    clientCpu: samples.reduce((a, s) => a + s.clientCpu * s.seconds, 0) / seconds,
  };
}

type Body = string | string[];

/**
 * One autocannon run. Latencies come from the per-response event (float ms from process.hrtime;
 * autocannon's own histogram keeps whole milliseconds). The first response of each connection is
 * left out: it carries the TLS handshake, which a kept-alive API server connection does not pay.
 */
async function cannon(server: Server, body: Body, seconds: number, overallRate?: number): Promise<Sample> {
  const latencies: number[] = [];
  const seen = new WeakSet<object>();
  const headers = { 'content-type': 'application/json' };
  const path = server.path ?? '/mutate';
  const opts: autocannon.Options = {
    url: `https://127.0.0.1:${server.port}${path}`,
    method: 'POST',
    headers,
    connections: CONNECTIONS,
    duration: seconds,
    timeout: 10,
    // autocannon stops at its first sample tick after `duration`: tick often so runs end on time.
    sampleInt: 100,
    ...(typeof body === 'string' ? { body } : { requests: body.map((b) => ({ method: 'POST' as const, path, headers, body: b })) }),
    ...(overallRate ? { overallRate } : {}),
  };
  const cpu0 = cpuSeconds(server.pid);
  const wait0 = runQueueWaitSeconds(server.pid);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let instance!: autocannon.Instance;
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon(opts, (err: unknown, result: autocannon.Result) => (err ? reject(err as Error) : resolve(result)));
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

const scheduleLag = new Map<string, { p50: number; p99: number }>();

/** The open-loop paced load (bench/paced.ts) with the same bookkeeping as `cannon`. */
async function paced(server: Server, body: string, rate: number, seconds: number, ca: string): Promise<Sample> {
  const cpu0 = cpuSeconds(server.pid);
  const wait0 = runQueueWaitSeconds(server.pid);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await pacedLoad({ port: server.port, ca, body, rate, seconds, connections: CONNECTIONS });
  const lag = Float64Array.from(r.scheduleLag).sort();
  scheduleLag.set(server.name, { p50: percentile(lag, 0.5), p99: percentile(lag, 0.99) });
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

function postOnce(port: number, ca: string, body: string, path = '/mutate'): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, method: 'POST', path, ca, servername: 'localhost', agent: false, headers: { 'content-type': 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The answer must be what the payload is meant to exercise (a patch), not a cheap skip or denial. */
async function checkPayload(server: Server, ca: string, p: Payload, requirePatch: boolean): Promise<number> {
  const { status, json } = await postOnce(server.port, ca, p.body);
  const response = json.response as { allowed?: boolean; patch?: string; status?: { message?: string } } | undefined;
  if (status !== 200 || response?.allowed !== true || (requirePatch && typeof response.patch !== 'string')) {
    throw new Error(`${server.name} answered ${p.key} with ${status} ${JSON.stringify(json).slice(0, 400)}`);
  }
  return response.patch ? Buffer.from(response.patch, 'base64').length : 0;
}

function tlsInfo(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const c = s.getCipher();
      resolve(`${s.getProtocol() ?? '?'} ${c.standardName ?? c.name}`);
      s.end();
    });
    s.on('error', reject);
  });
}

// ---- formatting --------------------------------------------------------------------------------

const f = (n: number, d = 2): string => (Number.isFinite(n) ? n.toFixed(d) : '-');
const ratio = (a: number, b: number): string => f(a / b, 2);
const pass = (ok: boolean): string => (ok ? 'PASS' : 'MISS');
const pct = (n: number): string => `${Math.round(n * 100)}%`;
/** req/s, p50, p99, p99.9, CPU us/req, server CPU, server wait (or '-'), generator CPU: the columns every saturation row has. */
const saturationCells = (s: Stats): string[] => [
  f(s.rps, 0),
  f(s.p50),
  f(s.p99),
  f(s.p999),
  f(s.cpuPerRequestUs, 0),
  pct(s.serverCpu),
  Number.isFinite(s.serverWait) ? pct(s.serverWait) : '-',
  pct(s.clientCpu),
];
/** wpgw's (or a peer's) ratios to the floor: req/s, p50, p99, p99.9, and the one-core capacity ratio. */
const floorRatios = (s: Stats, fl: Stats): string[] => [
  ratio(s.rps, fl.rps),
  ratio(s.p50, fl.p50),
  ratio(s.p99, fl.p99),
  ratio(s.p999, fl.p999),
  f(fl.cpuPerRequestUs / s.cpuPerRequestUs),
];

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  return [line(header), `|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.map(line)].join('\n');
}

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

// ---- peer: istiod's sidecar injector -----------------------------------------------------------
//
// The injector users will compare against: Istio's own (istiod, test/istio, built from the
// istio.io/istio module), serving the chart's sidecar template at POST /inject. istiod needs an API
// server, so this starts the test/harness control plane (pinned to CPU 0 with the generator once
// up: ~5% of a core when idle) and istiod with ISTIO_INJECTOR=1 under `taskset -c 1` (GOMAXPROCS 1),
// then runs the typical pod at saturation against floor, wpgw and istiod in turn. No webhook
// configuration is registered: the bench posts the AdmissionReviews itself, as the API server would.

const repoRoot = join(here, '..', '..');
const HARNESS_COMPONENTS = ['etcd', 'apiserver', 'kcm', 'scheduler', 'kwok'];

interface IstiodPeer {
  server: Server;
  ca: string;
  version: string;
  startSeconds: number;
  stateDir: string;
  stop(keepState: boolean): void;
}

interface PeerRow {
  name: string;
  stats: Stats;
  peakRss: number;
  rss: number;
  patch: string;
}

type PeerResult = { skipped: string } | { rows: PeerRow[]; tls: string; version: string; startSeconds: number; cpuNote: string };

/** Why the istiod row cannot run, or undefined if it can. */
function istiodUnavailable(): string | undefined {
  if (args['no-istiod']) return '--no-istiod';
  const need: Array<[string, string]> = [
    ['test/istio/bin/pilot-discovery', 'test/istio/build.sh'],
    ['test/istio/start.sh', 'a repository checkout'],
    ['test/harness/bin/harness', 'test/harness/build.sh'],
    ['test/harness/bin/kwok', 'test/harness/build.sh'],
  ];
  for (const [file, how] of need) if (!existsSync(join(repoRoot, file))) return `${file} not found (needs ${how})`;
  return undefined;
}

const ISTIOD_SKIP = istiodUnavailable();
if (args.istiod && ISTIOD_SKIP) {
  process.stderr.write(`--istiod: ${ISTIOD_SKIP}\n`);
  process.exit(2);
}

function runScript(what: string, cmd: string, cmdArgs: string[], env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(cmd, cmdArgs, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0) throw new Error(`${what} failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`}):\n${output.split('\n').slice(-30).join('\n')}`);
  return output;
}

function startIstiod(): IstiodPeer {
  const t0 = performance.now();
  const stateDir = mkdtempSync(join(tmpdir(), 'wpgw-bench-istiod-'));
  const up = join(repoRoot, 'test/harness/up.sh');
  const down = join(repoRoot, 'test/harness/down.sh');
  const start = join(repoRoot, 'test/istio/start.sh');
  const stopSh = join(repoRoot, 'test/istio/stop.sh');
  let stopped = false;
  const stop = (keepState: boolean): void => {
    if (stopped) return;
    stopped = true;
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    spawnSync('bash', [stopSh, stateDir], { stdio: 'ignore', env: { ...process.env, ISTIO_STOP_GRACE: '5' }, timeout: 60_000 });
    spawnSync('bash', [down, stateDir], { stdio: 'ignore', timeout: 60_000 });
    if (keepState) log(`  istiod/harness state and logs kept in ${stateDir}`);
    else rmSync(stateDir, { recursive: true, force: true });
  };
  function onSignal(sig: NodeJS.Signals): void {
    log(`${sig}: stopping istiod and the harness …`);
    stop(false);
    process.exit(130);
  }
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    log(`istiod: starting the harness control plane (test/harness/up.sh ${stateDir}) …`);
    // This process is pinned to CPU 0 and children inherit that: start the control plane on every
    // CPU, then move it to CPU 0 so the server core only runs the server under test.
    runScript('test/harness/up.sh', PIN ? 'taskset' : 'bash', PIN ? ['-c', `0-${cpus - 1}`, 'bash', up, stateDir] : [up, stateDir]);
    if (PIN) {
      for (const c of HARNESS_COMPONENTS) {
        const pid = readFileSync(join(stateDir, `${c}.pid`), 'utf8').trim();
        execFileSync('taskset', ['-a', '-p', '-c', '0', pid], { stdio: 'ignore' });
      }
    }
    log('istiod: starting istiod with its sidecar injector (ISTIO_INJECTOR=1 test/istio/start.sh) …');
    const env = { ...process.env, ISTIO_INJECTOR: '1' };
    runScript('test/istio/start.sh', PIN ? 'taskset' : 'bash', PIN ? ['-c', '1', 'bash', start, stateDir] : [start, stateDir], env);
    const ienv = JSON.parse(readFileSync(join(stateDir, 'istio-env.json'), 'utf8')) as Record<string, string>;
    const url = new URL(ienv.ISTIO_INJECT_URL ?? '');
    const pid = Number(readFileSync(ienv.ISTIO_PID_FILE ?? '', 'utf8').trim());
    if (!url.port || !pid) throw new Error(`istio-env.json has no injector URL or pid: ${JSON.stringify(ienv)}`);
    // Every thread on CPU 1 (it was started there; this covers threads of any later re-pinning).
    if (PIN) execFileSync('taskset', ['-a', '-p', '-c', '1', String(pid)], { stdio: 'ignore' });
    let version = '?';
    try {
      version = execFileSync(ienv.ISTIO_PILOT_DISCOVERY ?? '', ['version', '--short'], { encoding: 'utf8' }).replace(/^.*version:\s*/s, '').trim();
    } catch {
      // keep '?'
    }
    return {
      server: { name: 'istiod sidecar injector', pid, port: Number(url.port), path: url.pathname, ready: { port: Number(url.port), mode: 'istiod' } },
      ca: readFileSync(ienv.ISTIO_WEBHOOK_CA ?? '', 'utf8'),
      version,
      startSeconds: (performance.now() - t0) / 1000,
      stateDir,
      stop,
    };
  } catch (e) {
    stop(true);
    const msg = (e as Error).message;
    const why = /^.*(FAILED|ERROR):.*$/m.exec(msg)?.[0] ?? msg.split('\n')[0] ?? '';
    throw new Error(`${why.trim()} (state and logs kept in ${stateDir})\n${msg}`);
  }
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
async function cannonCoreOthers(server: Server, body: string, seconds: number): Promise<Sample> {
  const b0 = cpuBusySeconds(1);
  const c0 = cpuSeconds(server.pid);
  const t0 = performance.now();
  const s = await cannon(server, body, seconds);
  const others = cpuBusySeconds(1) - b0 - (cpuSeconds(server.pid) - c0);
  s.serverWait = PIN ? Math.max(0, others) / ((performance.now() - t0) / 1000) : NaN;
  return s;
}

/**
 * The typical pod at saturation against floor, wpgw and istiod's injector, in turn (order rotated
 * each round), after checking istiod really injects it (allowed, a patch adding istio-proxy).
 */
async function runIstiodPeer(floor: Server, wpgw: Server, ca: string, typical: Payload, wpgwPatch: number): Promise<PeerResult> {
  if (ISTIOD_SKIP) {
    log(`istiod row skipped: ${ISTIOD_SKIP}`);
    return { skipped: ISTIOD_SKIP };
  }
  let peer: IstiodPeer;
  try {
    peer = startIstiod();
  } catch (e) {
    if (args.istiod) throw e;
    log(`istiod row skipped: ${(e as Error).message}`);
    return { skipped: `istiod did not start: ${(e as Error).message.split('\n')[0] ?? ''}` };
  }
  let ok = false;
  try {
    const istiod = peer.server;
    log(`istiod ${peer.version} up in ${f(peer.startSeconds, 1)} s: pid ${istiod.pid}, https://127.0.0.1:${istiod.port}${istiod.path ?? ''}`);
    const { status, json } = await postOnce(istiod.port, peer.ca, typical.body, istiod.path);
    const response = json.response as { allowed?: boolean; patch?: string; uid?: string } | undefined;
    const patch = response?.patch ? Buffer.from(response.patch, 'base64') : Buffer.alloc(0);
    const ops = patch.length ? (JSON.parse(patch.toString('utf8')) as Array<{ op: string; path: string; value?: unknown }>) : [];
    const injectsProxy = ops.some((o) => /^\/spec\/(init)?[cC]ontainers/.test(o.path) && JSON.stringify(o.value ?? '').includes('"name":"istio-proxy"'));
    if (status !== 200 || response?.allowed !== true || !injectsProxy) {
      throw new Error(`istiod did not inject the typical pod: ${status} ${JSON.stringify(json).slice(0, 400)}`);
    }
    const tls = await tlsInfo(istiod.port, peer.ca);
    log('istiod: warming up …');
    await cannon(istiod, typical.body, WARMUP_S * payloads().length);
    const samples = new Map<Server, Sample[]>([
      [floor, []],
      [wpgw, []],
      [istiod, []],
    ]);
    const servers = [floor, wpgw, istiod];
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < servers.length; i++) {
        const server = servers[(i + round) % servers.length]!;
        log(`  typical (with istiod): ${server.name} round ${round + 1}/${ROUNDS}`);
        samples.get(server)!.push(await cannonCoreOthers(server, typical.body, SLICE_S));
      }
    }
    const rows: PeerRow[] = servers.map((s) => ({
      name: s.name,
      stats: summarize(samples.get(s)!),
      peakRss: procStatusMiB(s.pid, 'VmHWM'),
      rss: procStatusMiB(s.pid, 'VmRSS'),
      patch: s === istiod ? `${patch.length} B, ${ops.length} ops` : s === wpgw ? `${wpgwPatch} B` : '',
    }));
    const threads = readdirSync(`/proc/${istiod.pid}/task`).length;
    ok = true;
    return { rows, tls, version: peer.version, startSeconds: peer.startSeconds, cpuNote: `istiod: ${threads} threads, GOMAXPROCS ${PIN ? '1 (started under taskset -c 1)' : 'all CPUs'}` };
  } finally {
    log('istiod: stopping istiod and the harness …');
    peer.stop(!ok);
  }
}

function istiodReport(peer: PeerResult, typical: Payload): string[] {
  const out: string[] = [''];
  if ('skipped' in peer) {
    out.push(`Peer, istiod sidecar injector: skipped (${peer.skipped}).`);
    return out;
  }
  const kb = `${Math.round(Buffer.byteLength(typical.body) / 1024)} KiB`;
  out.push(
    `Peer: Istio's sidecar injector (istiod ${peer.version}, the chart's injection templates, POST /inject), ${typical.label} [${kb}], saturation; floor, wpgw and istiod in turn (${ROUNDS} x ${SLICE_S} s each) while a harness control plane runs for istiod${PIN ? ' (pinned to CPU 0)' : ''}`,
  );
  const fl = peer.rows[0]!.stats;
  out.push(
    table(
      ['server', 'req/s', 'p50', 'p99', 'p99.9', 'CPU us/req', 'srv CPU', 'core others', 'gen CPU', 'peak RSS', 'RSS now', 'patch', 'x req/s', 'x p50', 'x p99', 'x p99.9', 'x capacity'],
      peer.rows.map(({ name, stats: s, peakRss, rss, patch }, i) => [
        name,
        ...saturationCells(s),
        f(peakRss, 1),
        f(rss, 1),
        patch,
        ...(i === 0 ? ['', '', '', '', ''] : floorRatios(s, fl)),
      ]),
    ),
  );
  for (const r of peer.rows) if (r.stats.non2xx + r.stats.errors > 0) out.push(`  note: ${r.name}: non-2xx ${r.stats.non2xx}, errors ${r.stats.errors}`);
  out.push(
    `(x …: server / floor, measured in the same phase. istiod answers with the full sidecar injection (istio-proxy, its volumes, probe rewrites); wpgw with its gateway redirect.\n` +
      ` RSS in MiB (VmHWM / VmRSS): floor's and wpgw's peaks include the large-pod runs above; istiod's is the whole control plane process (xDS server,\n` +
      ` CA, informers on a 3-node cluster), not the injector alone. core others: CPU time the servers'\n` +
      ` core spent on other processes (and hypervisor steal) over wall time, from /proc/stat; should be ~0%. TLS: istiod ${peer.tls}. ${peer.cpuNote}.\n` +
      ` Harness + istiod start: ${f(peer.startSeconds, 1)} s.)`,
  );
  return out;
}

// ---- main --------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = performance.now();
  const loadBefore = loadavg()[0] ?? 0;
  const certDir = mkdtempSync(join(tmpdir(), 'wpgw-bench-'));
  try {
    log(`starting servers (certificates in ${certDir}) …`);
    // The webhook first: in dev mode it generates the CA and leaf the others then reuse.
    const wpgw = await startServer('wpgw', certDir, 'wpgw');
    const [floor, small, large] = await Promise.all([
      startServer('floor', certDir, 'floor'),
      startServer(`cache ${SMALL_NS} ns`, certDir, 'cached', ['--namespaces', String(SMALL_NS)]),
      startServer(`cache ${LARGE_NS} ns`, certDir, 'cached', ['--namespaces', String(LARGE_NS)]),
    ]);
    const ca = readFileSync(join(certDir, 'ca.crt'), 'utf8');
    const [tlsW, tlsF] = await Promise.all([tlsInfo(wpgw.port, ca), tlsInfo(floor.port, ca)]);

    const list = payloads();
    const patchBytes = new Map<string, number>();
    for (const p of list) {
      patchBytes.set(p.key, await checkPayload(wpgw, ca, p, p.expect === 'patched'));
      await checkPayload(floor, ca, p, false);
    }

    // Warm both servers' JIT on every payload (cycled in one run) before anything is measured.
    log('warming up …');
    for (const server of [floor, wpgw]) await cannon(server, list.flatMap((p) => p.bodies ?? [p.body]), WARMUP_S * list.length);

    // Saturation: floor and wpgw alternate (order flipped each round) so drift hits both alike.
    const results = new Map<string, { floor: Sample[]; wpgw: Sample[] }>();
    for (const p of list) {
      const r = { floor: [] as Sample[], wpgw: [] as Sample[] };
      for (let round = 0; round < ROUNDS; round++) {
        const order: Array<[Server, Sample[]]> = round % 2 === 0 ? [[floor, r.floor], [wpgw, r.wpgw]] : [[wpgw, r.wpgw], [floor, r.floor]];
        for (const [server, into] of order) {
          log(`  ${p.key}: ${server.name} round ${round + 1}/${ROUNDS}`);
          into.push(await cannon(server, p.bodies ?? p.body, SLICE_S));
        }
      }
      results.set(p.key, r);
    }

    // Fixed rate, typical pod.
    const typical = list[0]!;
    log(`fixed rate ${FIXED_RATE}/s …`);
    const fixedCannonW = summarize([await cannon(wpgw, typical.body, FIXED_S, FIXED_RATE)]);
    const fixedCannonF = summarize([await cannon(floor, typical.body, FIXED_S, FIXED_RATE)]);
    const fixedPacedW = summarize([await paced(wpgw, typical.body, FIXED_RATE, FIXED_S, ca)]);
    const fixedPacedF = summarize([await paced(floor, typical.body, FIXED_RATE, FIXED_S, ca)]);

    // Cache size: the production CacheAdmissionContext with 10 vs LARGE_NS namespaces; the same
    // request mix spread over up to CACHE_BODIES namespaces.
    log('cache size …');
    const spread = (n: number, make: (ns: string) => string): string[] =>
      Array.from({ length: CACHE_BODIES }, (_, j) => make(benchNamespace(n <= CACHE_BODIES ? j % n : (j * 7919) % n)));
    const cacheRuns: Array<{ kind: string; size: number; server: Server; stats: Stats }> = [];
    for (const [kind, make] of [
      ['typical pod', (ns: string) => podReview(typicalPod(ns), ns)],
      ['Service re-point', (ns: string) => serviceReview(legacyService(ns), ns)],
    ] as const) {
      for (const [size, server] of [[SMALL_NS, small], [LARGE_NS, large]] as const) {
        const bodies = spread(size, make);
        const check = await postOnce(server.port, ca, bodies[bodies.length - 1]!);
        if ((check.json.response as { patch?: unknown } | undefined)?.patch === undefined) {
          throw new Error(`${server.name} did not patch the ${kind}: ${JSON.stringify(check.json).slice(0, 300)}`);
        }
        await cannon(server, bodies, WARMUP_S);
        cacheRuns.push({ kind, size, server, stats: summarize([await cannon(server, bodies, SLICE_S * ROUNDS)]) });
      }
    }

    // Peer: istiod's sidecar injector on the typical pod (starts and stops its own control plane).
    const istiodPeer = await runIstiodPeer(floor, wpgw, ca, typical, patchBytes.get(typical.key) ?? 0);

    // ---- report --------------------------------------------------------------------------------
    const totalS = (performance.now() - started) / 1000;
    const out: string[] = [];
    out.push('');
    out.push(`wpgw webhook benchmark — node ${process.version}, ${cpus} CPUs, ${PIN ? 'servers pinned to CPU 1 (taskset -c 1), load generator to CPU 0' : 'no CPU pinning'}`);
    out.push(`node flags: wpgw servers [${WPGW_FLAGS.join(' ')}], floor [] (Node's defaults)`);
    out.push(
      `autocannon, ${CONNECTIONS} keep-alive HTTPS connections to 127.0.0.1, ${ROUNDS} x ${SLICE_S} s per server per payload (alternating), after a ${WARMUP_S * list.length} s warm-up of each server on all payloads; latency in ms (first response per connection excluded)`,
    );
    out.push(`TLS: wpgw ${tlsW}; floor ${tlsF}`);
    const loadAfter = loadavg()[0] ?? 0;
    out.push(`Machine load average (1 min): ${f(loadBefore)} at start, ${f(loadAfter)} at end, on ${cpus} CPUs`);
    if (Math.max(loadBefore, loadAfter) > cpus * 0.75) {
      out.push(`WARNING: other processes were competing for the CPUs; absolute numbers are low and noisy (the wpgw/floor ratios, measured alternately, hold up better).`);
    }
    out.push('');
    out.push('Saturation (closed loop): throughput and latency, wpgw vs floor');
    const rows: string[][] = [];
    const misses: string[] = [];
    for (const p of list) {
      const r = results.get(p.key)!;
      const fl = summarize(r.floor);
      const w = summarize(r.wpgw);
      const tOk = w.rps / fl.rps >= TARGET.throughputRatio;
      const lOk = w.p99 / fl.p99 <= TARGET.p99Ratio;
      if (!tOk) misses.push(`${p.key} throughput`);
      if (!lOk) misses.push(`${p.key} p99`);
      const kb = `${Math.round(Buffer.byteLength(p.body) / 1024)} KiB`;
      rows.push([`${p.label} [${kb}]`, 'floor', ...saturationCells(fl), '', '', '', '', '', '', '']);
      rows.push([`  patch ${patchBytes.get(p.key)} B`, 'wpgw', ...saturationCells(w), ...floorRatios(w, fl), pass(tOk), pass(lOk)]);
      if (fl.non2xx + fl.errors + w.non2xx + w.errors > 0) {
        out.push(`  note: ${p.key}: non-2xx floor ${fl.non2xx} wpgw ${w.non2xx}, errors floor ${fl.errors} wpgw ${w.errors}`);
      }
    }
    out.push(
      table(
        ['payload', 'server', 'req/s', 'p50', 'p99', 'p99.9', 'CPU us/req', 'srv CPU', 'srv wait', 'gen CPU', 'x req/s', 'x p50', 'x p99', 'x p99.9', 'x capacity', 'req/s>=0.70x', 'p99<=2x'],
        rows,
      ),
    );
    out.push(
      '(x …: wpgw / floor. CPU us/req: server CPU time per answer. x capacity: floor CPU/req ÷ wpgw CPU/req, the one-core throughput ratio\n' +
        ' with scheduling noise removed. srv CPU / gen CPU: CPU time of the server / of the load generator over wall time; 100% = one core.\n' +
        ' srv wait: time the server was ready to run but its core was busy with another process (from /proc/<pid>/schedstat); should be ~0%.)',
    );
    out.push(...istiodReport(istiodPeer, typical));

    out.push('');
    out.push(`Fixed rate ${FIXED_RATE} admissions/s, typical pod, ${FIXED_S} s (target: wpgw p99 < ${TARGET.fixedP99Ms} ms)`);
    const fixedRows = [
      ['autocannon overallRate (per-second bursts)', 'floor', fixedCannonF],
      ['', 'wpgw', fixedCannonW],
      ['paced open loop (1 request/ms, timer-driven)', 'floor', fixedPacedF],
      ['', 'wpgw', fixedPacedW],
    ] as const;
    out.push(
      table(
        ['load', 'server', 'req/s', 'p50', 'p99', 'p99.9', 'max', 'CPU us/req', 'srv CPU', 'srv wait', 'gen CPU', 'errors', 'p99<5ms'],
        fixedRows.map(([load, name, s]) => [
          load,
          name,
          f(s.rps, 0),
          f(s.p50),
          f(s.p99),
          f(s.p999),
          f(s.max),
          f(s.cpuPerRequestUs, 0),
          pct(s.serverCpu),
          pct(s.serverWait),
          pct(s.clientCpu),
          String(s.errors + s.non2xx),
          name === 'wpgw' ? pass(s.p99 < TARGET.fixedP99Ms) : '',
        ]),
      ),
    );
    const lagF = scheduleLag.get(floor.name);
    const lagW = scheduleLag.get(wpgw.name);
    out.push(
      `(paced: latency from when the generator queued each request; its schedule lag behind the ideal 1 ms grid, p50/p99: floor run ${f(lagF?.p50 ?? NaN)}/${f(lagF?.p99 ?? NaN)} ms, wpgw run ${f(lagW?.p50 ?? NaN)}/${f(lagW?.p99 ?? NaN)} ms)`,
    );
    if (fixedCannonW.p99 >= TARGET.fixedP99Ms) misses.push('fixed-rate p99 (autocannon)');
    if (fixedPacedW.p99 >= TARGET.fixedP99Ms) misses.push('fixed-rate p99 (paced)');

    out.push('');
    out.push(
      `Cache size: production CacheAdmissionContext over a ClusterCache of N namespaces (15 objects each: 4 Services, 3 Deployments, 3 ReplicaSets, 4 managed pods, the Namespace), ${CACHE_BODIES} distinct requests spread over the namespaces, saturation`,
    );
    const cacheRows: string[][] = [];
    for (const kind of ['typical pod', 'Service re-point']) {
      const smallR = cacheRuns.find((c) => c.kind === kind && c.size === SMALL_NS)!;
      const largeR = cacheRuns.find((c) => c.kind === kind && c.size === LARGE_NS)!;
      for (const c of [smallR, largeR]) {
        cacheRows.push([
          c === smallR ? kind : '',
          `${c.size} ns / ${c.server.ready.objects} obj`,
          f(c.stats.rps, 0),
          f(c.stats.p50),
          f(c.stats.p99),
          f(c.stats.p999),
          f(c.stats.cpuPerRequestUs, 0),
          pct(c.stats.serverWait),
          c === largeR ? ratio(largeR.stats.rps, smallR.stats.rps) : '',
          c === largeR ? ratio(largeR.stats.p99, smallR.stats.p99) : '',
          c === largeR ? ratio(largeR.stats.cpuPerRequestUs, smallR.stats.cpuPerRequestUs) : '',
        ]);
      }
    }
    out.push(table(['admission', 'cache', 'req/s', 'p50', 'p99', 'p99.9', 'CPU us/req', 'srv wait', 'x req/s', 'x p99', 'x CPU/req'], cacheRows));
    out.push(`(x …: ${LARGE_NS} ns / ${SMALL_NS} ns; flat means close to 1.00. Cache fill: ${small.ready.fillMs} ms and ${large.ready.fillMs} ms.)`);

    out.push('');
    out.push('Peak RSS (VmHWM of each server process, MiB)');
    out.push(
      table(
        ['server', 'peak RSS', 'RSS now'],
        [wpgw, floor, small, large].map((s) => [s.name, f(procStatusMiB(s.pid, 'VmHWM'), 1), f(procStatusMiB(s.pid, 'VmRSS'), 1)]),
      ),
    );
    out.push('');
    out.push(`Targets: throughput >= 70% of floor, p99 <= 2x floor (every payload), p99 < 5 ms at 1,000/s: ${misses.length === 0 ? 'all PASS' : `MISS: ${misses.join(', ')}`}`);
    out.push(`Total bench time ${f(totalS, 0)} s.`);
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    for (const c of children) {
      if (c.connected) c.disconnect();
      if (c.exitCode === null) c.kill('SIGTERM');
    }
    rmSync(certDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  process.exitCode = 1;
});
