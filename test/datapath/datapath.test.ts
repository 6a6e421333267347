// Real bytes through real Envoy: the seed's flows through the wpgw, driven from plain manifests
// through the real wpgw webhook and controller, Istio's real injector, istiod, pilot-agent and
// upstream Envoy, the real kube-proxy, in network namespaces this suite makes (README.md here).
//
//   1. ingress gateway -> wpgw -> Windows app (mTLS hop with the ingress identity)
//   2. mesh app sidecar -> legacy.shop -> wpgw -> Windows app (caller identity; no plaintext, no
//      certificate-less TLS on the wpgw's inbound port)
//   3. Windows app -> orders.sales:9080 (hosts file, ClusterIP, kube-proxy) -> wpgw -> sidecar
//   4. Windows app -> external host: +tls origination (SNI, name check), tls:// passthrough, tcp://
//   5. no open proxy: undeclared Host/SNI, unmanaged and foreign pods, the other namespace's gateway
//   6. dnsConfig mode through wpgw-dns (real CoreDNS, the controller's Corefile)
//   7. the wpgw Service deleted: traffic again at the same address (the outage is printed)
//   wildcard (dnsConfig mode): the gateway keeps the Host the app used
//   9. no proxy rejected or failed a config update
//  10. shop opts out under continuous traffic both ways: failed requests per phase printed, none
//      until the Windows pod is replaced; after, its direct calls (and STRICT refusing them)
// The "Windows" pods are Linux processes on the windows-1 kwok node.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { accessLog, appLog, callFrom, eventually, podsOf, rid, timed, timings, type ClientResult } from './helpers.js';
import { resolveIn } from './dns-stack.js';
import { rulesFor, startKubeProxy } from './kube-proxy.js';
import { DNS_CONTAINER_PORT } from '../../src/core/desired/policy.js';
import * as m from './manifests.js';
import { Network } from './network.js';
import { alive, killStale, registerPids, startProc, stopProc, type Proc } from './procs.js';
import { PodRunner, RUNNER_LABEL, type RunningPod } from './runner.js';

const ROOT = resolve(import.meta.dirname, '../..');
const DP = join(ROOT, 'test/datapath');
const ISTIO = join(ROOT, 'test/istio');
const CLUSTER_DNS = '10.96.0.10';
const WPGW_SA = (ns: string) => `spiffe://cluster.local/ns/${ns}/sa/wpgw`;

let kubeconfig: string;
let kubectlBin: string;
let clusterState: string;
let state: string;
let network: Network | undefined;
let runner: PodRunner | undefined;
const procs: Proc[] = [];
let istioStarted = false;
let testCA: string;
const ip: Record<string, string> = {};

