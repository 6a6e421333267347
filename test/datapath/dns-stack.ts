// The stack of the dnsConfig-mode files (dns.test.ts: flow 6, netpol.test.ts: flow 8), set up
// from plain manifests through the real wpgw webhook and controller; the pod runner runs
//   - cluster DNS: kube-system/coredns (the real CoreDNS, kubernetes plugin against the harness
//     API server) behind the kube-dns Service, forwarding other names to the node's resolver
//     (apps/dns.mjs in the node namespace, the suite's "internet");
//   - wpgw-dns: the controller's Deployment, each pod running the Corefile from the controller's
//     ConfigMap, kept in sync as kubelet would (runner.ts), its reload plugin re-reading it;
//   - the Windows app (a Linux process on the windows-1 kwok node) with the resolv.conf kubelet
//     writes from the dnsConfig the webhook injected, and a Linux app in another namespace;
// all at the addresses the cluster assigned, ClusterIPs through the real kube-proxy. No istiod:
// the wpgw's own pods run nothing here (traffic through the wpgw is flows 1-5, datapath.test.ts).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, inject } from 'vitest';
import { DNS_CONTAINER_PORT } from '../../src/core/desired/policy.js';
import { apply, getJson, k, kubectl } from '../e2e/helpers.js';
import { CLUSTER_DNS_IP, clusterDnsObjects, COREDNS, tokenKubeconfig } from './coredns.js';
import { callFrom, eventually, podsOf, timed, timings } from './helpers.js';
import { rulesFor, startKubeProxy } from './kube-proxy.js';
import * as m from './manifests.js';
import { Network, NODE_ADDRESS, nsExec } from './network.js';
import { killStale, registerPids, startProc, stopProc, type Proc } from './procs.js';
import { PodRunner, RUNNER_LABEL, type RunningPod } from './runner.js';

const DP = resolve(import.meta.dirname);
const ROOT = resolve(DP, '../..');
const RESOLVE = join(DP, 'apps/resolve.mjs');
/** The node's resolver (the suite's "internet"), in the node namespace; cluster DNS forwards to it. */
export const UPSTREAM = '10.244.250.53';
export const EXTERNAL = { name: 'www.example.test', ip: '198.51.100.7' };

export interface DnsStackOptions {
  /** Names this file's objects and logs: network namespaces "<tag>-*", state dir <e2e state>/<tag>. */
  tag: string;
  /** Opted in, resolver dnsConfig: the Windows app "legacy" with `outbound`. */
  ns: string;
  /** Not opted in: Services the Windows app declares (orders, no pods) and does not (stock: a Linux echo app). */
  dst: string;
  outbound: string;
}

export interface DnsStack {
  state: string;
  kubeconfig: string;
  serviceCIDR: string;
  network: Network;
  runner: PodRunner;
  /** ClusterIPs: kubernetes, gateway (wpgw), dns (wpgw-dns), orders, stock. */
  ip: Record<string, string>;
  /** Processes the file starts besides the runner's (stopped on teardown, last first). */
  procs: Proc[];
}

export interface Resolved {
  ok: boolean;
  addresses?: string[];
  code?: string;
}

/** Resolves in a pod as its app would (its hosts file and resolv.conf), or asks one server ("ip" or "ip:port"). */
export async function resolveIn(
  netns: string,
  name: string,
  server?: { ip: string; type?: 'A' | 'AAAA' },
): Promise<Resolved> {
  const out = await nsExec(
    netns,
    [process.execPath, RESOLVE, JSON.stringify({ name, server: server?.ip, type: server?.type })],
    30_000,
  );
  return JSON.parse(out.trim().split('\n').pop()!) as Resolved;
}

export const clusterIP = (ns: string, name: string) =>
  getJson(['service', name, '-n', ns])?.spec?.clusterIP as string | undefined;

export function pod(s: DnsStack, ns: string, prefix: string): RunningPod {
  const p = podsOf(s.runner, ns, prefix);
  if (p.length === 0) throw new Error(`no running pod ${ns}/${prefix}*`);
  return p[0]!;
}

export const runningPods = (s: DnsStack, ns: string, prefix: string, n: number) =>
  eventually(`${n} pod(s) ${ns}/${prefix}* running in the pod runner`, () => {
    const ps = podsOf(s.runner, ns, prefix);
    return ps.length === n ? ps : undefined;
  });

/**
 * Waits until every wpgw-dns pod of the namespace answers each of `names` with the gateway's
 * address (queried at the pod's own address: each replica's reload plugin checks on its own
 * schedule, so the Service address alone can answer from an old configuration).
 */
