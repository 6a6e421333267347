import { describe, expect, it } from 'vitest';
import { classifyHost, dialNames, formatDestination, OutboundParseError, parseOutbound } from '../../src/core/outbound.js';

describe('wpgw.io/outbound grammar', () => {
  it('accepts host:port entries separated by commas, spaces and newlines', () => {
    const d = parseOutbound('orders.shop.svc.cluster.local:9080, example.com:80\n  api.example.com:8080 ');
    expect(d.map(formatDestination)).toEqual(['orders.shop.svc.cluster.local:9080', 'example.com:80', 'api.example.com:8080']);
    expect(d.every((x) => x.protocol === 'http' && !x.originateTls)).toBe(true);
  });

  it('reads protocols and TLS origination', () => {
    const [a, b, c, e] = parseOutbound('example.com:80+tls tls://secure.example.com:443 tcp://db.example.com:5432 partner.example.com:8080+tls:8443');
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
    expect(() => parseOutbound(Array.from({ length: 300 }, (_, i) => `h${i}.example.com:80`).join(','))).toThrow(/more than 256/);
  });
});

describe('where a host lives', () => {
  it('treats single labels and .svc names as Services, everything else as external', () => {
    expect(classifyHost('orders', 'shop', 'cluster.local')).toEqual({ kind: 'service', service: 'orders', namespace: 'shop', fqdn: 'orders.shop.svc.cluster.local' });
    expect(classifyHost('orders.sales.svc', 'shop', 'cluster.local')).toMatchObject({ kind: 'service', namespace: 'sales' });
    expect(classifyHost('orders.sales.svc.cluster.local', 'shop', 'cluster.local')).toMatchObject({ kind: 'service', service: 'orders' });
    expect(classifyHost('orders.shop', 'shop', 'cluster.local')).toEqual({ kind: 'external', host: 'orders.shop' });
    expect(classifyHost('a.b.c.svc.cluster.local', 'shop', 'cluster.local').kind).toBe('external');
  });

  it('expands the names an app may dial; the bare name only in its own namespace', () => {
    const same = dialNames(classifyHost('orders.shop.svc.cluster.local', 'shop', 'cluster.local'), 'shop', 'cluster.local');
    expect(same).toEqual(['orders', 'orders.shop', 'orders.shop.svc', 'orders.shop.svc.cluster.local']);
    const other = dialNames(classifyHost('orders.sales.svc.cluster.local', 'shop', 'cluster.local'), 'shop', 'cluster.local');
    expect(other).toEqual(['orders.sales', 'orders.sales.svc', 'orders.sales.svc.cluster.local']);
    expect(dialNames(classifyHost('example.com', 'shop', 'cluster.local'), 'shop', 'cluster.local')).toEqual(['example.com']);
  });
});
