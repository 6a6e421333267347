// Flow 6 of the data-path suite: dnsConfig mode through the real CoreDNS (coredns/, built from its
// Go module). Plain manifests through the real wpgw webhook and controller; the pod runner runs
//   - cluster DNS: kube-system/coredns (kubernetes plugin against the harness API server) behind
//     the kube-dns Service, forwarding other names to the node's resolver (apps/dns.mjs);
//   - wpgw-dns: the controller's Deployment, each pod running the Corefile from the controller's
//     ConfigMap, kept in sync as kubelet would (coredns.ts), its reload plugin re-reading it;
//   - the Windows app (a Linux process on the windows-1 kwok node) with the resolv.conf kubelet
//     writes from the dnsConfig the webhook injected;
// all at the addresses the cluster assigned, ClusterIPs through the real kube-proxy. No istiod
// here: the gateway's address is what the names must resolve to; traffic through it is flows 1-5.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DNS_CONTAINER_PORT } from '../../src/core/desired/policy.js';
import { apply, getJson, k, kubectl } from '../e2e/helpers.js';
import { CLUSTER_DNS_IP, clusterDnsObjects, ConfigMapVolumes, corednsContainers, tokenKubeconfig } from './coredns.js';
import { callFrom, eventually, podsOf, timed, timings } from './helpers.js';
import { rulesFor, startKubeProxy } from './kube-proxy.js';
import * as m from './manifests.js';
import { Network, nsExec } from './network.js';
import { alive, startProc, stopProc, type Proc } from './procs.js';
import { PodRunner, RUNNER_LABEL, type RunningPod } from './runner.js';

const ROOT = resolve(import.meta.dirname, '../..');
const DP = join(ROOT, 'test/datapath');
const RESOLVE = join(DP, 'apps/resolve.mjs');
/** Opted in, resolver dnsConfig. */
const NS = 'dns-mode';
/** Services the Windows app declares (orders) and does not (stock): cluster DNS knows both. */
const DST = 'dns-dst';
/** The node's resolver (the suite's "internet"), in the node namespace; cluster DNS forwards to it. */
const UPSTREAM = '10.244.250.53';
const EXTERNAL = { name: 'www.example.test', ip: '198.51.100.7' };
const OUTBOUND = [`orders.${DST}.svc.cluster.local:9080`, 'tls://*.partner.test:443', 'api.example.test:80+tls'].join('\n');
const ADDED = { app: 'reports', outbound: 'reports.example.test:80+tls', name: 'reports.example.test' };

let state: string;
let network: Network | undefined;
let runner: PodRunner | undefined;
let volumes: ConfigMapVolumes | undefined;
const procs: Proc[] = [];
const ip: Record<string, string> = {};

interface Resolved {
  ok: boolean;
  addresses?: string[];
  code?: string;
}
/** Resolves in the pod as its app would (its hosts file and resolv.conf), or asks one server. */
async function resolveIn(netns: string, name: string, server?: { ip: string; type?: 'A' | 'AAAA' }): Promise<Resolved> {
  const out = await nsExec(netns, [process.execPath, RESOLVE, JSON.stringify({ name, server: server?.ip, type: server?.type })], 30_000);
  return JSON.parse(out.trim().split('\n').pop()!) as Resolved;
}

function pod(ns: string, prefix: string): RunningPod {
  const p = podsOf(runner!, ns, prefix);
  if (p.length === 0) throw new Error(`no running pod ${ns}/${prefix}*`);
  return p[0]!;
}

const runningPods = (ns: string, prefix: string, n: number) =>
  eventually(`${n} pod(s) ${ns}/${prefix}* running in the pod runner`, () => {
    const ps = podsOf(runner!, ns, prefix);
    return ps.length === n ? ps : undefined;
  });

const clusterIP = (ns: string, name: string) => getJson(['service', name, '-n', ns])?.spec?.clusterIP as string | undefined;
const corefileOf = () => getJson(['configmap', 'wpgw-dns', '-n', NS])?.data?.Corefile as string | undefined;