function kubectl(args: string[], input?: string): string {
  return execFileSync(kubectlBin, args, { env: { ...process.env, KUBECONFIG: kubeconfig }, input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}
const apply = (objs: unknown[]) => kubectl(['apply', '-f', '-'], objs.map((o) => stringify(o)).join('---\n'));
const json = (args: string[]) => JSON.parse(kubectl([...args, '-o', 'json'])) as any;
const script = (file: string, args: string[], env: Record<string, string> = {}) =>
  execFileSync('bash', [file, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60 * 60_000 });

function pod(ns: string, prefix: string): RunningPod {
  const p = podsOf(runner!, ns, prefix);
  if (p.length === 0) throw new Error(`no running pod ${ns}/${prefix}*`);
  return p[0]!;
}

/** The test CA (the gateways' "system" trust store) and the external host's certificate (EXT_HOST only). */
function makePki(dir: string): { ca: string; cert: string; key: string } {
  mkdirSync(dir, { recursive: true });
  const o = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  o(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key']);
  o(['req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', '2', '-subj', '/CN=wpgw datapath test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign', '-out', 'ca.crt']);
  o(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ext.key']);
  o(['req', '-new', '-key', 'ext.key', '-subj', `/CN=${m.EXT_HOST}`, '-out', 'ext.csr']);
  writeFileSync(join(dir, 'ext.ext'), `subjectAltName=DNS:${m.EXT_HOST}\nextendedKeyUsage=serverAuth\n`);
  o(['x509', '-req', '-in', 'ext.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-sha256', '-extfile', 'ext.ext', '-out', 'ext.crt']);
  return { ca: join(dir, 'ca.crt'), cert: readFileSync(join(dir, 'ext.crt'), 'utf8'), key: readFileSync(join(dir, 'ext.key'), 'utf8') };
}

async function proxyLive(p: RunningPod): Promise<boolean> {
  const r = await callFrom(p.netns, { url: `http://127.0.0.1:${p.adminPort}/ready`, timeoutMs: 5000 });
  return r.ok && r.status === 200 && (r.body ?? '').trim() === 'LIVE';
}

async function runningPods(ns: string, prefix: string, n: number): Promise<RunningPod[]> {
  return eventually(`${n} pod(s) ${ns}/${prefix}* running in the pod runner`, () => {
    const ps = podsOf(runner!, ns, prefix);
    return ps.length === n ? ps : undefined;
  });
}

/** The access-log entry of the request tagged `id` in any of these proxies. */
function accessEntry(proxies: RunningPod[], id: string): any | undefined {
  for (const p of proxies) {
    const e = accessLog(p).find((x) => x.id === id);
    if (e) return { ...e, pod: p.name };
  }
  return undefined;
}

beforeAll(async () => {
  // Network namespaces, veths, iptables and bind mounts need root (CI runs as root).
  if (process.getuid?.() !== 0) throw new Error('the data-path suite needs root: it creates network namespaces (run as root, or skip with --project e2e)');
  const e2e = inject('e2e');
  kubeconfig = e2e.kubeconfig;
  kubectlBin = e2e.kubectl;
  clusterState = dirname(kubeconfig);
  state = join(e2e.stateDir, 'datapath');
  rmSync(join(state, 'pods'), { recursive: true, force: true });
  mkdirSync(join(state, 'logs'), { recursive: true });
  // a run killed before its teardown leaves processes: stop them (only ours, by pid and path)
  const stale = killStale(join(state, 'pids'), ROOT);
  if (stale) console.log(`[datapath] stopped ${stale} process groups left by an earlier run`);
  registerPids(join(state, 'pids'));
  const harness = JSON.parse(readFileSync(join(clusterState, 'env.json'), 'utf8')) as Record<string, string>;

  await timed('install Envoy + packages (test/datapath/install.sh, cached)', () => script(join(DP, 'install.sh'), []));
  await timed('build istiod + pilot-agent (test/istio/build.sh, cached)', () => script(join(ISTIO, 'build.sh'), []));
  await timed('build CoreDNS (test/datapath/build.sh, cached)', () => script(join(DP, 'build.sh'), []));
  await timed('start istiod for the data path (ISTIO_DATAPATH=1, injector registered)', () => {
    script(join(ISTIO, 'start.sh'), [clusterState], { ISTIO_DATAPATH: '1', ISTIO_INJECTOR_REGISTER: '1' });
    istioStarted = true;
  });
  const istio = JSON.parse(readFileSync(join(clusterState, 'istio-env.json'), 'utf8')) as Record<string, string>;
  const pki = makePki(join(state, 'pki'));
  testCA = pki.ca;

  await timed('node network namespace + kube-proxy', async () => {
    network = new Network('wdp');
    await network.cleanupStale();
    await network.up(harness.HARNESS_SERVICE_CIDR!, [CLUSTER_DNS]);
    procs.push(
      ...startKubeProxy({
        kubeProxy: join(harness.HARNESS_BIN_DIR!, 'kube-proxy'),
        kubeconfig,
        apiPort: Number(harness.HARNESS_APISERVER_PORT),
        nodeNetns: network.node,
        stateDir: state,
        clusterCIDR: '10.244.0.0/16',
        nodeName: 'linux-1',
      }),
    );
    const kubernetesIP = json(['get', 'service', 'kubernetes', '-n', 'default']).spec.clusterIP as string;
    await eventually('kube-proxy programmed the kubernetes Service', async () => (await rulesFor(network!.node, kubernetesIP, 443)).length > 0, 120_000);
  });

  runner = new PodRunner({
    kubeconfig,
    stateDir: state,
    network: network!,
    podEtc: { 'ssl/certs/ca-certificates.crt': readFileSync(pki.ca, 'utf8') },
    coredns: join(DP, 'bin/coredns'),
    proxy: {
      agent: istio.ISTIO_PILOT_AGENT!,
      envoy: join(DP, 'bin/envoy'),
      discoveryAddress: istio.ISTIO_XDS_TLS_ADDRESS!,
      istiodCA: istio.ISTIO_WEBHOOK_CA!,
      bootstrapTemplate: join(execFileSync('go', ['list', '-m', '-f', '{{.Dir}}', 'istio.io/istio'], { cwd: ISTIO, encoding: 'utf8' }).trim(), 'tools/packaging/common/envoy_bootstrap.json'),
      systemCA: pki.ca,
    },
  });
  runner.start();

  await timed('external host + its DNS', async () => {
    apply([m.namespace(m.EXTERNAL, {})]);
    await eventually('default ServiceAccount in external', () => json(['get', 'serviceaccount', 'default', '-n', m.EXTERNAL]));
    apply(m.externalHost(pki.cert, pki.key));
    const ext = (await runningPods(m.EXTERNAL, 'ext-', 1))[0]!;
    ip.ext = ext.ip;
    const records = { [m.EXT_HOST]: ext.ip, [m.WRONG_HOST]: ext.ip, [m.TCP_HOST]: ext.ip, [m.WILDCARD]: ext.ip };
    procs.push(
      startProc('dns', 'ip', ['netns', 'exec', network!.node, process.execPath, join(DP, 'apps/dns.mjs')], {
        log: join(state, 'logs', 'dns.log'),
        env: { ...process.env, DNS_RECORDS: JSON.stringify(records), DNS_BIND: `${CLUSTER_DNS}:53` },
      }),
    );
  });

  await timed('mesh side: sales/orders (sidecar), ingress gateway', async () => {
    apply([m.namespace(m.SALES, { 'istio-injection': 'enabled' })]);
    kubectl(['label', 'namespace', m.ISTIO_NS, `${RUNNER_LABEL}=enabled`, '--overwrite']);
    await eventually('default ServiceAccount in sales', () => json(['get', 'serviceaccount', 'default', '-n', m.SALES]));
    apply(m.meshApp());
    apply(m.ingressGateway());
  });

  await timed('opted-in namespaces shop, depot (controller brings up each wpgw)', async () => {
    // one gateway replica each (CPU); depot also runs wpgw-dns, so its Windows pod can use dnsConfig
    for (const [ns, app, outbound, dnsServer] of [
      [m.SHOP, 'legacy', m.SHOP_OUTBOUND, false],
      [m.DEPOT, 'ledger', m.DEPOT_OUTBOUND, true],
    ] as const) {
      const nsObj = m.namespace(ns, { 'wpgw.io/inject': 'enabled' }) as { metadata: Record<string, unknown> };
      const annotations = { 'wpgw.io/gateway-replicas': '1', ...(dnsServer ? { 'wpgw.io/dns-server': 'enabled' } : {}) };
      apply([{ ...nsObj, metadata: { ...nsObj.metadata, annotations } }]);
      await eventually(`Service wpgw in ${ns} with a ClusterIP`, () => json(['get', 'service', 'wpgw', '-n', ns]).spec?.clusterIP);
      if (dnsServer) await eventually(`Service wpgw-dns in ${ns}`, () => json(['get', 'service', 'wpgw-dns', '-n', ns]).spec?.clusterIP);
      apply(m.windowsApp(app, ns, outbound, dnsServer ? 'dnsConfig' : undefined));
    }
    apply([m.unmanagedLinuxPod('shop-linux', m.SHOP)]);
  });

  await timed('every pod running, every Envoy LIVE', async () => {
    const proxies = [
      ...(await runningPods(m.SHOP, 'wpgw-', 1)),
      ...(await runningPods(m.DEPOT, 'wpgw-', 1)),
      ...(await runningPods(m.SALES, 'orders-', 1)),
      ...(await runningPods(m.ISTIO_NS, 'istio-ingressgateway-', 1)),
    ];
    await runningPods(m.SHOP, 'legacy-', 1);
    await runningPods(m.SHOP, 'shop-linux-', 1);
    await runningPods(m.DEPOT, 'ledger-', 1);
    for (const p of proxies) {
      expect(p.adminPort, `${p.namespace}/${p.name} has an istio-proxy container (injected by Istio)`).toBeDefined();
      await eventually(`Envoy of ${p.namespace}/${p.name} LIVE`, async () => {
        const dead = p.procs.find((x) => !alive(x));
        if (dead) throw new Error(`${dead.name} exited; its log: ${dead.log}\n${readFileSync(dead.log, 'utf8').split('\n').slice(-15).join('\n')}`);
        return proxyLive(p);
      });
    }
    for (const ns of [m.SHOP, m.DEPOT]) ip[`wpgw.${ns}`] = json(['get', 'service', 'wpgw', '-n', ns]).spec.clusterIP;
    ip.ingress = json(['get', 'service', 'istio-ingressgateway', '-n', m.ISTIO_NS]).spec.clusterIP;
    console.log(`[datapath] addresses: ${JSON.stringify(ip)}`);
  });
});

afterAll(async () => {
  await timed('teardown', async () => {
    await runner?.stop().catch((e) => console.error(e));
    for (const p of procs.reverse()) await stopProc(p);
    await network?.down().catch((e) => console.error(e));
    if (istioStarted) script(join(ISTIO, 'stop.sh'), [clusterState]);
  });
  console.log(`[datapath] timings: ${timings.map(([w, s]) => `${w} ${s.toFixed(1)}s`).join('; ')}`);
  console.log(`[datapath] logs kept in ${state}`);
});

/** Calls until the answer satisfies `good` (config propagation), then returns it. */
async function until(what: string, call: () => Promise<ClientResult>, good: (r: ClientResult) => boolean): Promise<ClientResult> {
  return eventually(what, async () => {
    const r = await call();
    return good(r) ? r : (undefined as unknown as ClientResult);
  });
}

describe('data path through real Envoy', () => {
  it('1: ingress gateway -> wpgw -> Windows app, the wpgw hop mTLS with the ingress identity', async () => {
    await timed('flow 1', async () => {
      const id = rid('f1');
      const r = await until('the ingress answers for its host', () => callFrom(network!.node, { url: `http://${ip.ingress}/`, headers: { host: m.INGRESS_HOST, 'x-dp-id': id } }), (x) => x.status === 200);
      expect(r.json?.pod).toMatch(/^legacy-/);
      expect(r.headers?.['x-echo-pod']).toMatch(/^legacy-/);
      const wpgw = podsOf(runner!, m.SHOP, 'wpgw-');
      const hop = await eventually('the wpgw logged the request', () => accessEntry(wpgw, id), 30_000);
      expect(hop.peer).toBe('spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway');
      expect(hop.local_san).toBe(WPGW_SA(m.SHOP));
      expect(hop.down_tls).toMatch(/^TLSv1\.[23]$/);
      const ingress = await eventually('the ingress logged the request', () => accessEntry([pod(m.ISTIO_NS, 'istio-ingressgateway-')], id), 30_000);
      expect(ingress.up_peer).toBe(WPGW_SA(m.SHOP));
    });
  });

  it('2: mesh app sidecar -> legacy.shop -> wpgw -> Windows app; plaintext and certificate-less TLS refused', async () => {
    await timed('flow 2', async () => {
      const orders = pod(m.SALES, 'orders-');
      const id = rid('f2');
      const r = await until(
        'the sidecar reaches legacy.shop through the wpgw',
        () => callFrom(orders.netns, { url: 'http://127.0.0.1:8080/', headers: { host: `legacy.${m.SHOP}.svc.cluster.local:8080`, 'x-dp-id': id } }),
        (x) => x.status === 200,
      );
      expect(r.json?.pod).toMatch(/^legacy-/);
      const hop = await eventually('the wpgw logged the request', () => accessEntry(podsOf(runner!, m.SHOP, 'wpgw-'), id), 30_000);
      expect(hop.peer).toBe(`spiffe://cluster.local/ns/${m.SALES}/sa/orders`);
      expect(hop.down_tls).toMatch(/^TLSv1\.[23]$/);

      // The wpgw's inbound port for legacy (the re-pointed Service's targetPort), dialled directly.
      const inboundPort = json(['get', 'service', 'legacy', '-n', m.SHOP]).spec.ports[0].targetPort as number;
      const gw = pod(m.SHOP, 'wpgw-');
      const plain = await callFrom(orders.netns, { url: `http://${gw.ip}:${inboundPort}/`, headers: { host: `legacy.${m.SHOP}.svc.cluster.local` } });
      expect(plain.status, `plaintext answered: ${JSON.stringify(plain)}`).toBeUndefined();
      expect(plain.ok).toBe(false);
      const noCert = await callFrom(orders.netns, { tls: { host: gw.ip, port: inboundPort, servername: `legacy.${m.SHOP}.svc.cluster.local` } });
      expect(noCert.status, `TLS without a client certificate answered: ${JSON.stringify(noCert)}`).toBeUndefined();
      expect(noCert.ok).toBe(false);
    });
  });

  it('3: Windows app -> orders.sales:9080 (hosts file, ClusterIP, kube-proxy) -> wpgw -> sidecar, every injected name form', async () => {
    await timed('flow 3', async () => {
      const legacy = pod(m.SHOP, 'legacy-');
      const hosts = readFileSync(join('/etc/netns', legacy.netns, 'hosts'), 'utf8');
      expect(hosts).toContain(`${ip[`wpgw.${m.SHOP}`]}\t`);
      for (const name of [`orders.${m.SALES}`, `orders.${m.SALES}.svc`, `orders.${m.SALES}.svc.cluster.local`]) {
        const id = rid('f3');
        const r = await until(`${name}:9080 from the Windows app`, () => callFrom(legacy.netns, { url: `http://${name}:9080/`, headers: { 'x-dp-id': id } }), (x) => x.status === 200);
        expect(r.json?.pod, name).toMatch(/^orders-/);
        // The sidecar's inbound saw mTLS from the wpgw (XFCC as Istio's sidecar sets it).
        expect(r.json?.headers?.['x-forwarded-client-cert'], name).toContain(`URI=${WPGW_SA(m.SHOP)}`);
        const hop = await eventually('the wpgw logged the request', () => accessEntry(podsOf(runner!, m.SHOP, 'wpgw-'), id), 30_000);
        // kube-proxy DNAT kept the pod's own address: what the AuthorizationPolicy ipBlocks match.
        expect(hop.downstream.split(':')[0], `${name}: source address at the wpgw`).toBe(legacy.ip);
        expect(hop.up_peer, name).toBe(`spiffe://cluster.local/ns/${m.SALES}/sa/orders`);
      }
    });
  });

  it('4: Windows app -> external host: +tls origination with SNI, wrong name 503, tls:// passthrough, tcp://', async () => {
    await timed('flow 4', async () => {
      const legacy = pod(m.SHOP, 'legacy-');
      const ext = pod(m.EXTERNAL, 'ext-');
      const id = rid('f4');
      const r = await until(`http://${m.EXT_HOST}/ (+tls)`, () => callFrom(legacy.netns, { url: `http://${m.EXT_HOST}/`, headers: { 'x-dp-id': id } }), (x) => x.status === 200);
      expect(r.json?.tls).toBe(true);
      expect(r.json?.sni).toBe(m.EXT_HOST);
      expect(r.json?.local).toMatch(/:443$/);
      expect(r.json?.headers?.['x-dp-id']).toBe(id);

      const wrongId = rid('f4w');
      const w = await until(`http://${m.WRONG_HOST}/ (+tls, certificate for another name)`, () => callFrom(legacy.netns, { url: `http://${m.WRONG_HOST}/`, headers: { 'x-dp-id': wrongId } }), (x) => x.status !== undefined);
      expect(w.status).toBe(503);
      expect(appLog(ext).filter((e) => e.event === 'request' && e.headers?.['x-dp-id'] === wrongId), 'no request reached the server').toEqual([]);
      expect(appLog(ext).some((e) => e.event === 'client-hello' && e.sni === m.WRONG_HOST), 'the wpgw offered SNI wrong.test').toBe(true);
      expect(appLog(ext).some((e) => e.event === 'tls' && e.sni === m.WRONG_HOST), 'and no handshake with that name completed').toBe(false);

      const pass = await until(`tls://${m.EXT_HOST}:8443 passthrough`, () => callFrom(legacy.netns, { tls: { host: m.EXT_HOST, port: 8443, servername: m.EXT_HOST, ca: testCA } }), (x) => x.status === 200);
      expect(pass.authorized, 'the app verified the server itself (end-to-end TLS)').toBe(true);
      expect(pass.json?.sni).toBe(m.EXT_HOST);
      expect(pass.json?.local).toMatch(/:8443$/);

      const data = rid('bytes');
      const tcp = await until(`tcp://${m.TCP_HOST}:9000`, () => callFrom(legacy.netns, { tcp: { host: m.TCP_HOST, port: 9000, data } }), (x) => (x.body ?? '').includes(data));
      expect(tcp.body).toMatch(new RegExp(`^tcp-echo ${ext.name} ${data}`));
    });
  });

  it('5: never an open proxy: undeclared Host/SNI, unmanaged and foreign pods, the other namespace`s gateway', async () => {
    await timed('flow 5', async () => {
      const legacy = pod(m.SHOP, 'legacy-');
      const shopGw = ip[`wpgw.${m.SHOP}`]!;
      const depotGw = ip[`wpgw.${m.DEPOT}`]!;
      const ordersHost = { host: `orders.${m.SALES}.svc.cluster.local:9080` };
      // declared and allowed, as the baseline for the refusals below
      expect((await callFrom(legacy.netns, { url: `http://${shopGw}:9080/`, headers: ordersHost })).status).toBe(200);

      const evil = rid('f5');
      const undeclared = await callFrom(legacy.netns, { url: `http://${shopGw}:9080/`, headers: { host: 'evil.example.com', 'x-dp-id': evil } });
      // refused by the authz hosts (403) or by the routes (404): either way no upstream
      expect([403, 404]).toContain(undeclared.status);
      const entry = await eventually('the wpgw logged the undeclared request', () => accessEntry(podsOf(runner!, m.SHOP, 'wpgw-'), evil), 30_000);
      expect(entry.upstream).toBe('-');
      const sni = await callFrom(legacy.netns, { tls: { host: shopGw, port: 8443, servername: 'evil.test' } });
      expect(sni.ok, `undeclared SNI: ${JSON.stringify(sni)}`).toBe(false);
      expect(appLog(pod(m.EXTERNAL, 'ext-')).some((e) => e.sni === 'evil.test')).toBe(false);

      const unmanaged = await callFrom(pod(m.SHOP, 'shop-linux-').netns, { url: `http://${shopGw}:9080/`, headers: ordersHost });
      expect(unmanaged.status, 'an unmanaged pod of shop').toBe(403);
      const foreign = await callFrom(pod(m.SALES, 'orders-').netns, { url: `http://${shopGw}:9080/`, headers: ordersHost });
      expect(foreign.status, 'a pod of another namespace').toBe(403);
      const ledger = pod(m.DEPOT, 'ledger-');
      expect((await until('depot`s own gateway serves ledger', () => callFrom(ledger.netns, { url: `http://${depotGw}:9080/`, headers: ordersHost }), (x) => x.status === 200)).status).toBe(200);
      expect((await callFrom(ledger.netns, { url: `http://${shopGw}:9080/`, headers: ordersHost })).status, 'depot -> shop`s gateway').toBe(403);
      expect((await callFrom(legacy.netns, { url: `http://${depotGw}:9080/`, headers: ordersHost })).status, 'shop -> depot`s gateway').toBe(403);
      const tcpForeign = await callFrom(ledger.netns, { tcp: { host: shopGw, port: 9000, data: 'x' } });
      expect(tcpForeign.body ?? '', 'depot on shop`s tcp port').not.toContain('tcp-echo');
    });
  });

  it('wildcard (dnsConfig mode): *.zone.test reaches the server with the name the app used', async () => {
    await timed('wildcard', async () => {
      const ledger = pod(m.DEPOT, 'ledger-');
      // dnsConfig mode: kubelet's resolv.conf from what the webhook injected points at wpgw-dns.
      // (wpgw-dns itself, CoreDNS, is not run here: the app dials the gateway address it would answer.)
      const dnsIP = json(['get', 'service', 'wpgw-dns', '-n', m.DEPOT]).spec.clusterIP as string;
      expect(readFileSync(join('/etc/netns', ledger.netns, 'resolv.conf'), 'utf8')).toMatch(new RegExp(`^nameserver ${dnsIP.replace(/\./g, '\\.')}$`, 'm'));
      const name = 'api.zone.test';
      const r = await until(`${name} through depot's wpgw`, () => callFrom(ledger.netns, { url: `http://${ip[`wpgw.${m.DEPOT}`]}/`, headers: { host: name } }), (x) => x.status === 200);
      expect(r.json?.pod).toMatch(/^ext-/);
      expect(r.json?.headers?.host).toBe(name);
      const other = await callFrom(ledger.netns, { url: `http://${ip[`wpgw.${m.DEPOT}`]}/`, headers: { host: 'api.other.test' } });
      expect(other.status, 'a name outside the wildcard').not.toBe(200);
    });
  });

  it('6: dnsConfig mode: wpgw-dns (real CoreDNS, the controller`s Corefile) answers declared names with the gateway, the rest upstream; a new destination needs no pod restart', async () => {
    await timed('flow 6', async () => {
      const ledger = pod(m.DEPOT, 'ledger-');
      const gw = ip[`wpgw.${m.DEPOT}`]!;
      const resolve = (name: string) => callFrom(ledger.netns, { resolve: name });
      const declared = [`orders.${m.SALES}.svc.cluster.local`, 'api.zone.test', 'deep.api.zone.test'];
      // Each wpgw-dns replica reloads the Corefile on its own timer (up to ~15 s apart), and the
      // Service picks one at random: wait until every replica answers, not just the first.
      await eventually(`every wpgw-dns pod in ${m.DEPOT} answers ${declared.join(', ')} with the gateway`, async () => {
        const replicas = podsOf(runner!, m.DEPOT, 'wpgw-dns-');
        if (replicas.length === 0) return false;
        const answers = await Promise.all(replicas.flatMap((p) => declared.map((n) => resolveIn(p.netns, n, { ip: `${p.ip}:${DNS_CONTAINER_PORT}` }))));
        return answers.every((a) => a.ok && a.addresses?.length === 1 && a.addresses[0] === gw);
      });
      for (const name of declared) {
        const r = await until(`${name} resolves through wpgw-dns`, () => resolve(name), (x) => x.ok);
        expect(r.addresses, name).toEqual([gw]);
      }
      // not declared: forwarded upstream (the harness's DNS stand-in), not the gateway
      expect((await resolve(m.EXT_HOST)).addresses).toEqual([ip.ext]);
      expect((await resolve('zone.test')).ok, 'the wildcard covers subdomains only').toBe(false);
      // by name, end to end: the pod's resolver -> ClusterIP -> kube-proxy -> CoreDNS, then the gateway
      const byName = await until('http://api.zone.test/ by name', () => callFrom(ledger.netns, { url: 'http://api.zone.test/' }), (x) => x.status === 200);
      expect(byName.json?.headers?.host).toBe('api.zone.test');
      const orders = await until('orders by name', () => callFrom(ledger.netns, { url: `http://orders.${m.SALES}.svc.cluster.local:9080/` }), (x) => x.status === 200);
      expect(orders.json?.pod).toMatch(/^orders-/);

      // Another Windows app of the namespace declares new.test: the running pod resolves it to the
      // gateway once the controller rewrote the Corefile and CoreDNS reloaded it; no restart.
      const uid = ledger.uid;
      expect((await resolve('new.test')).ok).toBe(false);
      const t0 = Date.now();
      apply(m.windowsApp('ledger-new', m.DEPOT, 'new.test:80', 'dnsConfig'));
      const r = await until('new.test resolves to the gateway', () => resolve('new.test'), (x) => x.ok && x.addresses?.[0] === gw);
      expect(r.addresses).toEqual([gw]);
      expect(pod(m.DEPOT, 'ledger-').uid, 'the same pod').toBe(uid);
      console.log(`[datapath] flow 6: a new destination resolved to the gateway ${((Date.now() - t0) / 1000).toFixed(1)}s after the apply (CoreDNS reload 10s)`);
    });
  });

  it('7: after the wpgw Service is deleted, the Windows app reaches orders again at the same address', async () => {
    await timed('flow 7', async () => {
      const legacy = pod(m.SHOP, 'legacy-');
      const before = json(['get', 'service', 'wpgw', '-n', m.SHOP]).spec.clusterIP as string;
      const call = () => callFrom(legacy.netns, { url: `http://orders.${m.SALES}:9080/`, timeoutMs: 3000 });
      expect((await call()).status).toBe(200);
      kubectl(['delete', 'service', 'wpgw', '-n', m.SHOP, '--wait=true']);
      const t0 = Date.now();
      let failed = 0;
      let lastFailure = t0;
      await eventually('the Windows app reaches orders again', async () => {
        const r = await call();
        if (r.status === 200) return true;
        failed++;
        lastFailure = Date.now();
        return false;
      });
      // The hosts file still holds the old address: only the same ClusterIP can bring traffic back.
      expect(json(['get', 'service', 'wpgw', '-n', m.SHOP]).spec.clusterIP).toBe(before);
      console.log(`[datapath] flow 7: after deleting Service wpgw, ${failed} calls failed over ${((lastFailure - t0) / 1000).toFixed(1)}s; recovered ${((Date.now() - t0) / 1000).toFixed(1)}s after the delete`);
    });
  });

  it('9: no proxy rejected or failed a config update', async () => {
    await timed('flow 9', async () => {
      expect(runner!.errors, 'every pod the runner saw started').toEqual([]);
      const proxies = [...runner!.pods.values()].filter((p) => p.adminPort !== undefined);
      expect(proxies.length).toBeGreaterThanOrEqual(4);
      for (const p of proxies) {
        const r = await callFrom(p.netns, { url: `http://127.0.0.1:${p.adminPort}/stats?filter=update_(rejected|failure)$` });
        expect(r.status).toBe(200);
        const counters = (r.body ?? '').trim().split('\n').filter(Boolean);
        expect(counters.length, `${p.name}: counters present`).toBeGreaterThan(0);
        const bad = counters.filter((l) => !/: 0$/.test(l));
        expect(bad, `${p.namespace}/${p.name}`).toEqual([]);
      }
    });
  });

  it('10: opting shop out: no failed request either way until the Windows pod is replaced (per phase); after it, direct calls, refused under STRICT', async () => {
    await timed('flow 10', async () => {
      const orders = pod(m.SALES, 'orders-');
      const oldWin = pod(m.SHOP, 'legacy-');
      const ordersIP = json(['get', 'service', 'orders', '-n', m.SALES]).spec.clusterIP as string;
      // The phase: the newest OptingOut Event the controller wrote (core/restore.ts's order).
      const PHASES: Array<[RegExp, string]> = [[/labelling the gateway/, 'gateway'], [/caller-side/, 'callers'], [/restoring Services/, 'services'], [/waiting for/, 'pods'], [/deleting the gateway/, 'cleanup'], [/done:/, 'done']];
      const phaseNow = (): string => {
        const evs = (json(['get', 'events', '-n', m.SHOP, '--field-selector', 'reason=OptingOut']).items as any[]).sort((a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion));
        const last = evs.at(-1)?.message as string | undefined;
        return last ? (PHASES.find(([re]) => re.test(last))?.[1] ?? 'opting out') : 'opted in';
      };
      const counts = new Map<string, { ok: number; failed: number; unready: number; errors: string[] }>();
      const record = (dir: string, ph: string, r: ClientResult, unready = false) => {
        const key = `${dir} ${ph}`;
        const c = counts.get(key) ?? { ok: 0, failed: 0, unready: 0, errors: [] };
        if (r.status === 200) c.ok++;
        else {
          c.failed++;
          if (unready) c.unready++;
          if (c.errors.length < 3) c.errors.push(r.status ? `HTTP ${r.status}` : (r.error ?? 'no answer'));
        }
        counts.set(key, c);
      };
      // kwok reports a pod Ready the moment it has an address, so kube-proxy sends to a new gateway
      // pod before the runner has its network or its Envoy up; a kubelet's readiness probe would
      // keep it out of the endpoints until it serves. A failure while such a pod exists is counted
      // apart (and printed); every other failure counts against the product.
      const gatewayUnready = async (): Promise<boolean> => {
        const pods = json(['get', 'pods', '-n', m.SHOP, '-l', `wpgw.io/gateway=${m.SHOP}`]).items as any[];
        for (const p of pods.filter((x) => !x.metadata.deletionTimestamp && x.status?.podIP)) {
          const rp = runner!.pods.get(p.metadata.uid);
          if (!rp || !(await proxyLive(rp).catch(() => false))) return true;
        }
        return false;
      };
      // A call whose pod's network namespace went away mid-call (teardown) counts as a failure.
      const call = (netns: string, req: Parameters<typeof callFrom>[1]): Promise<ClientResult> => callFrom(netns, req).catch((e: Error) => ({ ok: false, error: e.message.split('\n')[0]!.slice(0, 120) }));
      let phase = 'opted in';
      let stop = false;
      const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));
      const poller = (async () => {
        while (!stop) {
          try {
            phase = phaseNow();
          } catch {
            // a slow API server: keep the last phase
          }
          await sleep(300);
        }
      })();
      // Mesh client -> legacy.shop (its sidecar, whatever endpoints istiod gives it).
      const inbound = (async () => {
        while (!stop) {
          const ph = phase;
          record('inbound ', ph, await call(orders.netns, { url: 'http://127.0.0.1:8080/', headers: { host: `legacy.${m.SHOP}.svc.cluster.local:8080` }, timeoutMs: 5000 }));
        }
      })();
      // The Windows app -> orders.sales by name (its hosts file) while it runs; then the pod that
      // replaced it, at orders' ClusterIP (what cluster DNS would answer; this suite's DNS stand-in has no Service names).
      // Replaced: deleted (it runs out its termination grace meanwhile, as with a kubelet).
      const replaced = () => {
        const rp = runner!.pods.get(oldWin.uid);
        return !rp || rp.terminating === true;
      };
      let isReplaced = false;
      const outbound = (async () => {
        while (!stop) {
          const ph = phase;
          isReplaced ||= replaced();
          if (!isReplaced) {
            const r = await call(oldWin.netns, { url: `http://orders.${m.SALES}:9080/`, timeoutMs: 5000 });
            record('outbound', ph, r, r.status !== 200 && (await gatewayUnready()));
            continue;
          }
          const next = podsOf(runner!, m.SHOP, 'legacy-').find((p) => p.uid !== oldWin.uid && !p.terminating);
          if (!next) {
            await sleep(200);
            continue;
          }
          record('outbound', `${ph}, replaced pod`, await call(next.netns, { url: `http://${ordersIP}:9080/`, timeoutMs: 5000 }));
        }
      })();
      // kwok marks a pod Ready the moment it runs, before the runner has its Envoy or app serving;
      // a kubelet would wait for their readiness probes. minReadySeconds stands in for those
      // probes, so rollouts replace a pod only once its successor serves (set by another field
      // manager than the controller's: its server-side apply leaves the field alone).
      // (An Envoy here takes up to tens of seconds to go LIVE on a loaded machine.)
      for (const [d, secs] of [['wpgw', 30], ['legacy', 10]] as const) kubectl(['patch', 'deployment', d, '-n', m.SHOP, '--type', 'merge', '-p', JSON.stringify({ spec: { minReadySeconds: secs } })]);
      // kwok deletes a pod at once, while kube-proxy and istiod still send to it for a moment; a
      // kubelet gives it terminationGracePeriodSeconds (Envoy drains for 5 s): so does the runner here.
      runner!.terminationGraceMs = 5000;
      await sleep(3000); // a baseline while still opted in
      const t0 = Date.now();
      kubectl(['label', 'namespace', m.SHOP, 'wpgw.io/inject-']);
      const gatewayGone = () => {
        try {
          kubectl(['get', 'deployment', 'wpgw', '-n', m.SHOP]);
          return false;
        } catch {
          return true;
        }
      };
      try {
        // The last step: the gateway and the rest deleted (no Event follows once nothing is left).
        await eventually('shop handed back: OptingOut cleanup, the gateway deleted', () => (phase === 'cleanup' || phase === 'done') && gatewayGone(), 300_000);
        await eventually('requests from the replaced pod', () => [...counts.keys()].some((k) => k.includes('replaced pod')), 60_000);
        await sleep(3000);
      } finally {
        stop = true;
        await Promise.all([poller, inbound, outbound]);
        runner!.terminationGraceMs = 0;
        const took = (Date.now() - t0) / 1000;
        console.log(`[datapath] flow 10: opt-out of ${m.SHOP} took ${took.toFixed(1)}s; requests per phase (ok/failed):`);
        for (const [k, c] of counts) {
          const unready = c.unready ? `, ${c.unready} of them while a new gateway pod kwok called Ready was not serving yet` : '';
          console.log(`[datapath] flow 10:   ${k}: ${c.ok}/${c.failed}${c.errors.length ? ` (${c.errors.join('; ')}${unready})` : ''}`);
        }
      }
      const failed = (pred: (k: string) => boolean) => [...counts].filter(([k]) => pred(k)).reduce((n, [, c]) => n + c.failed - c.unready, 0);
      expect([...counts.keys()].some((k) => k.startsWith('inbound ') && !k.endsWith('opted in')), 'inbound requests ran during the opt-out').toBe(true);
      expect(failed((k) => k.startsWith('inbound ')), 'failed inbound requests during the whole opt-out').toBe(0);
      expect(failed((k) => k.startsWith('outbound') && !k.includes('replaced pod')), 'failed outbound requests until the Windows pod was replaced').toBe(0);
      // The Service is the user's again, and nothing of wpgw serves shop any more.
      expect(json(['get', 'service', 'legacy', '-n', m.SHOP]).spec.selector).toEqual({ app: 'legacy' });

      // After: the replaced pod calls orders directly, without mTLS. PERMISSIVE (the default) takes
      // it; STRICT refuses it, as README's "Leaving the mesh is explicit" says.
      const next = podsOf(runner!, m.SHOP, 'legacy-').find((p) => p.uid !== oldWin.uid && !p.terminating)!;
      const direct = () => callFrom(next.netns, { url: `http://${ordersIP}:9080/`, timeoutMs: 5000 });
      const permissive = await direct();
      apply([{ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: { name: 'default', namespace: m.SALES }, spec: { mtls: { mode: 'STRICT' } } }]);
      try {
        const strict = await until('STRICT reaches orders` sidecar', direct, (x) => x.status !== 200);
        console.log(`[datapath] flow 10: the replaced Windows pod -> orders directly: PERMISSIVE ${permissive.status ?? permissive.error}, STRICT ${strict.status ?? strict.error}`);
        expect(permissive.status).toBe(200);
        expect(strict.status).not.toBe(200);
      } finally {
        kubectl(['delete', 'peerauthentication', 'default', '-n', m.SALES, '--ignore-not-found']);
      }
    });
  }, 600_000);
});
