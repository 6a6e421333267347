// `npm run bench [-- --quick]`: the built webhook against a floor server, side by side.
//
// Each server runs in its own child process (bench/server.ts) pinned to CPU 1 with `taskset -c 1`
// (every thread of it: event loop, libuv pool, V8 GC helpers), so "on one core" holds literally and
// each has its own peak RSS (VmHWM). This process generates the load with autocannon, pinned to
// CPU 0, over keep-alive HTTPS on 127.0.0.1. See bench/README.md for what each number means.
// This file is the orchestration: options (run-options.ts), measurement (measure.ts), the istiod
// peer (istiod-peer.ts) and the report (report.ts) are their own modules; nothing runs on import.

import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { procStatusMiB } from '../test/lib/proc.js';
import { benchNamespace } from './context.js';
import { istiodUnavailable, runIstiodPeer } from './istiod-peer.js';
import {
  alternate,
  cannon,
  checkPayload,
  log,
  paced,
  postOnce,
  startServer,
  summarize,
  tlsInfo,
  type Sample,
  type ScheduleLag,
  type Server,
  type Stats,
} from './measure.js';
import { legacyService, payloads, podReview, serviceReview, typicalPod } from './payloads.js';
import { type CacheRun, formatReport } from './report.js';
import { parseBenchArgs, USAGE, type BenchConfig } from './run-options.js';