/** Everything this file puts in the cluster, so a later file (or run) starts without it: kube-dns at 10.96.0.10 would shadow datapath.test.ts's DNS stand-in. */
async function removeObjects(): Promise<void> {
  kubectl(['label', 'namespace', 'kube-system', `${RUNNER_LABEL}-`]);
  kubectl(['delete', '-n', 'kube-system', 'deployment/coredns', 'service/kube-dns', 'configmap/coredns', 'serviceaccount/coredns', '--ignore-not-found', '--wait=false']);
  kubectl(['delete', 'clusterrolebinding/system:coredns', 'clusterrole/system:coredns', '--ignore-not-found']);
  for (const ns of [NS, DST]) {
    kubectl(['label', 'namespace', ns, `${RUNNER_LABEL}-`]);
    kubectl(['delete', 'namespace', ns, '--ignore-not-found', '--wait=false']);
  }
}

beforeAll(async () => {
  const e2e = inject('e2e');
  state = join(e2e.stateDir, 'dns');
  mkdirSync(join(state, 'logs'), { recursive: true });
  const harness = JSON.parse(readFileSync(join(dirname(e2e.kubeconfig), 'env.json'), 'utf8')) as Record<string, string>;
  const apiPort = Number(harness.HARNESS_APISERVER_PORT);
  const script = (file: string) => execFileSync('bash', [file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60 * 60_000 });

  await timed('dns: install packages, build CoreDNS (cached)', () => {
    script(join(DP, 'install.sh'));
    script(join(DP, 'coredns/build.sh'));
  });
  await timed('dns: leftovers of an earlier run removed', async () => {
    await removeObjects();
    await eventually(`namespaces ${NS}, ${DST} gone`, () => !getJson(['namespace', NS]) && !getJson(['namespace', DST]));
  });

  await timed('dns: node network namespace, kube-proxy, upstream resolver', async () => {
    network = new Network('wdn');
    await network.cleanupStale();
    await network.up([UPSTREAM]);
    procs.push(
      ...startKubeProxy({
        kubeProxy: join(harness.HARNESS_BIN_DIR!, 'kube-proxy'),
        kubeconfig: e2e.kubeconfig,
        apiPort,
        nodeNetns: network.node,
        stateDir: state,
        clusterCIDR: '10.244.0.0/16',
        nodeName: 'linux-1',
      }),
      startProc('upstream dns', 'ip', ['netns', 'exec', network.node, process.execPath, join(DP, 'apps/dns.mjs')], {
        log: join(state, 'logs', 'upstream-dns.log'),
        env: { ...process.env, DNS_RECORDS: JSON.stringify({ [EXTERNAL.name]: EXTERNAL.ip }), DNS_BIND: `${UPSTREAM}:53` },
      }),
    );
    ip.kubernetes = clusterIP('default', 'kubernetes')!;
    await eventually('kube-proxy programmed the kubernetes Service', async () => (await rulesFor(network!.node, ip.kubernetes!, 443)).length > 0, 120_000);
  });

  volumes = new ConfigMapVolumes(e2e.kubeconfig);
  const coredns = corednsContainers({ volumes, api: { socket: join(state, 'apiserver.sock'), port: apiPort, wants: (p) => p.metadata?.namespace === 'kube-system' } });
  runner = new PodRunner({
    kubeconfig: e2e.kubeconfig,
    stateDir: state,
    network: network!,
    // No istiod in this file: the hook below runs no istio-proxy container, so these are never used.
    proxy: { agent: '', envoy: '', discoveryAddress: '', istiodCA: '', bootstrapTemplate: '', systemCA: '' },
    containers: async (c, ctx) => (c.name === 'istio-proxy' ? null : coredns(c, ctx)),
  });
  runner.start();

  await timed('dns: cluster DNS (kube-system/coredns, kube-dns Service)', async () => {
    const objs = clusterDnsObjects(join(state, 'coredns-cluster.kubeconfig'), UPSTREAM);
    apply(objs.slice(0, 1)); // the ServiceAccount, for its token
    tokenKubeconfig(e2e.kubeconfig, k(['create', 'token', 'coredns', '-n', 'kube-system', '--duration=4h']).trim(), join(state, 'coredns-cluster.kubeconfig'));
    apply(objs.slice(1));
    k(['label', 'namespace', 'kube-system', `${RUNNER_LABEL}=enabled`, '--overwrite']);
    const dns = (await runningPods('kube-system', 'coredns-', 1))[0]!;
    // The kubernetes plugin synced with the API server, answering through the kube-dns ClusterIP.
    await eventually('cluster DNS answers kubernetes.default via its ClusterIP', async () => {
      const r = await resolveIn(dns.netns, 'kubernetes.default.svc.cluster.local', { ip: CLUSTER_DNS_IP });
      return r.ok && r.addresses?.[0] === ip.kubernetes;
    });
  });

  await timed('dns: opted-in namespace in dnsConfig mode, the Windows app', async () => {
    apply([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: DST } },
      ...['orders', 'stock'].map((name) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: DST }, spec: { ports: [{ name: 'http', port: 9080 }] } })),
    ]);
    const nsObj = m.namespace(NS, { 'wpgw.io/inject': 'enabled' }) as { metadata: Record<string, unknown> };
    apply([{ ...nsObj, metadata: { ...nsObj.metadata, annotations: { 'wpgw.io/resolver': 'dnsConfig', 'wpgw.io/gateway-replicas': '1' } } }]);
    await eventually(`Services wpgw and wpgw-dns in ${NS} with ClusterIPs`, () => clusterIP(NS, 'wpgw') && clusterIP(NS, 'wpgw-dns'));
    ip.gateway = clusterIP(NS, 'wpgw')!;
    ip.dns = clusterIP(NS, 'wpgw-dns')!;
    for (const d of ['orders', 'stock']) ip[d] = clusterIP(DST, d)!;
    await eventually(`default ServiceAccount in ${NS}`, () => getJson(['serviceaccount', 'default', '-n', NS]));
    apply(m.windowsApp('legacy', NS, OUTBOUND));
    for (const p of await runningPods(NS, 'wpgw-dns-', 2)) {
      await eventually(`CoreDNS of ${p.name} ready`, async () => (await callFrom(p.netns, { url: 'http://127.0.0.1:8181/ready', timeoutMs: 5000 })).status === 200);
    }
    await runningPods(NS, 'legacy-', 1);
    console.log(`[datapath] dns addresses: ${JSON.stringify(ip)}`);
  });
});

