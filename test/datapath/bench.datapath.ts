// `npm run bench:datapath`: what the wpgw hop costs (issue 10), measured side by side in one run on
// the data-path stack (mesh-stack.ts: real istiod, pilot-agent + upstream Envoy, kube-proxy, the
// real webhook and controller, the pod runner), same request, same machine:
//   (a) direct: sales/client's namespace -> the Windows app's pod IP (no proxy)
//   (b) mesh baseline: sales/client -> its sidecar -> orders' sidecar (mTLS) -> orders
//   (c) sales/client -> its sidecar -> wpgw (mTLS) -> the Windows app (shop/legacy)
//   (d) the Windows app -> orders.sales:9080 (hosts file, ClusterIP, kube-proxy) -> wpgw ->
//       orders' sidecar (mTLS) -> orders
// Capture mode is NONE here (no iptables in the pods): the mesh client dials its sidecar's outbound
// listeners on 127.0.0.1 explicitly, as flows 2 and 3 of datapath.test.ts do. The "Windows app"
// is a Linux process (apps/echo.mjs) on the windows-1 kwok node. Load: vegeta inside the calling
// pod's network namespace (loadgen.ts), open loop at fixed rates with latency from each request's
// intended send time, then closed loop for the saturation rate. A benchmark, not a timed test:
// it prints the numbers and PASS/MISS and fails only when a path does not work.
// Settings (environment): BENCH_DATAPATH_ROUNDS (3), BENCH_DATAPATH_SECONDS (5 per rate, plus
// 2 s warm-up), BENCH_DATAPATH_RATES (200,1000), BENCH_DATAPATH_WORKERS (8, saturation),
// BENCH_DATAPATH_PIN=1 (vegeta on CPU 0, the proxies and apps on CPU 1).
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  formatReport,
  openLoop,
  overSaturation,
  PATHS,
  summarize,
  throughput,
  verdicts,
  type PathId,
  type RoundResult,
} from './report.js';
import { apply, getJson } from '../e2e/helpers.js';
import { callFrom, eventually, timed, type ClientRequest } from './helpers.js';
import { attack, processTree, usageDuring, type Target } from './loadgen.js';
import * as m from './manifests.js';
import { meshPod, proxiesLive, runningMeshPods, script, useMeshStack } from './mesh-stack.js';
import type { RunningPod } from './runner.js';

