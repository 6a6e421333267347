import { describe, expect, it } from 'vitest';
import {
  classifyHost,
  dialNames,
  formatDestination,
  OutboundParseError,
  parseOutbound,
  reviewDestinations,
} from '../../src/core/outbound.js';
import { mutatePod } from '../../src/core/pod.js';
import { staticContext } from '../lib/admission.js';

describe('wpgw.io/outbound grammar', () => {
  it('accepts host:port entries separated by commas, spaces and newlines', () => {
    const d = parseOutbound('orders.shop.svc.cluster.local:9080, example.com:80\n  api.example.com:8080 ');
    expect(d.map(formatDestination)).toEqual([
      'orders.shop.svc.cluster.local:9080',
      'example.com:80',
      'api.example.com:8080',
    ]);
    expect(d.every((x) => x.protocol === 'http' && !x.originateTls)).toBe(true);
  });

  it('reads protocols and TLS origination', () => {
    const [a, b, c, e] = parseOutbound(
      'example.com:80+tls tls://secure.example.com:443 tcp://db.example.com:5432 partner.example.com:8080+tls:8443',
    );
    expect(a).toMatchObject({ protocol: 'http', host: 'example.com', port: 80, originateTls: true, upstreamPort: 443 });
    expect(b).toMatchObject({ protocol: 'tls', port: 443, originateTls: false, upstreamPort: 443 });
    expect(c).toMatchObject({ protocol: 'tcp', host: 'db.example.com', port: 5432 });
    expect(e).toMatchObject({ upstreamPort: 8443, port: 8080 });
    expect(formatDestination(e!)).toBe('partner.example.com:8080+tls:8443');
  });

  it('normalizes case and a trailing dot, and drops exact repeats', () => {
    const d = parseOutbound('Example.COM.:80, example.com:80');
    expect(d).toHaveLength(1);
    expect(d[0]?.host).toBe('example.com');
  });

  it('accepts an empty annotation as no destinations', () => {
    expect(parseOutbound('  ,\n ')).toEqual([]);
  });

  it.each([
    ['example.com', 'expected'],
    ['example.com:0', 'outside 1-65535'],
    ['example.com:70000', 'outside 1-65535'],
    ['https://example.com:443', 'unknown protocol "https"'],
    ['ftp://example.com:21', 'unknown protocol "ftp"'],
    ['tls://example.com:443+tls', 'applies to http destinations only'],
    ['10.0.0.1:80', 'IP address'],
    ['exa_mple.com:80', 'not a valid DNS label'],
    ['bücher.example:80', 'xn--'],
    ['tcp://*.example.com:5432', 'wildcard'],
    ['*.example.com:80+tls', 'wildcard'],
    ['-bad.example.com:80', 'not a valid DNS label'],
  ])('rejects %s naming the entry', (entry, reason) => {
    let error: unknown;
    try {
      parseOutbound(`good.example.com:80, ${entry}`);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(OutboundParseError);
    expect((error as OutboundParseError).entry).toBe(entry);
    expect((error as Error).message).toContain(entry.slice(0, 20));
    expect((error as Error).message).toContain(reason);
  });

  it('rejects one host:port declared twice with different meanings', () => {
    expect(() => parseOutbound('example.com:80 example.com:80+tls')).toThrow(/declared only once/);
  });

  it('bounds the annotation size and entry count', () => {
    expect(() => parseOutbound('a'.repeat(20_000))).toThrow(/longer than/);
    expect(() => parseOutbound(Array.from({ length: 300 }, (_, i) => `h${i}.example.com:80`).join(','))).toThrow(
      /more than 256/,
    );
  });
});

describe('where a host lives', () => {
  it('treats single labels and .svc names as Services, everything else as external', () => {
    expect(classifyHost('orders', 'shop', 'cluster.local')).toEqual({
      kind: 'service',
      service: 'orders',
      namespace: 'shop',
      fqdn: 'orders.shop.svc.cluster.local',
    });
    expect(classifyHost('orders.sales.svc', 'shop', 'cluster.local')).toMatchObject({
      kind: 'service',
      namespace: 'sales',
    });
    expect(classifyHost('orders.sales.svc.cluster.local', 'shop', 'cluster.local')).toMatchObject({
      kind: 'service',
      service: 'orders',
    });
    expect(classifyHost('orders.shop', 'shop', 'cluster.local')).toEqual({ kind: 'external', host: 'orders.shop' });
    expect(classifyHost('a.b.c.svc.cluster.local', 'shop', 'cluster.local').kind).toBe('external');
  });

  it('expands the names an app may dial; the bare name only in its own namespace', () => {
    const same = dialNames(
      classifyHost('orders.shop.svc.cluster.local', 'shop', 'cluster.local'),
      'shop',
      'cluster.local',
    );
    expect(same).toEqual(['orders', 'orders.shop', 'orders.shop.svc', 'orders.shop.svc.cluster.local']);
    const other = dialNames(
      classifyHost('orders.sales.svc.cluster.local', 'shop', 'cluster.local'),
      'shop',
      'cluster.local',
    );
    expect(other).toEqual(['orders.sales', 'orders.sales.svc', 'orders.sales.svc.cluster.local']);
    expect(dialNames(classifyHost('example.com', 'shop', 'cluster.local'), 'shop', 'cluster.local')).toEqual([
      'example.com',
    ]);
  });
});

describe("one pod's destinations as a whole (reviewDestinations)", () => {
  const review = (text: string) => reviewDestinations(parseOutbound(text), 'shop', 'cluster.local');

  it.each([
    'localhost:8080',
    'LOCALHOST.:80',
    'api.localhost:80',
    'localhost.localdomain:80',
    'ip6-localhost:80',
    'tls://localhost:443',
  ])('a loopback name (%s) is rejected: it can never reach the gateway', (entry) => {
    expect(() => parseOutbound(entry)).toThrow(/is a loopback name: it always resolves to the pod itself/);
  });

  it('names that merely contain "localhost" are ordinary hosts', () => {
    expect(parseOutbound('localhost.example.com:80, mylocalhost:80').map((d) => d.host)).toEqual([
      'localhost.example.com',
      'mylocalhost',
    ]);
  });

  it.each([
    ['web-0.web.shop.svc.cluster.local:80', /per-pod name of a headless Service/],
    ['web-0.web.shop.svc:80', /per-pod name of a headless Service/],
    ['shop.svc:80', /per-pod name|routed only as/],
    ['*.shop.svc.cluster.local:80', /a wildcard cannot name cluster Services/],
  ])('%s under the cluster Service domain but not a Service is denied with what does count', (entry, reason) => {
    const r = review(entry);
    expect(r.error).toBeInstanceOf(OutboundParseError);
    expect(r.error!.message).toContain(`"${entry}"`);
    expect(r.error!.message).toMatch(reason);
  });

  it('+tls to an in-mesh Service is denied at admission', () => {
    expect(review('orders.sales.svc:9080+tls').error?.message).toMatch(
      /"orders.sales.svc:9080\+tls".*in-mesh destinations already get Istio mTLS/,
    );
  });

  it.each([
    [
      'tcp://db1.example.com:5432, tcp://db2.example.com:5432',
      'tcp://db2.example.com:5432',
      /only "tcp:\/\/db1.example.com:5432" can be/,
    ],
    [
      'a.example.com:8443, tls://b.example.com:8443',
      'tls://b.example.com:8443',
      /needs a tls listener on port 8443, which "a.example.com:8443" takes as http/,
    ],
    ['tcp://db.example.com:80, example.com:80', 'example.com:80', /needs a http listener on port 80/],
    [
      'example.com:80+tls, tls://example.com:443',
      'tls://example.com:443',
      /needs example.com:443 as TLS, but "example.com:80\+tls" needs it as HTTPS/,
    ],
  ])('%s: the later entry is denied, naming the one that would be routed', (text, later, reason) => {
    const r = review(text);
    expect(r.error?.entry).toBe(later);
    expect(r.error?.message).toMatch(reason);
  });

  it('entries that can share the gateway pass without advice', () => {
    expect(
      review(
        'orders.sales.svc:9080, rates:8080, example.com:80+tls, tls://secure.example.com:443, tcp://db.example.com:5432',
      ),
    ).toEqual({ advice: [] });
  });

  it('plain HTTP to a TLS port gets advice with both ways to write it', () => {
    const r = review('api.example.com:443');
    expect(r.error).toBeUndefined();
    expect(r.advice).toHaveLength(1);
    expect(r.advice[0]).toContain('"tls://api.example.com:443"');
    expect(r.advice[0]).toContain('"api.example.com:80+tls"');
    expect(review('tls://api.example.com:443').advice).toEqual([]);
    expect(review('api.example.com:80+tls').advice).toEqual([]);
  });

  it('a two-label name that could be <service>.<namespace> gets the .svc hint; common public domains do not', () => {
    expect(review('orders.sales:9080').advice).toEqual([expect.stringContaining('write "orders.sales.svc:9080"')]);
    expect(review('example.com:80, example.io:80').advice).toEqual([]);
    expect(review('orders.sales.svc:9080').advice).toEqual([]);
  });
});

describe('advice reaches the admission response', () => {
  it('a pod with plain HTTP to 443 is admitted with a warning naming the pod and the entry', () => {
    const pod = {
      metadata: { name: 'legacy', annotations: { 'wpgw.io/outbound': 'api.example.com:443' } },
      spec: { os: { name: 'windows' }, containers: [{ name: 'c' }] },
    };
    const out = mutatePod({ pod, namespace: 'shop', ctx: staticContext() });
    if (out.action !== 'mutate') throw new Error(JSON.stringify(out));
    expect(out.warnings).toEqual([
      expect.stringMatching(/^pod "legacy": wpgw.io\/outbound "api.example.com:443" is plain HTTP to port 443/),
    ]);
  });
});