afterAll(async () => {
  await timed('dns: teardown', async () => {
    await runner?.stop().catch((e) => console.error(e));
    volumes?.stop();
    for (const p of procs.reverse()) await stopProc(p);
    await network?.down().catch((e) => console.error(e));
    await removeObjects();
  });
  console.log(`[datapath] timings: ${timings.map(([w, s]) => `${w} ${s.toFixed(1)}s`).join('; ')}`);
  console.log(`[datapath] dns logs kept in ${state}`);
});

describe('dnsConfig mode through the real CoreDNS', () => {
  it('6: the Windows pod resolves its declared names (wildcard too) to the gateway through wpgw-dns, everything else through cluster DNS', async () => {
    await timed('flow 6: names', async () => {
      const win = pod(NS, 'legacy-');
      // kubelet's resolv.conf from the dnsConfig the webhook injected: wpgw-dns only
      const resolv = readFileSync(join('/etc/netns', win.netns, 'resolv.conf'), 'utf8');
      expect(resolv.split('\n').filter((l) => l.startsWith('nameserver'))).toEqual([`nameserver ${ip.dns}`]);
      const gw = [ip.gateway!];
      // The pod may start before the controller's Corefile has its names: wait, then every form.
      await eventually('orders (declared) resolves to the gateway', async () => (await resolveIn(win.netns, `orders.${DST}.svc.cluster.local`)).addresses?.[0] === ip.gateway);
      const expectations: Array<[string, string[] | 'none']> = [
        [`orders.${DST}.svc.cluster.local`, gw],
        [`orders.${DST}`, gw], // the search path ends at the declared name
        ['a.partner.test', gw], // the wildcard, one label
        ['x.y.partner.test', gw], // and several
        ['api.example.test', gw],
        ['partner.test', 'none'], // "*.zone" does not cover the zone itself; upstream has no such name
        [`stock.${DST}`, [ip.stock!]], // undeclared: cluster DNS, its real ClusterIP
        ['kubernetes.default', [ip.kubernetes!]],
        [EXTERNAL.name, [EXTERNAL.ip]], // cluster DNS -> the node's resolver
      ];
      const got = await Promise.all(expectations.map(async ([name]) => resolveIn(win.netns, name)));
      expect(got.map((r, i) => [expectations[i]![0], r.ok ? r.addresses : 'none'])).toEqual(expectations);
      // No AAAA for a redirected wildcard name (an IPv6 answer could route around the gateway).
      expect(await resolveIn(win.netns, 'a.partner.test', { ip: ip.dns!, type: 'AAAA' })).toMatchObject({ ok: false, code: 'ENODATA' });

      // The undeclared name went wpgw-dns -> kube-dns ClusterIP (kube-proxy) -> cluster CoreDNS:
      // its log shows the query from a wpgw-dns pod address (kube-proxy keeps pod sources).
      const dnsPods = podsOf(runner!, NS, 'wpgw-dns-').map((p) => p.ip);
      const clusterLog = readFileSync(join(pod('kube-system', 'coredns-').dir, 'coredns.log'), 'utf8');
      const asked = [...clusterLog.matchAll(/\[INFO\] ([\d.]+):\d+ - \d+ "A IN stock\.dns-dst\.svc\.cluster\.local\. /g)].map((x) => x[1]);
      expect(asked.length, 'cluster DNS saw the undeclared name').toBeGreaterThan(0);
      expect(asked.every((a) => dnsPods.includes(a!)), `askers ${asked.join(',')} are wpgw-dns pods ${dnsPods.join(',')}`).toBe(true);
    });
  });

  it('6: a destination added to the namespace takes effect without restarting any pod (measured)', async () => {
    const win = pod(NS, 'legacy-');
    const dnsPods = podsOf(runner!, NS, 'wpgw-dns-');
    expect(await resolveIn(win.netns, ADDED.name), 'not yet declared: cluster DNS has no such name').toMatchObject({ ok: false });
    const t0 = Date.now();
    apply(m.windowsApp(ADDED.app, NS, ADDED.outbound));
    await eventually('the controller wrote the name into the wpgw-dns ConfigMap', () => corefileOf()?.includes(ADDED.name));
    const tConfigMap = Date.now();
    const files = dnsPods.map((p) => join(p.dir, 'volumes', 'config', 'Corefile'));
    await eventually('the Corefile files of the wpgw-dns pods have it', () => files.every((f) => readFileSync(f, 'utf8').includes(ADDED.name)));
    const tFile = Math.max(...files.map((f) => volumes!.written.get(f)!));
    // CoreDNS's reload plugin checks the file every 10 s (plus jitter): a long, generous deadline.
    await eventually('the running Windows pod resolves the added name to the gateway', async () => (await resolveIn(win.netns, ADDED.name)).addresses?.[0] === ip.gateway, 180_000);
    const tAnswer = Date.now();
    const s = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
    console.log(
      `[datapath] dnsConfig propagation: apply -> ConfigMap ${s(tConfigMap - t0)}, -> pod volume ${s(tFile - t0)}, -> answer in the running pod ${s(tAnswer - t0)} ` +
        `(CoreDNS reload ${s(tAnswer - tFile)}; a real kubelet adds up to ~60 s of ConfigMap volume refresh)`,
    );
    // Nothing restarted: the same Windows pod and wpgw-dns pods, their processes never exited.
    expect(pod(NS, 'legacy-').uid).toBe(win.uid);
    expect(podsOf(runner!, NS, 'wpgw-dns-').map((p) => p.uid).sort()).toEqual(dnsPods.map((p) => p.uid).sort());
    expect(dnsPods.flatMap((p) => p.procs).every(alive)).toBe(true);
    // Both wpgw-dns replicas answer it (the pod's resolver may pick either through the ClusterIP).
    for (const p of dnsPods) expect(await resolveIn(win.netns, ADDED.name, { ip: `${p.ip}:${DNS_CONTAINER_PORT}` })).toEqual({ ok: true, addresses: [ip.gateway] });
    const added = (await runningPods(NS, `${ADDED.app}-`, 1))[0]!;
    expect(await resolveIn(added.netns, ADDED.name)).toEqual({ ok: true, addresses: [ip.gateway] });
  });

  it('the pod runner started every pod it was given', () => {
    expect(runner!.errors).toEqual([]);
  });
});
