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
//  10. the user's own Istio policies at the wpgw hop: 90/10 between two Windows versions, an injected
//      abort, a retry seen at the app; a caller-side DR for legacy without tls keeps callers on mTLS
//  11. the user's DENY AuthorizationPolicy for legacy (targetRefs): 403 for the denied principal, 200
//      for another; a second Service on the same gateway and the Windows egress keep working
//   9. no proxy rejected or failed a config update
// The "Windows" pods are Linux processes on the windows-1 kwok node.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { accessLog, appLog, callFrom, eventually, podsOf, rid, timed, type ClientResult } from './helpers.js';
import { resolveIn } from './dns-stack.js';
import { DNS_CONTAINER_PORT } from '../../src/core/desired/policy.js';
import * as m from './manifests.js';
import { CLUSTER_DNS, meshPod, proxiesLive, runningMeshPods, useMeshStack } from './mesh-stack.js';
import { startProc } from './procs.js';
import { RUNNER_LABEL, type RunningPod } from './runner.js';

const DP = resolve(import.meta.dirname);
const WPGW_SA = (ns: string) => `spiffe://cluster.local/ns/${ns}/sa/wpgw`;

const s = useMeshStack({ tag: 'wdp', dir: 'datapath' });
const ip: Record<string, string> = {};
let network: typeof s.network;
let runner: typeof s.runner;
let testCA: string;

