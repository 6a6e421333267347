// The webhook benchmark's peer row (`npm run bench`, bench/run.ts).
//
// The injector users will compare against: Istio's own (istiod, test/istio, built from the
// istio.io/istio module), serving the chart's sidecar template at POST /inject. istiod needs an API
// server, so this starts the test/harness control plane (pinned to CPU 0 with the generator once
// up: ~5% of a core when idle) and istiod with ISTIO_INJECTOR=1 under `taskset -c 1` (GOMAXPROCS 1),
// then runs the typical pod at saturation against floor, wpgw and istiod in turn. No webhook
// configuration is registered: the bench posts the AdmissionReviews itself, as the API server would.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { procStatusMiB } from '../test/lib/proc.js';
import {
  cannon,
  cannonCoreOthers,
  log,
  postOnce,
  summarize,
  tlsInfo,
  type Sample,
  type Server,
  type Stats,
} from './measure.js';
import { payloads, type Payload } from './payloads.js';
import { f } from './report.js';
import type { BenchConfig } from './run-options.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const HARNESS_COMPONENTS = ['etcd', 'apiserver', 'kcm', 'scheduler', 'kwok'];

export interface IstiodPeer {
  server: Server;
  ca: string;
  version: string;
  startSeconds: number;
  stateDir: string;
  stop(keepState: boolean): void;
}

export interface PeerRow {
  name: string;
  stats: Stats;
  peakRss: number;
  rss: number;
  patch: string;
}

export type PeerResult =
  { skipped: string } | { rows: PeerRow[]; tls: string; version: string; startSeconds: number; cpuNote: string };

/** Why the istiod row cannot run, or undefined if it can. */
export function istiodUnavailable(cfg: BenchConfig): string | undefined {
  if (cfg.istiod === 'skip') return '--no-istiod';
  const need: Array<[string, string]> = [
    ['test/istio/bin/pilot-discovery', 'test/istio/build.sh'],
    ['test/istio/start.sh', 'a repository checkout'],
    ['test/harness/bin/harness', 'test/harness/build.sh'],
    ['test/harness/bin/kwok', 'test/harness/build.sh'],
  ];
  for (const [file, how] of need) if (!existsSync(join(repoRoot, file))) return `${file} not found (needs ${how})`;
  return undefined;
}