const num = (name: string, dflt: number) => (process.env[name] ? Number(process.env[name]) : dflt);
const ROUNDS = num('BENCH_DATAPATH_ROUNDS', 3);
const SECONDS = num('BENCH_DATAPATH_SECONDS', 5);
const WARMUP = 2;
const RATES = (process.env.BENCH_DATAPATH_RATES ?? '200,1000').split(',').map(Number);
const WORKERS = num('BENCH_DATAPATH_WORKERS', 8);
const PIN = process.env.BENCH_DATAPATH_PIN === '1';
/** The Windows app declares only orders: nothing else (no external names) in the gateway. */
const OUTBOUND = `orders.${m.SALES}.svc.cluster.local:9080`;
const SA = (ns: string, sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;
const exactly = (ip: string) => new RegExp(`^${ip.replace(/\./g, '\\.')}$`);
/** A sidecar's inbound reaches its app over loopback (Istio may bind 127.0.0.6 as the source). */
const LOOPBACK = /^127\.0\.0\.\d+$/;

const s = useMeshStack({ tag: 'wbn', dir: 'bench' });

/** Requests are not logged by the apps (thousands a second); access logs are off (below). */
const quiet = (objs: any[]) =>
  objs.map((o) =>
    o.kind === 'Deployment'
      ? {
          ...o,
          spec: {
            ...o.spec,
            template: {
              ...o.spec.template,
              spec: {
                ...o.spec.template.spec,
                containers: o.spec.template.spec.containers.map((c: any) => ({
                  ...c,
                  env: [...(c.env ?? []), { name: 'ECHO_LOG', value: 'quiet' }],
                })),
              },
            },
          },
        }
      : o,
  );

interface BenchPath {
  id: PathId;
  from: RunningPod;
  target: Target;
  /** The proxy whose CPU and RSS are reported: the wpgw for (c),(d); orders' sidecar for (b). */
  proxy?: RunningPod;
  /** What the probe's answer must show: which app answered, from which address, and the identity its sidecar saw. */
  expectPod: RegExp;
  remote: RegExp;
  xfcc?: string;
}

let paths: BenchPath[];

beforeAll(async () => {
  await timed('build vegeta (test/datapath/loadgen/build.sh, cached)', () =>
    script(resolve(import.meta.dirname, 'loadgen/build.sh'), []),
  );
  await timed('bench: sales (orders, client), shop (wpgw, the Windows app)', async () => {
    // No access logs for the measurement (istiod's data-path mesh config turns them on for the
    // suite): Istio's Telemetry API, mesh-wide, as a production mesh without access logging.
    apply([
      {
        apiVersion: 'telemetry.istio.io/v1',
        kind: 'Telemetry',
        metadata: { name: 'mesh-default', namespace: m.ISTIO_NS },
        spec: { accessLogging: [{ disabled: true }] },
      },
    ]);
    apply([m.namespace(m.SALES, { 'istio-injection': 'enabled' })]);
    await eventually('default ServiceAccount in sales', () => getJson(['serviceaccount', 'default', '-n', m.SALES]));
    apply(quiet([...m.meshApp(), ...m.meshClient()]));
    const nsObj = m.namespace(m.SHOP, { 'wpgw.io/inject': 'enabled' }) as { metadata: Record<string, unknown> };
    apply([{ ...nsObj, metadata: { ...nsObj.metadata, annotations: { 'wpgw.io/gateway-replicas': '1' } } }]);
    await eventually(
      `Service wpgw in ${m.SHOP} with a ClusterIP`,
      () => getJson(['service', 'wpgw', '-n', m.SHOP])?.spec?.clusterIP,
    );
    await eventually(`default ServiceAccount in ${m.SHOP}`, () => getJson(['serviceaccount', 'default', '-n', m.SHOP]));
    apply(quiet(m.windowsApp('legacy', m.SHOP, OUTBOUND)));
    const proxies = [
      ...(await runningMeshPods(s, m.SHOP, 'wpgw-', 1)),
      ...(await runningMeshPods(s, m.SALES, 'orders-', 1)),
      ...(await runningMeshPods(s, m.SALES, 'client-', 1)),
    ];
    await runningMeshPods(s, m.SHOP, 'legacy-', 1);
    await proxiesLive(proxies);
  });
  const client = meshPod(s, m.SALES, 'client-');
  const legacy = meshPod(s, m.SHOP, 'legacy-');
  const orders = meshPod(s, m.SALES, 'orders-');
  const wpgw = meshPod(s, m.SHOP, 'wpgw-');
  paths = [
    // (a) straight from the client's pod; (c) from the wpgw's pod; (b),(d) from orders' own sidecar
    {
      id: 'a',
      from: client,
      target: { url: `http://${legacy.ip}:8080/` },
      expectPod: /^legacy-/,
      remote: exactly(client.ip),
    },
    {
      id: 'b',
      from: client,
      target: { url: 'http://127.0.0.1:9080/', headers: { Host: `orders.${m.SALES}.svc.cluster.local:9080` } },
      proxy: orders,
      expectPod: /^orders-/,
      remote: LOOPBACK,
      xfcc: SA(m.SALES, 'client'),
    },
    {
      id: 'c',
      from: client,
      target: { url: 'http://127.0.0.1:8080/', headers: { Host: `legacy.${m.SHOP}.svc.cluster.local:8080` } },
      proxy: wpgw,
      expectPod: /^legacy-/,
      remote: exactly(wpgw.ip),
    },
    {
      id: 'd',
      from: legacy,
      target: { url: `http://orders.${m.SALES}:9080/` },
      proxy: wpgw,
      expectPod: /^orders-/,
      remote: LOOPBACK,
      xfcc: SA(m.SHOP, 'wpgw'),
    },
  ];
  if (PIN) {
    // the proxies and apps of the four paths on CPU 1 (every thread), vegeta on CPU 0 (attack)
    const pids = [client, legacy, orders, wpgw].flatMap((p) =>
      p.procs.flatMap((x) => (x.child.pid ? processTree(x.child.pid) : [])),
    );
    for (const pid of pids) execFileSync('taskset', ['-a', '-p', '-c', '1', String(pid)], { stdio: 'ignore' });
  }
}, 1_800_000);

/** One request through the path: it works, and the bytes show the hops the path claims. */
async function probe(p: BenchPath): Promise<void> {
  const req: ClientRequest = { url: p.target.url, headers: { ...(p.target.headers ?? {}) }, timeoutMs: 10_000 };
  const r = await eventually(`${PATHS[p.id]} answers`, async () => {
    const x = await callFrom(p.from.netns, req);
    return x.status === 200 ? x : undefined;
  });
  expect(r.json?.pod, PATHS[p.id]).toMatch(p.expectPod);
  expect(String(r.json?.remote).split(':')[0], `${PATHS[p.id]}: the hop before the app`).toMatch(p.remote);
  // (b),(d): mTLS into orders' sidecar from the caller's identity (the client's; the wpgw's)
  if (p.xfcc)
    expect(r.json?.headers?.['x-forwarded-client-cert'], `${PATHS[p.id]}: identity at the last sidecar`).toContain(
      `URI=${p.xfcc}`,
    );
}

describe('bench:datapath: what the wpgw hop costs', () => {
  it('(a)-(d) side by side: p50/p90/p99 at fixed open-loop rates, saturation, the wpgw CPU and RSS; targets PASS/MISS', async () => {
    for (const p of paths) await probe(p);
    const dir = join(s.state, 'runs');
    mkdirSync(dir, { recursive: true });
    const prefix = PIN ? ['taskset', '-c', '0'] : [];
    const rounds: RoundResult[] = [];
    const startedAt = new Date();
    const load = loadavg();
    for (let round = 0; round < ROUNDS; round++) {
      // a different order each round, so no path always runs first (or right after another)
      const order = paths.map((_, i) => paths[(i + round) % paths.length]!);
      for (const p of order) {
        await timed(`round ${round + 1}/${ROUNDS} ${PATHS[p.id]}`, async () => {
          const rr: RoundResult = { path: p.id, round, runs: [] };
          for (const rate of RATES) {
            const { value: results, usage } = await usageDuring(p.proxy, () =>
              attack(
                p.from.netns,
                p.target,
                { rate, seconds: SECONDS + WARMUP, prefix },
                dir,
                `${p.id}-${round}-${rate}`,
              ),
            );
            const measured = openLoop(
              results.filter((x) => x.seq >= rate * WARMUP),
              rate,
              rate * SECONDS,
            );
            const requests = results.filter((x) => x.code >= 200 && x.code < 300).length;
            rr.runs.push({ ...measured, ...(usage ? { proxy: { ...usage, requests } } : {}) });
            console.log(
              `[bench] ${p.id} round ${round + 1} ${rate}/s: ${measured.ok} ok, ${measured.failed} failed ${JSON.stringify(measured.errors)}`,
            );
          }
          const { value: results, usage } = await usageDuring(p.proxy, () =>
            attack(
              p.from.netns,
              p.target,
              { rate: 'max', workers: WORKERS, seconds: SECONDS, prefix },
              dir,
              `${p.id}-${round}-max`,
            ),
          );
          const first = results.reduce((min, x) => (x.startNs < min ? x.startNs : min), results[0]?.startNs ?? 0n);
          const sat = throughput(results.filter((x) => x.startNs >= first + BigInt(WARMUP * 1e9)));
          const requests = results.filter((x) => x.code >= 200 && x.code < 300).length;
          rr.saturation = { ...sat, workers: WORKERS, ...(usage ? { proxy: { ...usage, requests } } : {}) };
          rounds.push(rr);
        });
      }
    }
    const summary = summarize(rounds);
    // the rate (1,000 req/s) with the CPU target; the other rates for the latency targets only
    const v = [
      ...RATES.filter((r) => r !== 1000).flatMap((r) => verdicts(summary, r, false)),
      ...verdicts(summary, 1000),
    ];
    const header = [
      `# wpgw data-path benchmark (npm run bench:datapath), ${startedAt.toISOString()}`,
      `machine: ${cpus().length} x ${cpus()[0]?.model ?? '?'}, load average at start ${load.map((x) => x.toFixed(2)).join(' ')}; ${PIN ? 'vegeta pinned to CPU 0, proxies and apps to CPU 1' : 'no pinning'}`,
      `${ROUNDS} rounds x (${RATES.join(', ')} req/s open loop for ${SECONDS} s after ${WARMUP} s warm-up; saturation: closed loop, ${WORKERS} workers, ${SECONDS} s); medians over rounds, p90 spread in brackets`,
      "latency from each request's intended send time (vegeta's constant pacer; no coordinated omission); GET /, the same echo app answering each path",
      "proxy = the wpgw (Envoy + pilot-agent) for (c),(d); orders' sidecar for (b); /proc CPU per answered request, RSS after the run; every Envoy runs one worker thread (the pod runner's concurrency 1)",
      '"sent of due": fewer sent than the schedule called for means the generator fell behind and ran out of time (CPU-bound machine); "over saturation": the rate is at or above 90% of what that path answered closed loop here, so its latency is queueing',
      'the "Windows app" is a Linux process (the pod runner, windows-1 kwok node); capture mode NONE (the mesh client dials its sidecar on 127.0.0.1)',
      `${cpus().length} shared cores: the generator, up to three Envoys, the apps and the control plane compete with each other and other jobs; p50 and CPU per request are the stable readings, p90/p99 carry the scheduler's stalls (see the spread)`,
    ];
    const report = formatReport(summary, v, header);
    writeFileSync(join(s.state, 'report.md'), `${report}\n`);
    console.log(`${report}\n[bench] report written to ${join(s.state, 'report.md')}`);
    // The numbers are only worth reading if the paths worked under load: below a path's saturation
    // almost every request is answered (over it, timeouts are the queue, reported above).
    for (const p of summary) {
      for (const r of p.rates.filter((x) => !overSaturation(p, x.rate)))
        expect(r.failed / Math.max(1, r.sent), `${PATHS[p.path]} at ${r.rate}/s: failed requests`).toBeLessThan(0.01);
    }
  });
});