export async function wpgwDnsLoaded(s: DnsStack, ns: string, names: string[]): Promise<void> {
  await eventually(`every wpgw-dns pod in ${ns} answers ${names.join(', ')} with the gateway`, async () => {
    const pods = podsOf(s.runner, ns, 'wpgw-dns-');
    if (pods.length === 0) return false;
    const answers = await Promise.all(
      pods.flatMap((p) => names.map((n) => resolveIn(p.netns, n, { ip: `${p.ip}:${DNS_CONTAINER_PORT}` }))),
    );
    return answers.every((r) => r.ok && r.addresses?.length === 1 && r.addresses[0] === s.ip.gateway);
  });
}

/**
 * Everything a file puts in the cluster, so the next file (or run) starts without it: kube-dns at
 * 10.96.0.10 would shadow datapath.test.ts's DNS stand-in. Waits until the namespaces and the
 * kube-dns Service are gone (the next file reuses its address).
 */
async function removeObjects(o: DnsStackOptions): Promise<void> {
  kubectl(['label', 'namespace', 'kube-system', `${RUNNER_LABEL}-`]);
  kubectl([
    'delete',
    '-n',
    'kube-system',
    'deployment/coredns',
    'service/kube-dns',
    'configmap/coredns',
    'serviceaccount/coredns',
    '--ignore-not-found',
    '--wait=false',
  ]);
  kubectl(['delete', 'clusterrolebinding/system:coredns', 'clusterrole/system:coredns', '--ignore-not-found']);
  for (const ns of [o.ns, o.dst]) {
    kubectl(['label', 'namespace', ns, `${RUNNER_LABEL}-`]);
    kubectl(['delete', 'namespace', ns, '--ignore-not-found', '--wait=false']);
  }
  await eventually(
    `namespaces ${o.ns}, ${o.dst} and kube-system/kube-dns gone`,
    () =>
      !getJson(['namespace', o.ns]) &&
      !getJson(['namespace', o.dst]) &&
      !getJson(['service', 'kube-dns', '-n', 'kube-system']),
  );
}

