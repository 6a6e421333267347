// Flow 8 of the data-path suite: "all traffic in and out of the Windows pods goes through the
// wpgw", with the NetworkPolicies the controller writes enforced on real packets by the real
// kube-router (netpol/, its network policy controller only) as the enforcer of the windows-1 node,
// on the stack of dns-stack.ts (dnsConfig mode, so DNS goes to wpgw-dns and cluster DNS).
// What this does not prove: netpol/README.md.
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { getJson } from '../e2e/helpers.js';
import { EXTERNAL, pod, resolveIn, UPSTREAM, useDnsStack, wpgwDnsLoaded } from './dns-stack.js';
import { callFrom, eventually, jsonLines, podsOf, timed, type ClientResult } from './helpers.js';
import { rejectedFor, startKubeRouter } from './netpol.js';
import { startProc, type Proc } from './procs.js';
import type { RunningPod } from './runner.js';

const NS = 'np-mode';
const DST = 'np-dst';
const s = useDnsStack({ tag: 'wnp', ns: NS, dst: DST, outbound: `stock.${DST}.svc.cluster.local:9080` });
/** A listener in the wpgw pod's namespace (its Envoy does not run here): what the Windows pod may reach. */
const GW_PORT = 8080;

let win: RunningPod;
let stock: RunningPod;
let gw: RunningPod;
let kubeRouter: Proc | undefined;

const http = (from: RunningPod, host: string, port: number): Promise<ClientResult> =>
  callFrom(from.netns, { url: `http://${host}:${port}/`, timeoutMs: 5000 });
/** Requests the pod's echo server logged from this source address. */
const seenFrom = (p: RunningPod, source: string, file = join(p.dir, 'app.log')) =>
  jsonLines(file).filter((e) => String(e.remote ?? '').startsWith(`${source}:`)).length;

beforeAll(async () => {
  await timed('flow 8: build kube-router (netpol/build.sh, cached)', () =>
    execFileSync('bash', [resolve(import.meta.dirname, 'netpol/build.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60 * 60_000,
    }),
  );
  win = pod(s, NS, 'legacy-');
  stock = pod(s, DST, 'stock-');
  gw = pod(s, NS, 'wpgw-');
  s.procs.push(
    startProc(
      'gateway stand-in listener',
      'ip',
      ['netns', 'exec', gw.netns, process.execPath, resolve(import.meta.dirname, 'apps/echo.mjs')],
      {
        log: join(s.state, 'logs', 'gw-listener.log'),
        env: { ...process.env, ECHO_HTTP: String(GW_PORT), POD_NAME: gw.name },
      },
    ),
  );
  await wpgwDnsLoaded(s, NS, [`stock.${DST}.svc.cluster.local`]);
  await eventually(
    'the controller wrote its NetworkPolicies',
    () =>
      getJson(['networkpolicy', 'wpgw-managed-pods', '-n', NS]) && getJson(['networkpolicy', 'wpgw-gateway', '-n', NS]),
  );
  // Before enforcement every path below is open: the checks after it can only pass by the policies.
  await timed('flow 8: baseline without an enforcer', async () => {
    for (const [from, to, port] of [
      [stock, win.ip, 8080],
      [win, stock.ip, 8080],
      [win, s.ip.stock!, 9080],
      [win, gw.ip, GW_PORT],
    ] as const) {
      await eventually(
        `${from.name} -> ${to}:${port} answered before enforcement`,
        async () => (await http(from, to, port)).status === 200,
        60_000,
      );
    }
    expect(
      await resolveIn(win.netns, EXTERNAL.name, { ip: UPSTREAM }),
      "the node's resolver answers the Windows pod directly",
    ).toEqual({ ok: true, addresses: [EXTERNAL.ip] });
  });
  await timed('flow 8: kube-router enforcing for windows-1', async () => {
    kubeRouter = startKubeRouter({
      nodeNetns: s.network.node,
      kubeconfig: s.kubeconfig,
      nodeName: 'windows-1',
      serviceCIDR: s.serviceCIDR,
      stateDir: s.state,
    });
    s.procs.push(kubeRouter);
    await eventually(
      "kube-router programmed the Windows pod's firewall chain",
      async () => (await rejectedFor(s.network.node, win.name, NS)) !== undefined,
    );
  });
}, 600_000);

describe('8: the NetworkPolicies the controller writes, enforced by kube-router', () => {
  it('a mesh pod dialing the Windows pod IP directly is dropped; the wpgw pod still reaches it', async () => {
    const before = (await rejectedFor(s.network.node, win.name, NS))!;
    const seen = seenFrom(win, stock.ip);
    expect(seen, 'the baseline request is in the Windows app log (the check below can fail)').toBeGreaterThan(0);
    const r = await http(stock, win.ip, 8080);
    console.log(`[datapath] flow 8: ${stock.name} -> ${win.ip}:8080 with the policies: ${r.error}`);
    expect(r.ok, `stock -> ${win.ip}:8080: ${JSON.stringify(r)}`).toBe(false);
    expect(seenFrom(win, stock.ip), 'the Windows app received nothing from the mesh pod').toBe(seen);
    expect(
      (await rejectedFor(s.network.node, win.name, NS))!,
      "kube-router's REJECT rule for the Windows pod matched",
    ).toBeGreaterThan(before);
    // ingress from the gateway's pods is allowed: the enforcement is selective, not a dead pod
    expect((await http(gw, win.ip, 8080)).status).toBe(200);
  });

  it('the Windows pod dialing a destination directly (pod IP, ClusterIP) is dropped; the wpgw and DNS still work', async () => {
    const seen = seenFrom(stock, win.ip);
    expect(seen, 'the baseline requests are in the destination log').toBeGreaterThan(0);
    for (const [host, port] of [
      [stock.ip, 8080],
      [s.ip.stock!, 9080], // kube-proxy's DNAT happens first: the policy judges the pod behind it
    ] as const) {
      const r = await http(win, host, port);
      expect(r.ok, `${win.name} -> ${host}:${port}: ${JSON.stringify(r)}`).toBe(false);
      console.log(`[datapath] flow 8: ${win.name} -> ${host}:${port} with the policies: ${r.error}`);
    }
    expect(seenFrom(stock, win.ip), 'the destination received nothing from the Windows pod').toBe(seen);
    expect((await http(win, gw.ip, GW_PORT)).status, 'egress to the wpgw pods is allowed').toBe(200);
    // DNS past wpgw-dns and cluster DNS, straight to the node's resolver: dropped too
    expect(
      await resolveIn(win.netns, EXTERNAL.name, { ip: UPSTREAM }),
      'direct DNS to the upstream resolver',
    ).toMatchObject({ ok: false });
    // DNS: the Windows pod -> wpgw-dns (its ClusterIP, port 1053 behind it) -> cluster DNS -> upstream
    expect(await resolveIn(win.netns, `stock.${DST}`)).toEqual({ ok: true, addresses: [s.ip.gateway] });
    expect(await resolveIn(win.netns, EXTERNAL.name)).toEqual({ ok: true, addresses: [EXTERNAL.ip] });
    expect(await resolveIn(win.netns, 'kubernetes.default')).toEqual({ ok: true, addresses: [s.ip.kubernetes] });
  });

  it('kube-router and the pod runner ran without errors', () => {
    expect(kubeRouter && kubeRouter.child.exitCode, 'kube-router still running').toBe(null);
    expect(s.runner.errors).toEqual([]);
    expect(podsOf(s.runner, NS, 'legacy-').map((p) => p.uid)).toEqual([win.uid]);
  });
});
