// External names resolved by the controller, checked against the egress ranges and pinned
// (src/core/desired/pinning.ts, src/controller/resolver.ts), from pods the real admission core injected.
import { describe, expect, it } from 'vitest';
import { ExternalResolver } from '../../src/controller/resolver.js';
import { desiredNamespaceState } from '../../src/core/desired.js';
import type { DesiredOptions, DesiredState, NamespaceInput } from '../../src/core/desired-types.js';
import { find, get, injectedPod, namespaceObject, ofKind, spec } from './helpers/builders.js';

const OPTS: DesiredOptions = {
  clusterDomain: 'cluster.local',
  defaultGatewayReplicas: 2,
  corednsImage: 'registry.example/coredns:test',
};

function state(
  outbound: string,
  resolved: NamespaceInput['resolved'],
  o: { annotations?: Record<string, string>; resolver?: 'dnsConfig' } = {},
): DesiredState {
  const pod = injectedPod({
    name: 'legacy-abc',
    labels: { app: 'legacy' },
    outbound,
    ip: '10.244.64.10',
    ...(o.resolver ? { resolver: o.resolver } : {}),
  });
  return desiredNamespaceState(
    {
      namespace: namespaceObject('shop', o.annotations),
      pods: [pod],
      services: [],
      clusterDnsIP: '10.96.0.10',
      ...(resolved ? { resolved } : {}),
    },
    OPTS,
  );
}
const entry = (s: DesiredState, host: string) => find(s.objects, 'ServiceEntry', `wpgw-ext-${host}`);
const vsHosts = (s: DesiredState) => ofKind(s.objects, 'VirtualService').flatMap((v) => spec(v).hosts as string[]);
const servicePorts = (s: DesiredState) =>
  (spec(get(s.objects, 'Service', 'wpgw')).ports as Array<{ port: number }>).map((p) => p.port);

