// Regression tests for the bugs the property and desired-state suites found (one per fix).
import { describe, expect, it } from 'vitest';
import { desiredNamespaceState } from '../../src/core/desired.js';
import type { DesiredOptions } from '../../src/core/desired-types.js';
import { mutatePod } from '../../src/core/pod.js';
import { mutateService } from '../../src/core/service.js';
import { find, get, injectedPod, namespaceObject, repointedService, service, spec } from './helpers/builders.js';
import { staticContext } from '../lib/admission.js';

const OPTS: DesiredOptions = {
  clusterDomain: 'cluster.local',
  defaultGatewayReplicas: 2,
  corednsImage: 'coredns:test',
};
const state = (
  pods: ReturnType<typeof injectedPod>[],
  services: Parameters<typeof repointedService>[0][] = [],
  opts: Partial<DesiredOptions> = {},
) =>
  desiredNamespaceState(
    { namespace: namespaceObject('shop'), pods, services, clusterDnsIP: '10.96.0.10' },
    { ...OPTS, ...opts },
  );

describe('regressions', () => {
  it('client-side kubectl apply (selector merged next to ours, user targetPort back) keeps the Service re-pointed', () => {
    const user = service('legacy', 'shop', { app: 'legacy' }, [{ name: 'http', port: 8080, targetPort: 'http' }]);
    const repointed = repointedService(user, { app: 'legacy' });
    // The 3-way strategic merge adds the user's selector key and puts the user's targetPort back.
    const merged = {
      ...repointed,
      spec: {
        ...repointed.spec,
        selector: { 'wpgw.io/gateway': 'shop', app: 'legacy' },
        ports: [{ name: 'http', port: 8080, targetPort: 'http' }],
      },
    };
    const out = mutateService(
      merged as never,
      'shop',
      staticContext({ windowsLabelSets: { shop: [{ app: 'legacy' }] } }),
    );
    if (out.action !== 'mutate') throw new Error(JSON.stringify(out));
    expect(out.service.spec).toEqual(repointed.spec);
  });

  it('the user changing the selector through a merge is honoured', () => {
    const repointed = repointedService(service('legacy', 'shop', { app: 'legacy' }, [{ port: 80 }]), { app: 'legacy' });
    const merged = {
      ...repointed,
      spec: { ...repointed.spec, selector: { 'wpgw.io/gateway': 'shop', app: 'legacy-v2' } },
    };
    const out = mutateService(
      merged as never,
      'shop',
      staticContext({ windowsLabelSets: { shop: [{ app: 'legacy-v2' }] } }),
    );
    if (out.action !== 'mutate') throw new Error(JSON.stringify(out));
    expect(JSON.parse(out.service.metadata?.annotations?.['wpgw.io/original'] ?? '{}').selector).toEqual({
      app: 'legacy-v2',
    });
  });

  it('+tls and tls:// to one external host:port are a conflict, not a double TLS', () => {
    const s = state([
      injectedPod({ name: 'a-1', outbound: 'example.com:80+tls', ip: '10.0.0.1' }),
      injectedPod({ name: 'b-1', outbound: 'tls://example.com:443', ip: '10.0.0.2' }),
    ]);
    expect(s.conflicts.map((c) => c.reason)).toContain('UpstreamProtocolConflict');
    const se = get(s.objects, 'ServiceEntry', 'wpgw-ext-example.com');
    expect(spec(se).ports).toEqual([{ number: 443, name: 'https-443', protocol: 'HTTPS' }]);
  });

  it('tls:// to a short name keeps every SNI host inside the VirtualService hosts', () => {
    const s = state([injectedPod({ name: 'a-1', outbound: 'tls://rates:443', ip: '10.0.0.1' })]);
    const vs = get(s.objects, 'VirtualService', 'wpgw-out-rates-443');
    const hosts: string[] = spec(vs).hosts;
    const sni: string[] = spec(vs).tls[0].match[0].sniHosts;
    expect(sni).toContain('rates');
    expect(sni.every((h) => hosts.includes('*') || hosts.includes(h))).toBe(true);
  });

  it('wildcard authz hosts carry the dialled port, not a second star', () => {
    const s = state([
      injectedPod({ name: 'a-1', outbound: '*.api.example.com:8080', resolver: 'dnsConfig', ip: '10.0.0.1' }),
    ]);
    const hosts: string[] = spec(get(s.objects, 'AuthorizationPolicy', 'wpgw')).rules[0].to[0].operation.hosts;
    expect(hosts).toEqual(['*.api.example.com', '*.api.example.com:8080']);
  });

  it('tls:// and tcp:// ports are allowed by a rule without HTTP-only fields (Istio drops such rules on TCP chains)', () => {
    // Found by the data-path suite: one rule holding both http operations (hosts) and tls/tcp ports
    // became "never matches" on the gateway's TCP listeners, so every tls:// and tcp:// call got 0 bytes.
    const s = state([
      injectedPod({
        name: 'a-1',
        outbound: 'orders.sales.svc:9080 tls://secure.example.com:443 tcp://db.example.com:5432',
        ip: '10.0.0.1',
      }),
    ]);
    const rules: Array<{ from: unknown; to: Array<{ operation: { ports: string[]; hosts?: string[] } }> }> = spec(
      get(s.objects, 'AuthorizationPolicy', 'wpgw'),
    ).rules;
    const svc = spec(get(s.objects, 'Service', 'wpgw')).ports as Array<{ name: string; targetPort: number }>;
    const opaquePorts = svc.filter((p) => /^(tls|tcp)-out-/.test(p.name)).map((p) => String(p.targetPort));
    expect(opaquePorts).toHaveLength(2);
    for (const port of opaquePorts) {
      const rule = rules.find((r) => r.to.some((t) => t.operation.ports.includes(port)));
      expect(rule?.from, `a rule allows port ${port}`).toEqual([{ source: { ipBlocks: ['10.0.0.1'] } }]);
      expect(
        rule!.to.every((t) => t.operation.hosts === undefined),
        `the rule for ${port} has no hosts`,
      ).toBe(true);
    }
    const httpPort = String(svc.find((p) => p.name === 'http-out-9080')!.targetPort);
    expect(rules.find((r) => r.to.some((t) => t.operation.ports.includes(httpPort)))!.to[0]!.operation.hosts).toContain(
      'orders.sales.svc',
    );
  });

  it('a wildcard http destination keeps the app`s Host instead of rewriting it to the literal "*.zone"', () => {
    // The data-path finding: Host "*.zone.example" reached the server, and Envoy's dynamic
    // forward proxy (DYNAMIC_DNS) resolves the upstream from that Host. A concrete one still rewrites.
    const s = state([
      injectedPod({
        name: 'a-1',
        outbound: '*.zone.example:80 api.example.com:8080',
        resolver: 'dnsConfig',
        ip: '10.0.0.1',
      }),
    ]);
    const routes = s.objects
      .filter((o) => o.kind === 'VirtualService')
      .flatMap(
        (o) =>
          (spec(o).http ?? []) as Array<{
            rewrite?: { authority?: string };
            route: Array<{ destination: { host: string } }>;
          }>,
      );
    const wild = routes.filter((r) => r.route[0]!.destination.host === '*.zone.example');
    const concrete = routes.filter((r) => r.route[0]!.destination.host === 'api.example.com');
    expect(wild.length).toBeGreaterThan(0);
    for (const r of wild) expect(r.rewrite, 'no authority rewrite for a wildcard').toBeUndefined();
    expect(concrete.map((r) => r.rewrite?.authority)).toEqual(concrete.map(() => 'api.example.com'));
  });

  it('an app port equal to an inbound gateway pod port is reported and not routed', () => {
    const svc = repointedService(
      service('legacy', 'shop', { app: 'legacy' }, [{ name: 'http', port: 8080 }]),
      { app: 'legacy' },
      { uid: 'u1' },
    );
    const podPort = svc.spec?.ports?.[0]?.targetPort as number;
    const s = state([injectedPod({ name: 'a-1', outbound: `partner.example.com:${podPort}`, ip: '10.0.0.1' })], [svc]);
    expect(s.conflicts.map((c) => c.reason)).toContain('PortCollision');
    expect(spec(get(s.objects, 'Service', 'wpgw')).ports.map((p: { port: number }) => p.port)).not.toContain(podPort);
  });

  it('render pins wpgw-dns to the address pods were pointed at', () => {
    const ctx = staticContext();
    const pod = injectedPod({ name: 'a-1', outbound: 'example.com:80', resolver: 'dnsConfig', ctx, ip: '10.0.0.1' });
    const recorded = JSON.parse(pod.metadata?.annotations?.['wpgw.io/status'] ?? '{}').dnsIP;
    const s = state([pod]);
    expect(spec(find(s.objects, 'Service', 'wpgw-dns')).clusterIP).toBe(recorded);
    // render pins it explicitly (the same address it injected into the pods).
    expect(spec(find(state([pod], [], { pinnedDnsIP: '10.96.5.5' }).objects, 'Service', 'wpgw-dns')).clusterIP).toBe(
      '10.96.5.5',
    );
  });

  it('a user hostAlias identical to the injected one survives re-admission', () => {
    const ctx = staticContext();
    const first = mutatePod({
      pod: {
        metadata: { name: 'p', annotations: { 'wpgw.io/outbound': 'example.com:80' } },
        spec: { os: { name: 'windows' }, containers: [{ name: 'a' }] },
      },
      namespace: 'shop',
      ctx,
    });
    if (first.action !== 'mutate') throw new Error('expected mutate');
    const ours = first.pod.spec?.hostAliases?.[0];
    const withTwin = { ...first.pod, spec: { ...first.pod.spec!, hostAliases: [ours!, ours!] } };
    const again = mutatePod({ pod: withTwin, namespace: 'shop', ctx });
    if (again.action !== 'mutate') throw new Error('expected mutate');
    expect(again.pod.spec?.hostAliases).toHaveLength(2);
  });
});