function runScript(what: string, cmd: string, cmdArgs: string[], env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(cmd, cmdArgs, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0)
    throw new Error(
      `${what} failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`}):\n${output.split('\n').slice(-30).join('\n')}`,
    );
  return output;
}

function startIstiod(cfg: BenchConfig): IstiodPeer {
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
    spawnSync('bash', [stopSh, stateDir], {
      stdio: 'ignore',
      env: { ...process.env, ISTIO_STOP_GRACE: '5' },
      timeout: 60_000,
    });
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
    runScript(
      'test/harness/up.sh',
      cfg.pin ? 'taskset' : 'bash',
      cfg.pin ? ['-c', `0-${cfg.cpus - 1}`, 'bash', up, stateDir] : [up, stateDir],
    );
    if (cfg.pin) {
      for (const c of HARNESS_COMPONENTS) {
        const pid = readFileSync(join(stateDir, `${c}.pid`), 'utf8').trim();
        execFileSync('taskset', ['-a', '-p', '-c', '0', pid], { stdio: 'ignore' });
      }
    }
    log('istiod: starting istiod with its sidecar injector (ISTIO_INJECTOR=1 test/istio/start.sh) …');
    const env = { ...process.env, ISTIO_INJECTOR: '1' };
    runScript(
      'test/istio/start.sh',
      cfg.pin ? 'taskset' : 'bash',
      cfg.pin ? ['-c', '1', 'bash', start, stateDir] : [start, stateDir],
      env,
    );
    const ienv = JSON.parse(readFileSync(join(stateDir, 'istio-env.json'), 'utf8')) as Record<string, string>;
    const url = new URL(ienv.ISTIO_INJECT_URL ?? '');
    const pid = Number(readFileSync(ienv.ISTIO_PID_FILE ?? '', 'utf8').trim());
    if (!url.port || !pid) throw new Error(`istio-env.json has no injector URL or pid: ${JSON.stringify(ienv)}`);
    // Every thread on CPU 1 (it was started there; this covers threads of any later re-pinning).
    if (cfg.pin) execFileSync('taskset', ['-a', '-p', '-c', '1', String(pid)], { stdio: 'ignore' });
    let version = '?';
    try {
      version = execFileSync(ienv.ISTIO_PILOT_DISCOVERY ?? '', ['version', '--short'], { encoding: 'utf8' })
        .replace(/^.*version:\s*/s, '')
        .trim();
    } catch {
      // keep '?'
    }
    return {
      server: {
        name: 'istiod sidecar injector',
        pid,
        port: Number(url.port),
        path: url.pathname,
        ready: { port: Number(url.port), mode: 'istiod' },
      },
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

/**
 * The typical pod at saturation against floor, wpgw and istiod's injector, in turn (order rotated
 * each round), after checking istiod really injects it (allowed, a patch adding istio-proxy).
 */
export async function runIstiodPeer(
  cfg: BenchConfig,
  skip: string | undefined,
  floor: Server,
  wpgw: Server,
  ca: string,
  typical: Payload,
  wpgwPatch: number,
): Promise<PeerResult> {
  if (skip) {
    log(`istiod row skipped: ${skip}`);
    return { skipped: skip };
  }
  let peer: IstiodPeer;
  try {
    peer = startIstiod(cfg);
  } catch (e) {
    if (cfg.istiod === 'require') throw e;
    log(`istiod row skipped: ${(e as Error).message}`);
    return { skipped: `istiod did not start: ${(e as Error).message.split('\n')[0] ?? ''}` };
  }
  let ok = false;
  try {
    const istiod = peer.server;
    log(
      `istiod ${peer.version} up in ${f(peer.startSeconds, 1)} s: pid ${istiod.pid}, https://127.0.0.1:${istiod.port}${istiod.path ?? ''}`,
    );
    const { status, json } = await postOnce(istiod.port, peer.ca, typical.body, istiod.path);
    const response = json.response as { allowed?: boolean; patch?: string; uid?: string } | undefined;
    const patch = response?.patch ? Buffer.from(response.patch, 'base64') : Buffer.alloc(0);
    const ops = patch.length
      ? (JSON.parse(patch.toString('utf8')) as Array<{ op: string; path: string; value?: unknown }>)
      : [];
    const injectsProxy = ops.some(
      (o) =>
        /^\/spec\/(init)?[cC]ontainers/.test(o.path) && JSON.stringify(o.value ?? '').includes('"name":"istio-proxy"'),
    );
    if (status !== 200 || response?.allowed !== true || !injectsProxy) {
      throw new Error(`istiod did not inject the typical pod: ${status} ${JSON.stringify(json).slice(0, 400)}`);
    }
    const tls = await tlsInfo(istiod.port, peer.ca);
    log('istiod: warming up …');
    await cannon(cfg, istiod, typical.body, cfg.warmupS * payloads().length);
    const samples = new Map<Server, Sample[]>([
      [floor, []],
      [wpgw, []],
      [istiod, []],
    ]);
    const servers = [floor, wpgw, istiod];
    for (let round = 0; round < cfg.rounds; round++) {
      for (let i = 0; i < servers.length; i++) {
        const server = servers[(i + round) % servers.length]!;
        log(`  typical (with istiod): ${server.name} round ${round + 1}/${cfg.rounds}`);
        samples.get(server)!.push(await cannonCoreOthers(cfg, server, typical.body, cfg.sliceS));
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
    return {
      rows,
      tls,
      version: peer.version,
      startSeconds: peer.startSeconds,
      cpuNote: `istiod: ${threads} threads, GOMAXPROCS ${cfg.pin ? '1 (started under taskset -c 1)' : 'all CPUs'}`,
    };
  } finally {
    log('istiod: stopping istiod and the harness …');
    peer.stop(!ok);
  }
}