describe('pinned external names', () => {
  it('public answers: ServiceEntry STATIC with exactly the checked addresses (sorted, de-duplicated)', () => {
    const s = state('example.com:80+tls tls://api.example.net:8443', {
      'example.com': { addresses: ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946', '93.184.216.34'] },
      'api.example.net': { addresses: ['203.0.113.20'] },
    });
    expect(s.conflicts).toEqual([]);
    expect(spec(entry(s, 'example.com'))).toMatchObject({
      hosts: ['example.com'],
      resolution: 'STATIC',
      endpoints: [{ address: '2606:2800:220:1:248:1893:25c8:1946' }, { address: '93.184.216.34' }],
      ports: [{ number: 443, name: 'https-443', protocol: 'HTTPS' }],
    });
    expect(spec(entry(s, 'api.example.net')).endpoints).toEqual([{ address: '203.0.113.20' }]);
    // the TLS origination rule still names the host for SNI and the certificate check
    expect(
      spec(get(s.objects, 'DestinationRule', 'wpgw-tls-example.com')).trafficPolicy.portLevelSettings[0].tls,
    ).toMatchObject({ sni: 'example.com', subjectAltNames: ['example.com'] });
  });

  it('a name resolving to the metadata address is not routed at all, and the conflict names the pod, answer and range', () => {
    const s = state('meta.evil.example:80 example.com:8080', {
      'meta.evil.example': { addresses: ['169.254.169.254'] },
      'example.com': { addresses: ['93.184.216.34'] },
    });
    expect(s.conflicts).toEqual([
      {
        subject: 'Pod/legacy-abc',
        reason: 'ForbiddenAddress',
        message:
          '"meta.evil.example:80": meta.evil.example resolves to 169.254.169.254 (in 169.254.0.0/16, link-local, incl. the cloud metadata address 169.254.169.254), which the gateway never connects to for an external destination; not routed',
      },
    ]);
    expect(entry(s, 'meta.evil.example')).toBeUndefined();
    expect(vsHosts(s)).not.toContain('meta.evil.example');
    expect(servicePorts(s)).toEqual([8080, 15021]); // port 80 had only the refused route
    expect(JSON.stringify(get(s.objects, 'AuthorizationPolicy', 'wpgw'))).not.toContain('meta.evil.example');
    expect(entry(s, 'example.com')).toBeDefined(); // the rest still works
  });

  it('one forbidden answer among public ones refuses the name (rebinding, round-robin tricks); loopback, node, cluster and IPv6 metadata too', () => {
    for (const bad of [
      '127.0.0.1',
      '10.244.0.17',
      '192.168.1.1',
      '100.100.100.200',
      '168.63.129.16',
      'fd00:ec2::254',
      '::1',
      'fe80::1',
      '::ffff:169.254.169.254',
      '::ffff:7f00:1',
      '0.0.0.0',
    ]) {
      const s = state('x.example.com:80', { 'x.example.com': { addresses: ['93.184.216.34', bad] } });
      expect(
        s.conflicts.map((c) => c.reason),
        bad,
      ).toEqual(['ForbiddenAddress']);
      expect(s.conflicts[0]!.message, bad).toContain(`resolves to ${bad} (in `);
      expect(entry(s, 'x.example.com'), bad).toBeUndefined();
    }
  });

  it('the namespace allowlist re-opens a private answer; the cluster ranges stay closed', () => {
    const annotations = { 'wpgw.io/egress-allow-cidrs': '10.20.0.0/16' };
    const ok = state('erp.corp.example:443+tls', { 'erp.corp.example': { addresses: ['10.20.1.5'] } }, { annotations });
    expect(ok.conflicts).toEqual([]);
    expect(spec(entry(ok, 'erp.corp.example')).endpoints).toEqual([{ address: '10.20.1.5' }]);
    const kubernetesService = desiredNamespaceState(
      {
        namespace: namespaceObject('shop', annotations),
        pods: [injectedPod({ name: 'legacy-abc', outbound: 'erp.corp.example:443+tls', ip: '10.244.64.10' })],
        services: [],
        clusterAddresses: ['10.20.0.1'],
        resolved: { 'erp.corp.example': { addresses: ['10.20.0.1'] } },
      },
      OPTS,
    );
    expect(kubernetesService.conflicts[0]!.message).toContain("10.20.0.1 (in 10.20.0.1/32, the cluster's own range)");
  });

  it('an unresolved name is pinned to nothing (fail closed) and reported; the route stays for when it resolves', () => {
    const s = state('gone.example.com:80', { 'gone.example.com': { addresses: [], error: 'ENOTFOUND' } });
    expect(s.conflicts).toEqual([
      {
        subject: 'Pod/legacy-abc',
        reason: 'ExternalNameUnresolved',
        message:
          '"gone.example.com:80": gone.example.com did not resolve (ENOTFOUND); the gateway has no address to send it to until it does',
      },
    ]);
    expect(spec(entry(s, 'gone.example.com'))).toMatchObject({ resolution: 'STATIC', endpoints: [] });
  });

  it('wildcards (dnsConfig) cannot be pinned and stay DYNAMIC_DNS; without resolutions (render) names stay DNS', () => {
    const s = state('*.zone.example:80', {}, { resolver: 'dnsConfig' });
    expect(s.conflicts).toEqual([]);
    expect(spec(entry(s, 'wildcard.zone.example'))).toMatchObject({
      hosts: ['*.zone.example'],
      resolution: 'DYNAMIC_DNS',
    });
    const offline = state('example.com:80', undefined);
    expect(spec(entry(offline, 'example.com'))).toMatchObject({ resolution: 'DNS' });
    expect(spec(entry(offline, 'example.com')).endpoints).toBeUndefined();
  });

  it('in-cluster destinations are never looked up or pinned (Istio routes them to Service endpoints)', () => {
    const s = state('orders.sales.svc:9080', {});
    expect(s.conflicts).toEqual([]);
    expect(ofKind(s.objects, 'ServiceEntry')).toEqual([]);
  });
});

describe('ExternalResolver (the controller side)', () => {
  function resolver(answers: Record<string, string[] | Error>) {
    let t = 0;
    const calls: string[] = [];
    const r = new ExternalResolver({
      ttlMs: 1000,
      timeoutMs: 50,
      now: () => t,
      lookup: async (h) => {
        calls.push(h);
        const a = answers[h];
        if (a instanceof Error) throw a;
        if (!a) return new Promise<string[]>(() => {}); // never answers
        return a;
      },
    });
    return { r, calls, tick: (ms: number) => (t += ms) };
  }

  it('resolves, de-duplicates and sorts; reuses answers within the TTL', async () => {
    const { r, calls, tick } = resolver({ 'a.example': ['93.184.216.35', '93.184.216.34', '93.184.216.34'] });
    expect(await r.resolve('shop', ['a.example'])).toEqual({
      'a.example': { addresses: ['93.184.216.34', '93.184.216.35'] },
    });
    await r.resolve('shop', ['a.example']);
    expect(calls).toEqual(['a.example']);
    tick(1001);
    await r.resolve('shop', ['a.example']);
    expect(calls).toEqual(['a.example', 'a.example']);
  });

  it('a failed lookup keeps the last good answer; with none it reports the error; a hung lookup times out', async () => {
    const answers: Record<string, string[] | Error> = {
      'a.example': ['93.184.216.34'],
      'b.example': Object.assign(new Error('nx'), { code: 'ENOTFOUND' }),
    };
    const { r, tick } = resolver(answers);
    await r.resolve('shop', ['a.example']);
    answers['a.example'] = Object.assign(new Error('fail'), { code: 'ESERVFAIL' });
    tick(1001);
    expect(await r.resolve('shop', ['a.example', 'b.example', 'hang.example'])).toEqual({
      'a.example': { addresses: ['93.184.216.34'] },
      'b.example': { addresses: [], error: 'ENOTFOUND' },
      'hang.example': { addresses: [], error: 'ETIMEOUT' },
    });
  });

  it('refresh reports exactly the namespaces whose names changed; forget drops a namespace', async () => {
    const answers: Record<string, string[] | Error> = { 'a.example': ['93.184.216.34'], 'b.example': ['203.0.113.1'] };
    const { r } = resolver(answers);
    await r.resolve('shop', ['a.example']);
    await r.resolve('depot', ['b.example']);
    await r.resolve('both', ['a.example', 'b.example']);
    expect(await r.refresh()).toEqual([]);
    answers['a.example'] = ['169.254.169.254'];
    expect(await r.refresh()).toEqual(['both', 'shop']);
    r.forget('shop');
    answers['a.example'] = ['93.184.216.40'];
    expect(await r.refresh()).toEqual(['both']);
  });
});

describe('serverLookup (--external-dns-server): A and AAAA from one real DNS server over UDP', () => {
  it('answers the records, fails for names it does not know', async () => {
    const { spawn } = await import('node:child_process');
    const { createSocket } = await import('node:dgram');
    const { serverLookup } = await import('../../src/controller/resolver.js');
    const probe = createSocket('udp4');
    const port = await new Promise<number>((r) => probe.bind(0, '127.0.0.1', () => r(probe.address().port)));
    probe.close();
    // the data-path suite's DNS stand-in (test/datapath/apps/dns.mjs): A records, NOERROR without answers for AAAA
    const dns = spawn(process.execPath, ['test/datapath/apps/dns.mjs'], {
      env: {
        ...process.env,
        DNS_RECORDS: JSON.stringify({ 'meta.test': '169.254.169.254' }),
        DNS_BIND: `127.0.0.1:${port}`,
      },
      stdio: 'ignore',
    });
    try {
      const lookup = serverLookup(`127.0.0.1:${port}`);
      const answer = async () => {
        for (let i = 0; i < 50; i++) {
          try {
            return await lookup('meta.test');
          } catch {
            await new Promise((r) => setTimeout(r, 100)); // the server is still starting
          }
        }
        throw new Error('no answer');
      };
      expect(await answer()).toEqual(['169.254.169.254']);
      await expect(lookup('unknown.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    } finally {
      dns.kill();
    }
  });
});
