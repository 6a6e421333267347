// Flow 6 of the data-path suite: dnsConfig mode through the real CoreDNS (test/datapath/build.sh, built
// from its Go module), on the stack of dns-stack.ts: cluster DNS with the kubernetes plugin, the
// controller's wpgw-dns running the Corefile it writes, a Windows app (a Linux process on the
// windows-1 kwok node) with the resolv.conf kubelet writes from the dnsConfig the webhook injected.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { apply, getJson } from '../e2e/helpers.js';
import { EXTERNAL, pod, resolveIn, runningPods, useDnsStack, wpgwDnsLoaded } from './dns-stack.js';
import { eventually, podsOf, timed } from './helpers.js';
import * as m from './manifests.js';
import { alive } from './procs.js';

const NS = 'dns-mode';
const DST = 'dns-dst';
const OUTBOUND = [`orders.${DST}.svc.cluster.local:9080`, 'tls://*.partner.test:443', 'api.example.test:80+tls'].join(
  '\n',
);
const ADDED = { app: 'reports', outbound: 'reports.example.test:80+tls', name: 'reports.example.test' };
const s = useDnsStack({ tag: 'wdn', ns: NS, dst: DST, outbound: OUTBOUND });
const ip = s.ip;
const corefileOf = () => getJson(['configmap', 'wpgw-dns', '-n', NS])?.data?.Corefile as string | undefined;

describe('6: dnsConfig mode through the real CoreDNS', () => {
  it('6: the Windows pod resolves its declared names (wildcard too) to the gateway through wpgw-dns, everything else through cluster DNS', async () => {
    await timed('flow 6: names', async () => {
      const win = pod(s, NS, 'legacy-');
      // kubelet's resolv.conf from the dnsConfig the webhook injected: wpgw-dns only
      const resolv = readFileSync(join('/etc/netns', win.netns, 'resolv.conf'), 'utf8');
      expect(resolv.split('\n').filter((l) => l.startsWith('nameserver'))).toEqual([`nameserver ${ip.dns}`]);
      const gw = [ip.gateway!];
      // The pod may start before the controller's Corefile has its names: wait until every replica runs them.
      await wpgwDnsLoaded(s, NS, [`orders.${DST}.svc.cluster.local`, 'a.partner.test', 'api.example.test']);
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
      expect(await resolveIn(win.netns, 'a.partner.test', { ip: ip.dns!, type: 'AAAA' })).toMatchObject({
        ok: false,
        code: 'ENODATA',
      });

      // The undeclared name went wpgw-dns -> kube-dns ClusterIP (kube-proxy) -> cluster CoreDNS:
      // its log shows the query from a wpgw-dns pod address (kube-proxy keeps pod sources).
      const dnsPods = podsOf(s.runner, NS, 'wpgw-dns-').map((p) => p.ip);
      const clusterLog = readFileSync(join(pod(s, 'kube-system', 'coredns-').dir, 'coredns.log'), 'utf8');
      const asked = [
        ...clusterLog.matchAll(/\[INFO\] ([\d.]+):\d+ - \d+ "A IN stock\.dns-dst\.svc\.cluster\.local\. /g),
      ].map((x) => x[1]);
      expect(asked.length, 'cluster DNS saw the undeclared name').toBeGreaterThan(0);
      expect(
        asked.every((a) => dnsPods.includes(a!)),
        `askers ${asked.join(',')} are wpgw-dns pods ${dnsPods.join(',')}`,
      ).toBe(true);
    });
  });

  it('6: a destination added to the namespace takes effect without restarting any pod (measured)', async () => {
    const win = pod(s, NS, 'legacy-');
    const dnsPods = podsOf(s.runner, NS, 'wpgw-dns-');
    expect(await resolveIn(win.netns, ADDED.name), 'not yet declared: cluster DNS has no such name').toMatchObject({
      ok: false,
    });
    const t0 = Date.now();
    apply(m.windowsApp(ADDED.app, NS, ADDED.outbound));
    await eventually('the controller wrote the name into the wpgw-dns ConfigMap', () =>
      corefileOf()?.includes(ADDED.name),
    );
    const tConfigMap = Date.now();
    const files = dnsPods.map((p) => join(p.dir, 'volumes', 'config', 'Corefile'));
    await eventually('the Corefile files of the wpgw-dns pods have it', () =>
      files.every((f) => readFileSync(f, 'utf8').includes(ADDED.name)),
    );
    const tFile = Math.max(...files.map((f) => statSync(f).mtimeMs));
    // CoreDNS's reload plugin checks the file every 10 s (plus jitter): a long, generous deadline.
    await eventually(
      'the running Windows pod resolves the added name to the gateway',
      async () => (await resolveIn(win.netns, ADDED.name)).addresses?.[0] === ip.gateway,
      180_000,
    );
    const tAnswer = Date.now();
    // Each replica's reload plugin checks on its own schedule, so for a while the ClusterIP gives
    // the new answer from one replica and NXDOMAIN from the other: wait until every replica has it.
    await wpgwDnsLoaded(s, NS, [ADDED.name]);
    const tAll = Date.now();
    const sec = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
    console.log(
      `[datapath] dnsConfig propagation: apply -> ConfigMap ${sec(tConfigMap - t0)}, -> pod volumes ${sec(tFile - t0)}, -> first answer in the running pod ${sec(tAnswer - t0)}, ` +
        `-> every replica ${sec(tAll - t0)} (CoreDNS reload ${sec(tAll - tFile)}; a real kubelet adds up to ~60 s of ConfigMap volume refresh)`,
    );
    // Nothing restarted: the same Windows pod and wpgw-dns pods, their processes never exited.
    expect(pod(s, NS, 'legacy-').uid).toBe(win.uid);
    expect(
      podsOf(s.runner, NS, 'wpgw-dns-')
        .map((p) => p.uid)
        .sort(),
    ).toEqual(dnsPods.map((p) => p.uid).sort());
    expect(dnsPods.flatMap((p) => p.procs).every(alive)).toBe(true);
    expect(await resolveIn(win.netns, ADDED.name)).toEqual({ ok: true, addresses: [ip.gateway] });
    const added = (await runningPods(s, NS, `${ADDED.app}-`, 1))[0]!;
    expect(await resolveIn(added.netns, ADDED.name)).toEqual({ ok: true, addresses: [ip.gateway] });
  });

  it('the pod runner started every pod it was given', () => {
    expect(s.runner.errors).toEqual([]);
  });
});
