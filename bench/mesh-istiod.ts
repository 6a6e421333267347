// Mesh-wide outbound against a real istiod (issue 18): what one namespace's gateway is pushed as
// the Services in its scope grow to 100, 1,000 and 5,000, and how long one more Service takes to
// reach it.
//
//   node dist/bench/mesh-istiod.js [--sizes 100,1000,5000]      (needs test/harness and test/istio built)
//
// Its own harness control plane (test/harness/up.sh) and istiod (test/istio/start.sh). The Services
// are created for real; the gateway objects are the controller's desired state for them
// (desiredNamespaceState, the same code the controller applies), applied server-side; the gateway
// is the wpgw Deployment's pod (kwok) whose xDS an Istio xDS client (test/istio/bin/xdsdump)
// requests as that pod would. Measured per size: Envoy routes/virtual hosts and the RDS/LDS/CDS bytes
// the gateway receives, istiod's time to answer the gateway's full config request, istiod's own
// push metrics, and, for one Service added, apply -> the gateway's routes have it. Baseline: the
// same gateway with no mesh-wide scope (the seed's two declared destinations), first.
import { execFileSync, spawnSync } from 'node:child_process';
import { get as httpGet } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import type { V1Service } from '@kubernetes/client-node';
import { desiredNamespaceState } from '../src/core/desired.js';
import type { KubeObject } from '../src/core/desired-types.js';
import { eventually } from '../test/lib/poll.js';
import { input, OPTS, SERVICES_PER_NAMESPACE, services } from './mesh-fixtures.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const ISTIO_KINDS = new Set(['Gateway', 'VirtualService', 'AuthorizationPolicy', 'ServiceEntry', 'DestinationRule']);
/** A push to one gateway should land within this after the Service is applied (istiod debounces ~100 ms-1 s). */
const TARGET_PUSH_S = 10;

const log = (line: string) => process.stderr.write(`[mesh-istiod] ${line}\n`);
const sh = (file: string, args: string[], env: Record<string, string> = {}) =>
  execFileSync('bash', [file, ...args], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 30 * 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });

let kubectlBin = '';
let kubeconfig = '';
function kubectl(args: string[], stdin?: string): string {
  return execFileSync(kubectlBin, args, {
    env: { ...process.env, KUBECONFIG: kubeconfig },
    input: stdin,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}
/** Applies in chunks: one request body per chunk, server-side (as the controller applies). */
function applyAll(objects: unknown[], chunk = 400): void {
  for (let i = 0; i < objects.length; i += chunk) {
    kubectl(
      ['apply', '--server-side', '--field-manager=wpgw', '--force-conflicts', '-f', '-'],
      objects
        .slice(i, i + chunk)
        .map((o) => stringify(o))
        .join('---\n'),
    );
  }
}

interface Dump {
  listeners: unknown[];
  routes: Array<{ virtual_hosts?: Array<{ domains?: string[] }> }>;
  clusters: unknown[];
}

function dump(xdsdump: string, addr: string, pod: { ip: string; name: string }): { d: Dump; ms: number } {
  const t0 = performance.now();
  const r = spawnSync(
    xdsdump,
    [
      `--addr=${addr}`,
      '--type=router',
      `--ip=${pod.ip}`,
      `--pod=${pod.name}`,
      '--namespace=shop',
      '--sa=wpgw',
      '--label=wpgw.io/gateway=shop',
      '--timeout=120s',
      '--settle=500ms',
    ],
    {
      encoding: 'utf8',
      maxBuffer: 512 * 1024 * 1024,
    },
  );
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`xdsdump failed: ${r.stderr}`);
  return { d: JSON.parse(r.stdout) as Dump, ms };
}

const domains = (d: Dump) => d.routes.flatMap((rc) => (rc.virtual_hosts ?? []).flatMap((v) => v.domains ?? []));
const bytes = (x: unknown) => Buffer.byteLength(JSON.stringify(x));
const kib = (n: number) => (n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(2)} MiB` : `${(n / 1024).toFixed(1)} KiB`);

/** istiod's Prometheus metrics: sum and count of a histogram, over all label sets matching `filter`. */
async function histogram(monitoring: string, name: string, filter = ''): Promise<{ sum: number; count: number }> {
  const text = await metricsText(monitoring);
  let sum = 0;
  let count = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}_sum`) && line.includes(filter)) sum += Number(line.split(' ').pop());
    if (line.startsWith(`${name}_count`) && line.includes(filter)) count += Number(line.split(' ').pop());
  }
  return { sum, count };
}