/** Registers the file's beforeAll/afterAll; the returned object is filled in by beforeAll. */
export function useDnsStack(o: DnsStackOptions): DnsStack {
  const s = { procs: [] as Proc[], ip: {} as Record<string, string> } as DnsStack;
  let network: Network | undefined;
  let runner: PodRunner | undefined;

  beforeAll(async () => {
    const e2e = inject('e2e');
    s.kubeconfig = e2e.kubeconfig;
    s.state = join(e2e.stateDir, o.tag);
    mkdirSync(join(s.state, 'logs'), { recursive: true });
    // a run killed before its teardown leaves processes: stop them (only ours, by pid and path)
    const stale = killStale(join(s.state, 'pids'), ROOT);
    if (stale) console.log(`[datapath] ${o.tag}: stopped ${stale} process groups left by an earlier run`);
    registerPids(join(s.state, 'pids'));
    const harness = JSON.parse(readFileSync(join(dirname(e2e.kubeconfig), 'env.json'), 'utf8')) as Record<
      string,
      string
    >;
    const apiPort = Number(harness.HARNESS_APISERVER_PORT);
    s.serviceCIDR = harness.HARNESS_SERVICE_CIDR!;
    const script = (file: string) =>
      execFileSync('bash', [file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60 * 60_000 });

    await timed(`${o.tag}: install packages, build CoreDNS (cached)`, () => {
      script(join(DP, 'install.sh'));
      script(join(DP, 'build.sh'));
    });
    await timed(`${o.tag}: leftovers of an earlier file or run removed`, () => removeObjects(o));

    await timed(`${o.tag}: node network namespace, kube-proxy, upstream resolver`, async () => {
      network = s.network = new Network(o.tag);
      await network.cleanupStale();
      await network.up(s.serviceCIDR, [UPSTREAM]);
      s.procs.push(
        ...startKubeProxy({
          kubeProxy: join(harness.HARNESS_BIN_DIR!, 'kube-proxy'),
          kubeconfig: e2e.kubeconfig,
          apiPort,
          nodeNetns: network.node,
          stateDir: s.state,
          clusterCIDR: '10.244.0.0/16',
          nodeName: 'linux-1',
        }),
        startProc('upstream dns', 'ip', ['netns', 'exec', network.node, process.execPath, join(DP, 'apps/dns.mjs')], {
          log: join(s.state, 'logs', 'upstream-dns.log'),
          env: {
            ...process.env,
            DNS_RECORDS: JSON.stringify({ [EXTERNAL.name]: EXTERNAL.ip }),
            DNS_BIND: `${UPSTREAM}:53`,
          },
        }),
      );
      // The API server for pods (cluster DNS): the node's address, bridged like kube-proxy's (kube-proxy.ts).
      s.procs.push(
        startProc(
          'socat node api',
          'ip',
          [
            'netns',
            'exec',
            network.node,
            'socat',
            `TCP-LISTEN:${apiPort},bind=${NODE_ADDRESS},fork,reuseaddr`,
            `UNIX-CONNECT:${join(s.state, 'apiserver.sock')}`,
          ],
          {
            log: join(s.state, 'logs', 'socat-node-api.log'),
          },
        ),
      );
      s.ip.kubernetes = clusterIP('default', 'kubernetes')!;
      await eventually(
        'kube-proxy programmed the kubernetes Service',
        async () => (await rulesFor(network!.node, s.ip.kubernetes!, 443)).length > 0,
        120_000,
      );
    });

    runner = s.runner = new PodRunner({
      kubeconfig: e2e.kubeconfig,
      stateDir: s.state,
      network: network!,
      coredns: COREDNS,
      // No istiod here: the hook runs no istio-proxy container, so these are never used.
      proxy: { agent: '', envoy: '', discoveryAddress: '', istiodCA: '', bootstrapTemplate: '', systemCA: '' },
      containers: async (c) => (c.name === 'istio-proxy' ? null : undefined),
    });
    runner.start();

    await timed(`${o.tag}: cluster DNS (kube-system/coredns, kube-dns Service)`, async () => {
      const kcFile = join(s.state, 'coredns-cluster.kubeconfig');
      const objs = clusterDnsObjects(kcFile, UPSTREAM);
      apply(objs.slice(0, 1)); // the ServiceAccount, for its token
      tokenKubeconfig(
        e2e.kubeconfig,
        k(['create', 'token', 'coredns', '-n', 'kube-system', '--duration=4h']).trim(),
        `https://${NODE_ADDRESS}:${apiPort}`,
        kcFile,
      );
      apply(objs.slice(1));
      k(['label', 'namespace', 'kube-system', `${RUNNER_LABEL}=enabled`, '--overwrite']);
      const dns = (await runningPods(s, 'kube-system', 'coredns-', 1))[0]!;
      // The kubernetes plugin synced with the API server, answering through the kube-dns ClusterIP.
      await eventually('cluster DNS answers kubernetes.default via its ClusterIP', async () => {
        const r = await resolveIn(dns.netns, 'kubernetes.default.svc.cluster.local', { ip: CLUSTER_DNS_IP });
        return r.ok && r.addresses?.[0] === s.ip.kubernetes;
      });
    });

    await timed(`${o.tag}: opted-in namespace in dnsConfig mode, the Windows app`, async () => {
      apply([
        m.namespace(o.dst, {}),
        {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: 'orders', namespace: o.dst },
          spec: { ports: [{ name: 'http', port: 9080 }] },
        },
        m.unmanagedLinuxPod('stock', o.dst),
        {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: 'stock', namespace: o.dst },
          spec: { selector: { app: 'stock' }, ports: [{ name: 'http', port: 9080, targetPort: 8080 }] },
        },
      ]);
      const nsObj = m.namespace(o.ns, { 'wpgw.io/inject': 'enabled' }) as { metadata: Record<string, unknown> };
      apply([
        {
          ...nsObj,
          metadata: {
            ...nsObj.metadata,
            annotations: { 'wpgw.io/resolver': 'dnsConfig', 'wpgw.io/gateway-replicas': '1' },
          },
        },
      ]);
      await eventually(
        `Services wpgw and wpgw-dns in ${o.ns} with ClusterIPs`,
        () => clusterIP(o.ns, 'wpgw') && clusterIP(o.ns, 'wpgw-dns'),
      );
      s.ip.gateway = clusterIP(o.ns, 'wpgw')!;
      s.ip.dns = clusterIP(o.ns, 'wpgw-dns')!;
      for (const d of ['orders', 'stock']) s.ip[d] = clusterIP(o.dst, d)!;
      await eventually(`default ServiceAccount in ${o.ns}`, () => getJson(['serviceaccount', 'default', '-n', o.ns]));
      apply(m.windowsApp('legacy', o.ns, o.outbound));
      for (const p of await runningPods(s, o.ns, 'wpgw-dns-', 2)) {
        await eventually(
          `CoreDNS of ${p.name} ready`,
          async () => (await callFrom(p.netns, { url: 'http://127.0.0.1:8181/ready', timeoutMs: 5000 })).status === 200,
        );
      }
      await runningPods(s, o.ns, 'legacy-', 1);
      await runningPods(s, o.dst, 'stock-', 1);
      console.log(`[datapath] ${o.tag} addresses: ${JSON.stringify(s.ip)}`);
    });
  });

  afterAll(async () => {
    await timed(`${o.tag}: teardown`, async () => {
      await runner?.stop().catch((e) => console.error(e));
      for (const p of s.procs.reverse()) await stopProc(p);
      await network?.down().catch((e) => console.error(e));
      await removeObjects(o);
    });
    console.log(`[datapath] timings: ${timings.map(([w, t]) => `${w} ${t.toFixed(1)}s`).join('; ')}`);
    console.log(`[datapath] ${o.tag} logs kept in ${s.state}`);
  });
  return s;
}