function kubectl(args: string[], input?: string): string {
  return execFileSync(inject('e2e').kubectl, args, { env: { ...process.env, KUBECONFIG: s.kubeconfig }, input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}
const apply = (objs: unknown[]) => kubectl(['apply', '-f', '-'], objs.map((o) => stringify(o)).join('---\n'));
const json = (args: string[]) => JSON.parse(kubectl([...args, '-o', 'json'])) as any;
const pod = (ns: string, prefix: string): RunningPod => meshPod(s, ns, prefix);
const runningPods = (ns: string, prefix: string, n: number) => runningMeshPods(s, ns, prefix, n);

/** The access-log entry of the request tagged `id` in any of these proxies. */
function accessEntry(proxies: RunningPod[], id: string): any | undefined {
  for (const p of proxies) {
    const e = accessLog(p).find((x) => x.id === id);
    if (e) return { ...e, pod: p.name };
  }
  return undefined;
}

beforeAll(async () => {
  network = s.network;
  runner = s.runner;
  testCA = s.pki.ca;

  await timed('external host + its DNS', async () => {
    apply([m.namespace(m.EXTERNAL, {})]);
    await eventually('default ServiceAccount in external', () => json(['get', 'serviceaccount', 'default', '-n', m.EXTERNAL]));
    apply(m.externalHost(s.pki.cert, s.pki.key));
    const ext = (await runningPods(m.EXTERNAL, 'ext-', 1))[0]!;
    ip.ext = ext.ip;
    const records = { [m.EXT_HOST]: ext.ip, [m.WRONG_HOST]: ext.ip, [m.TCP_HOST]: ext.ip, [m.WILDCARD]: ext.ip };
    s.procs.push(
      startProc('dns', 'ip', ['netns', 'exec', network.node, process.execPath, join(DP, 'apps/dns.mjs')], {
        log: join(s.state, 'logs', 'dns.log'),
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
      // shop's legacy is version v1 of two (flow 10 adds v2 and the user's own Istio policies)
      apply(m.windowsApp(app, ns, outbound, dnsServer ? 'dnsConfig' : undefined, ns === m.SHOP ? { version: 'v1' } : {}));
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
    await proxiesLive(proxies);
    for (const ns of [m.SHOP, m.DEPOT]) ip[`wpgw.${ns}`] = json(['get', 'service', 'wpgw', '-n', ns]).spec.clusterIP;
    ip.ingress = json(['get', 'service', 'istio-ingressgateway', '-n', m.ISTIO_NS]).spec.clusterIP;
    console.log(`[datapath] addresses: ${JSON.stringify(ip)}`);
  });
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

  it("10: the user's Istio policies act at the wpgw hop: 90/10 split, injected abort, retries at the app; callers keep mTLS", async () => {
    await timed('flow 10', async () => {
      apply([m.windowsVersion('legacy', m.SHOP, 'v2'), ...m.userPolicies('legacy', m.SHOP)]);
      const v2 = (await runningPods(m.SHOP, 'legacy-v2-', 1))[0]!;
      const v1 = pod(m.SHOP, 'legacy-');
      const orders = pod(m.SALES, 'orders-');
      const url = 'http://127.0.0.1:8080/';
      const host = `legacy.${m.SHOP}.svc.cluster.local:8080`;
      // The controller's root hands over to the delegate once it sees it; istiod then pushes.
      const aborted = await until('the injected abort answers 418', () => callFrom(orders.netns, { url, headers: { host, 'x-dp-fault': 'abort' } }), (x) => x.status === 418);
      expect(aborted.headers?.['x-echo-pod'], 'the abort never reached an app').toBeUndefined();
      await eventually('both subsets have endpoints at the wpgw (v2 answers)', async () => {
        const r = await callFrom(orders.netns, { url, headers: { host }, repeat: 60, timeoutMs: 120_000 });
        return (r.tally?.[`200 ${v2.name}`] ?? 0) > 0;
      });

      // 1,000 requests from the mesh app; tolerance: 10% +- 3 points (binomial sd 0.95 points at n=1000).
      const N = 1000;
      const r = await callFrom(orders.netns, { url, headers: { host }, repeat: N, timeoutMs: 600_000 });
      const tally = r.tally ?? {};
      const to = (name: string) => tally[`200 ${name}`] ?? 0;
      const share = to(v2.name) / N;
      console.log(`[datapath] flow 10: ${N} requests, tally ${JSON.stringify(tally)}, v2 share ${(share * 100).toFixed(1)}% (target 10% +- 3)`);
      expect(to(v1.name) + to(v2.name), `every request answered 200 by v1 or v2: ${JSON.stringify(tally)}`).toBe(N);
      expect(share).toBeGreaterThanOrEqual(0.07);
      expect(share).toBeLessThanOrEqual(0.13);

      // Retries at the wpgw hop: v1 answers 500 (not in the caller's default retry set), the wpgw
      // tries 1 + 2 times, all three seen by the app.
      const id = rid('f10');
      const failed = await callFrom(orders.netns, { url, headers: { host, 'x-dp-retry': 'please', 'x-echo-status': '500', 'x-dp-id': id } });
      expect(failed.status).toBe(500);
      const attempts = await eventually('the app logged the attempts', () => {
        const seen = appLog(v1).filter((e) => e.event === 'request' && e.headers?.['x-dp-id'] === id);
        return seen.length >= 3 ? seen : undefined;
      }, 30_000);
      expect(attempts.length).toBe(3);

      // The caller-side DR for legacy (no tls) did not cost the caller its mTLS to the wpgw.
      const mtlsId = rid('f10m');
      expect((await callFrom(orders.netns, { url, headers: { host, 'x-dp-id': mtlsId } })).status).toBe(200);
      const hop = await eventually('the wpgw logged the request', () => accessEntry(podsOf(runner!, m.SHOP, 'wpgw-'), mtlsId), 30_000);
      expect(hop.peer).toBe(`spiffe://cluster.local/ns/${m.SALES}/sa/orders`);
      expect(hop.down_tls).toMatch(/^TLSv1\.[23]$/);
    });
  });

  it("11: the user's DENY policy for legacy is enforced at the wpgw for its port only: 403 for orders, 200 for the ingress, another Service and the egress unaffected", async () => {
    await timed('flow 11', async () => {
      apply(m.denyPolicy('legacy', m.SHOP, `cluster.local/ns/${m.SALES}/sa/orders`));
      const orders = pod(m.SALES, 'orders-');
      const via = (host: string, id: string) => callFrom(orders.netns, { url: 'http://127.0.0.1:8080/', headers: { host, 'x-dp-id': id } });
      const denied = await until('orders is denied on legacy', () => via(`legacy.${m.SHOP}.svc.cluster.local:8080`, rid('f11d')), (x) => x.status === 403);
      expect(denied.body).toContain('RBAC: access denied');
      expect(denied.headers?.['x-echo-pod'], 'the denial came from the wpgw, not an app').toBeUndefined();
      // another principal on the same Service
      const ingress = await callFrom(network!.node, { url: `http://${ip.ingress}/`, headers: { host: m.INGRESS_HOST, 'x-dp-id': rid('f11i') } });
      expect(ingress.status, JSON.stringify(ingress)).toBe(200);
      expect(ingress.headers?.['x-echo-pod']).toMatch(/^legacy-/);
      // a second Service on the same gateway: the same caller is allowed
      const canary = await until('orders reaches legacy-canary', () => via(`legacy-canary.${m.SHOP}.svc.cluster.local:8080`, rid('f11c')), (x) => x.status === 200);
      expect(canary.headers?.['x-echo-pod']).toMatch(/^legacy-v2-/);
      // the Windows egress through the same gateway
      const egress = await callFrom(pod(m.SHOP, 'legacy-').netns, { url: `http://orders.${m.SALES}:9080/` });
      expect(egress.status, JSON.stringify(egress)).toBe(200);
      expect(egress.json?.pod).toMatch(/^orders-/);
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
});