/** One fresh connection per scrape (a kept-alive one istiod has closed meanwhile fails with EPIPE); "" if unreachable. */
function metricsText(monitoring: string): Promise<string> {
  const [host, port] = monitoring.split(':');
  return new Promise((res) => {
    const req = httpGet({ host, port: Number(port), path: '/metrics', agent: false, timeout: 30_000 }, (r) => {
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => (body += c));
      r.on('end', () => res(body));
      r.on('error', () => res(''));
    });
    req.on('error', (e) => {
      log(`istiod metrics unreachable: ${e.message}`);
      res('');
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

function gatewayObjects(mesh: boolean, cluster: V1Service[]): KubeObject[] {
  return desiredNamespaceState(input(mesh, cluster), OPTS).objects.filter((o) => ISTIO_KINDS.has(o.kind));
}

const until = <T>(what: string, fn: () => T | undefined, timeoutMs = 600_000): Promise<T> =>
  eventually(what, fn, timeoutMs, 500);

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { sizes: { type: 'string' }, keep: { type: 'boolean' } } });
  const sizes = (values.sizes ?? '100,1000,5000')
    .split(',')
    .map(Number)
    .sort((a, b) => a - b);
  const state = mkdtempSync(join(tmpdir(), 'wpgw-mesh-istiod-'));
  log(`state ${state}; building (cached) and starting the harness and istiod`);
  sh(join(ROOT, 'test/harness/build.sh'), []);
  sh(join(ROOT, 'test/istio/build.sh'), []);
  sh(join(ROOT, 'test/harness/up.sh'), [state]);
  try {
    const env = JSON.parse(readFileSync(join(state, 'env.json'), 'utf8')) as Record<string, string>;
    kubectlBin = env.HARNESS_KUBECTL!;
    kubeconfig = env.KUBECONFIG!;
    sh(join(ROOT, 'test/istio/start.sh'), [state]);
    const istio = JSON.parse(readFileSync(join(state, 'istio-env.json'), 'utf8')) as Record<string, string>;
    // The gateway pod (kwok runs it): the wpgw Deployment the controller creates, by the same code.
    const all = desiredNamespaceState(input(false, []), OPTS).objects;
    applyAll([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } }]);
    await until('default ServiceAccount in shop', () =>
      spawnSync(kubectlBin, ['get', 'sa', 'default', '-n', 'shop'], { env: { ...process.env, KUBECONFIG: kubeconfig } })
        .status === 0
        ? true
        : undefined,
    );
    applyAll(all.filter((o) => ['ServiceAccount', 'Deployment'].includes(o.kind) && o.metadata.name === 'wpgw'));
    const pod = await until('the wpgw gateway pod running with an IP', () => {
      const p = JSON.parse(kubectl(['get', 'pods', '-n', 'shop', '-l', 'wpgw.io/gateway=shop', '-o', 'json']))
        .items?.[0];
      return p?.status?.podIP ? { ip: p.status.podIP as string, name: p.metadata.name as string } : undefined;
    });
    const xdsdump = istio.ISTIO_XDSDUMP!;
    const addr = istio.ISTIO_XDS_ADDRESS!;
    const mon = istio.ISTIO_MONITORING_ADDRESS!;

    const misses: string[] = [];
    // Each row as soon as it is measured (a late failure keeps the earlier numbers).
    const emit = (row: string) => console.log(row);
    console.log(
      `wpgw mesh-wide outbound: the gateway's xDS from a real istiod (harness control plane, ${SERVICES_PER_NAMESPACE} Services per namespace)`,
    );
    console.log('| case | virtual hosts | domains | RDS | LDS | CDS clusters / bytes | istiod full config answer |');
    console.log('|---|---|---|---|---|---|---|');
    console.log(
      'rows "(one Service more)": | in scope | apply | -> gateway has the route | istiod pushes meanwhile | mean push time | mean RDS push size |',
    );
    const measure = async (label: string, mesh: boolean, cluster: V1Service[], expectDomain: string) => {
      applyAll(gatewayObjects(mesh, cluster));
      const { d, ms } = await until(`the gateway's routes have ${expectDomain}`, () => {
        const r = dump(xdsdump, addr, pod);
        return domains(r.d).includes(expectDomain) ? r : undefined;
      });
      const again = dump(xdsdump, addr, pod).ms; // a second full request, config settled
      const vhosts = d.routes.reduce((a, rc) => a + (rc.virtual_hosts ?? []).length, 0);
      emit(
        `| ${label} | ${vhosts} | ${domains(d).length} | ${kib(bytes(d.routes))} | ${kib(bytes(d.listeners))} | ${d.clusters.length} / ${kib(bytes(d.clusters))} | ${Math.min(ms, again).toFixed(0)} ms |`,
      );
      return d;
    };

    // Baseline: declared destinations only (and a Service orders.sales for the declared entry).
    const sales: V1Service = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'orders', namespace: 'sales' },
      spec: { selector: { app: 'orders' }, ports: [{ name: 'http', port: 9080 }] },
    };
    applyAll([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sales' } }, sales]);
    await measure('baseline: 2 declared, no mesh-wide scope', false, [], 'orders.sales.svc.cluster.local');
    let created = 0;
    for (const n of sizes) {
      log(`creating Services up to ${n}`);
      const fresh = services(n - created, created).map((s) => ({ ...s, spec: { ...s.spec, clusterIP: undefined } }));
      const namespaces = [...new Set(fresh.map((s) => s.metadata!.namespace!))].map((name) => ({
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name },
      }));
      applyAll(namespaces);
      applyAll(fresh, 500);
      created = n;
      const cluster = services(n).map((s) => ({ ...s, spec: { ...s.spec, clusterIP: undefined } }));
      const pushBefore = await histogram(mon, 'pilot_xds_push_time');
      const sizeBefore = await histogram(mon, 'pilot_xds_config_size_bytes', 'RouteConfiguration');
      const last = cluster[cluster.length - 1]!;
      await measure(
        `mesh-wide, ${n} in scope`,
        true,
        cluster,
        `${last.metadata!.name}.${last.metadata!.namespace}.svc.cluster.local`,
      );
      // One Service more: created, the controller's objects for it applied, until the gateway has it.
      const extra = services(1, 100_000 + n).map((s) => ({
        ...s,
        metadata: { ...s.metadata, namespace: 'team-0' },
        spec: { ...s.spec, clusterIP: undefined },
      }));
      const t0 = performance.now();
      applyAll(extra);
      applyAll(
        gatewayObjects(true, [...cluster, ...extra]).filter((o) =>
          o.kind === 'VirtualService'
            ? o.metadata.name.includes(extra[0]!.metadata!.name!)
            : o.kind === 'AuthorizationPolicy',
        ),
      );
      const tApplied = performance.now();
      const want = `${extra[0]!.metadata!.name}.team-0.svc.cluster.local`;
      await until(`the gateway's routes have ${want}`, () =>
        domains(dump(xdsdump, addr, pod).d).includes(want) ? true : undefined,
      );
      const tSeen = performance.now();
      const pushAfter = await histogram(mon, 'pilot_xds_push_time');
      const sizeAfter = await histogram(mon, 'pilot_xds_config_size_bytes', 'RouteConfiguration');
      const pushes = pushAfter.count - pushBefore.count;
      const s = (tSeen - t0) / 1000;
      if (s > TARGET_PUSH_S)
        misses.push(`${n} in scope: one Service -> gateway route ${s.toFixed(1)} s > ${TARGET_PUSH_S} s`);
      emit(
        `| ${n} (one Service more) | ${((tApplied - t0) / 1000).toFixed(1)} s | ${s.toFixed(1)} s ${s <= TARGET_PUSH_S ? 'PASS' : 'MISS'} | ${pushes} | ${pushes > 0 ? (((pushAfter.sum - pushBefore.sum) / pushes) * 1000).toFixed(1) : '-'} ms | ${sizeAfter.count > sizeBefore.count ? kib((sizeAfter.sum - sizeBefore.sum) / (sizeAfter.count - sizeBefore.count)) : '-'} |`,
      );
    }
    console.log(
      `target: one Service reaches the gateway within ${TARGET_PUSH_S} s. "istiod full config answer": the xDS client's whole request, including its 0.5 s quiet period after the last response`,
    );
    const metrics = await metricsText(mon);
    log(
      `istiod config size metrics:\n${metrics
        .split('\n')
        .filter((l) => /config_size_bytes_(sum|count)/.test(l))
        .join('\n')}`,
    );
    console.log(misses.length ? `MISS:\n${misses.map((m) => `  ${m}`).join('\n')}` : 'all PASS');
  } catch (err) {
    // What istiod said last, before the state directory goes.
    const istiodLog = join(state, 'logs', 'istiod.log');
    spawnSync('tail', ['-n', '40', istiodLog], { stdio: ['ignore', 'inherit', 'inherit'] });
    throw err;
  } finally {
    if (!values.keep) {
      spawnSync('bash', [join(ROOT, 'test/istio/stop.sh'), state], { stdio: 'ignore' });
      spawnSync('bash', [join(ROOT, 'test/harness/down.sh'), state], { stdio: 'ignore' });
      rmSync(state, { recursive: true, force: true });
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
