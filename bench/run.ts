// `npm run bench [-- --quick]`: the built webhook against a floor server, side by side.
//
// Each server runs in its own child process (bench/server.ts) pinned to CPU 1 with `taskset -c 1`
// (every thread of it: event loop, libuv pool, V8 GC helpers), so "on one core" holds literally and
// each has its own peak RSS (VmHWM). This process generates the load with autocannon, pinned to
// CPU 0, over keep-alive HTTPS on 127.0.0.1. See bench/README.md for what each number means.

import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { benchNamespace } from './context.js';
import { pacedLoad } from './paced.js';
import { legacyService, payloads, podReview, serviceReview, typicalPod, type Payload } from './payloads.js';
import type { ServerReady } from './server.js';

// ---- options ---------------------------------------------------------------------------------

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    connections: { type: 'string' },
    seconds: { type: 'string' },
    rounds: { type: 'string' },
    namespaces: { type: 'string' },
    'no-pin': { type: 'boolean' },
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
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

// ---- servers -----------------------------------------------------------------------------------

interface Server {
  name: string;
  child: ChildProcess;
  pid: number;
  port: number;
  ready: ServerReady;
}

const here = dirname(fileURLToPath(import.meta.url));
const children: ChildProcess[] = [];

function startServer(name: string, certDir: string, mode: string, extra: string[] = []): Promise<Server> {
  const script = join(here, 'server.js');
  const serverArgs = ['--mode', mode, '--cert-dir', certDir, ...extra];
  // fork() gives the IPC channel; with pinning, `taskset -c 1 node …` execs node in place, so the
  // child keeps the channel's file descriptor and its pid is the server's pid.
  const child = PIN
    ? fork(script, serverArgs, { execPath: 'taskset', execArgv: ['-c', '1', process.execPath], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
    : fork(script, serverArgs, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
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

function procStatus(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime
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

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
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
  const opts: autocannon.Options = {
    url: `https://127.0.0.1:${server.port}/mutate`,
    method: 'POST',
    headers,
    connections: CONNECTIONS,
    duration: seconds,
    timeout: 10,
    // autocannon stops at its first sample tick after `duration`: tick often so runs end on time.
    sampleInt: 100,
    ...(typeof body === 'string' ? { body } : { requests: body.map((b) => ({ method: 'POST' as const, path: '/mutate', headers, body: b })) }),
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

function postOnce(port: number, ca: string, body: string): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, method: 'POST', path: '/mutate', ca, servername: 'localhost', agent: false, headers: { 'content-type': 'application/json' } },
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

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  return [line(header), `|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.map(line)].join('\n');
}

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
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
    for (const server of [floor, wpgw]) await cannon(server, list.map((p) => p.body), WARMUP_S * list.length);

    // Saturation: floor and wpgw alternate (order flipped each round) so drift hits both alike.
    const results = new Map<string, { floor: Sample[]; wpgw: Sample[] }>();
    for (const p of list) {
      const r = { floor: [] as Sample[], wpgw: [] as Sample[] };
      for (let round = 0; round < ROUNDS; round++) {
        const order: Array<[Server, Sample[]]> = round % 2 === 0 ? [[floor, r.floor], [wpgw, r.wpgw]] : [[wpgw, r.wpgw], [floor, r.floor]];
        for (const [server, into] of order) {
          log(`  ${p.key}: ${server.name} round ${round + 1}/${ROUNDS}`);
          into.push(await cannon(server, p.body, SLICE_S));
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

    // ---- report --------------------------------------------------------------------------------
    const totalS = (performance.now() - started) / 1000;
    const out: string[] = [];
    out.push('');
    out.push(`wpgw webhook benchmark — node ${process.version}, ${cpus} CPUs, ${PIN ? 'servers pinned to CPU 1 (taskset -c 1), load generator to CPU 0' : 'no CPU pinning'}`);
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
      const capacity = fl.cpuPerRequestUs / w.cpuPerRequestUs;
      rows.push([`${p.label} [${kb}]`, 'floor', f(fl.rps, 0), f(fl.p50), f(fl.p99), f(fl.p999), f(fl.cpuPerRequestUs, 0), pct(fl.serverCpu), pct(fl.serverWait), pct(fl.clientCpu), '', '', '', '', '', '', '']);
      rows.push([
        `  patch ${patchBytes.get(p.key)} B`,
        'wpgw',
        f(w.rps, 0),
        f(w.p50),
        f(w.p99),
        f(w.p999),
        f(w.cpuPerRequestUs, 0),
        pct(w.serverCpu),
        pct(w.serverWait),
        pct(w.clientCpu),
        ratio(w.rps, fl.rps),
        ratio(w.p50, fl.p50),
        ratio(w.p99, fl.p99),
        ratio(w.p999, fl.p999),
        f(capacity),
        pass(tOk),
        pass(lOk),
      ]);
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
        [wpgw, floor, small, large].map((s) => [s.name, f(procStatus(s.pid, 'VmHWM'), 1), f(procStatus(s.pid, 'VmRSS'), 1)]),
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