async function main(cfg: BenchConfig): Promise<void> {
  const children: ChildProcess[] = [];
  const scheduleLag: ScheduleLag = new Map();
  const istiodSkip = istiodUnavailable(cfg);
  if (cfg.istiod === 'require' && istiodSkip) {
    process.stderr.write(`--istiod: ${istiodSkip}\n`);
    process.exitCode = 2;
    return;
  }
  // The load generator on CPU 0 (the servers go to CPU 1).
  if (cfg.pin) execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
  const started = performance.now();
  const loadBefore = loadavg()[0] ?? 0;
  const certDir = mkdtempSync(join(tmpdir(), 'wpgw-bench-'));
  try {
    log(`starting servers (certificates in ${certDir}) …`);
    // The webhook first: in dev mode it generates the CA and leaf the others then reuse.
    const wpgw = await startServer(cfg, children, 'wpgw', certDir, 'wpgw');
    const [floor, small, large] = await Promise.all([
      startServer(cfg, children, 'floor', certDir, 'floor'),
      startServer(cfg, children, `cache ${cfg.smallNs} ns`, certDir, 'cached', ['--namespaces', String(cfg.smallNs)]),
      startServer(cfg, children, `cache ${cfg.largeNs} ns`, certDir, 'cached', ['--namespaces', String(cfg.largeNs)]),
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
    for (const server of [floor, wpgw])
      await cannon(
        cfg,
        server,
        list.flatMap((p) => p.bodies ?? [p.body]),
        cfg.warmupS * list.length,
      );

    // Saturation: floor and wpgw alternate (order flipped each round) so drift hits both alike.
    const results = new Map<string, { floor: Sample[]; wpgw: Sample[] }>();
    for (const p of list) {
      const body = p.bodies ?? p.body;
      const r = await alternate(
        cfg.rounds,
        { name: floor.name, run: () => cannon(cfg, floor, body, cfg.sliceS) },
        { name: wpgw.name, run: () => cannon(cfg, wpgw, body, cfg.sliceS) },
        p.key,
      );
      results.set(p.key, { floor: r.a, wpgw: r.b });
    }

    // Fixed rate, typical pod.
    const typical = list[0]!;
    log(`fixed rate ${cfg.fixedRate}/s …`);
    const fixedCannonW = summarize([await cannon(cfg, wpgw, typical.body, cfg.fixedS, cfg.fixedRate)]);
    const fixedCannonF = summarize([await cannon(cfg, floor, typical.body, cfg.fixedS, cfg.fixedRate)]);
    const fixedPacedW = summarize([await paced(cfg, wpgw, typical.body, cfg.fixedRate, cfg.fixedS, ca, scheduleLag)]);
    const fixedPacedF = summarize([await paced(cfg, floor, typical.body, cfg.fixedRate, cfg.fixedS, ca, scheduleLag)]);

    // Cache size: the production CacheAdmissionContext with 10 vs cfg.largeNs namespaces. Both get
    // the same requests over the small cache's namespaces (what cluster size alone costs); the large
    // one also gets them spread over cfg.cacheBodies namespaces (what many busy namespaces cost).
    // Each comparison alternates its two sides in rounds and is judged per round, as capacity is.
    log('cache size …');
    // Request j's namespace in a cache of n (7919 is prime: distinct namespaces up to n).
    const nsOf = (n: number, j: number): number => (n <= cfg.cacheBodies ? j % n : (j * 7919) % n);
    const spread = (n: number, make: (ns: string) => string): string[] =>
      Array.from({ length: cfg.cacheBodies }, (_, j) => make(benchNamespace(nsOf(n, j))));
    const wideNs = new Set(Array.from({ length: cfg.cacheBodies }, (_, j) => nsOf(cfg.largeNs, j))).size;
    const slices = (server: Server, bodies: string[]) => ({
      name: server.name,
      run: () => cannon(cfg, server, bodies, cfg.sliceS),
    });
    const cacheRuns: CacheRun[] = [];
    for (const [kind, make] of [
      ['typical pod', (ns: string) => podReview(typicalPod(ns), ns)],
      ['Service re-point', (ns: string) => serviceReview(legacyService(ns), ns)],
    ] as const) {
      const same = spread(cfg.smallNs, make);
      const wide = spread(cfg.largeNs, make);
      for (const [server, bodies] of [
        [small, same],
        [large, same],
        [large, wide],
      ] as const) {
        const check = await postOnce(server.port, ca, bodies[bodies.length - 1]!);
        if ((check.json.response as { patch?: unknown } | undefined)?.patch === undefined) {
          throw new Error(`${server.name} did not patch the ${kind}: ${JSON.stringify(check.json).slice(0, 300)}`);
        }
        await cannon(cfg, server, bodies, cfg.warmupS);
      }
      const size = await alternate(cfg.rounds, slices(small, same), slices(large, same), `${kind}, cluster size`);
      const busy = await alternate(cfg.rounds, slices(large, same), slices(large, wide), `${kind}, busy namespaces`);
      cacheRuns.push({
        kind,
        small: summarize(size.a),
        large: summarize(size.b),
        largeSame: summarize(busy.a),
        largeWide: summarize(busy.b),
        wideNs,
      });
    }

    // Peer: istiod's sidecar injector on the typical pod (starts and stops its own control plane).
    const istiodPeer = await runIstiodPeer(cfg, istiodSkip, floor, wpgw, ca, typical, patchBytes.get(typical.key) ?? 0);

    const rss = [wpgw, floor, small, large].map((s) => ({
      name: s.name,
      peak: procStatusMiB(s.pid, 'VmHWM'),
      now: procStatusMiB(s.pid, 'VmRSS'),
    }));
    const report = formatReport(cfg, {
      totalS: (performance.now() - started) / 1000,
      loadBefore,
      loadAfter: loadavg()[0] ?? 0,
      tlsW,
      tlsF,
      list,
      patchBytes,
      results,
      typical,
      istiodPeer,
      fixedCannonW,
      fixedCannonF,
      fixedPacedW,
      fixedPacedF,
      scheduleLag,
      cacheRuns,
      servers: { wpgw, floor, small, large },
      rss,
    });
    process.stdout.write(report);
  } catch (err) {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    throw err;
  } finally {
    for (const c of children) {
      if (c.connected) c.disconnect();
      if (c.exitCode === null) c.kill('SIGTERM');
    }
    rmSync(certDir, { recursive: true, force: true });
  }
}

function run(): void {
  const cfg = parseBenchArgs(process.argv.slice(2));
  if (cfg === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  main(cfg).catch((err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  });
}

// Only as the program (node dist/bench/run.js), never when imported.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) run();
