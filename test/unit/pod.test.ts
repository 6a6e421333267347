import { describe, expect, it } from 'vitest';
import { mutatePod, stripInjection, type PodLike } from '../../src/core/pod.js';
import { staticContext } from '../lib/admission.js';

const ctx = staticContext({
  gatewayIPs: { shop: '10.96.0.50' },
  dnsIPs: { shop: '10.96.0.53' },
  namespaceAnnotations: { dns: { 'wpgw.io/resolver': 'dnsConfig' } },
});

function windowsPod(
  annotations: Record<string, string> = {},
  extra: Partial<NonNullable<PodLike['spec']>> = {},
): PodLike {
  return {
    metadata: { name: 'legacy-1', namespace: 'shop', labels: { app: 'legacy' }, annotations },
    spec: { nodeSelector: { 'kubernetes.io/os': 'windows' }, containers: [{ name: 'app', image: 'app' }], ...extra },
  };
}

describe('pod mutation, hostAliases mode', () => {
  it('points every dialable name at the gateway and keeps user hostAliases', () => {
    const pod = windowsPod(
      { 'wpgw.io/outbound': 'orders.shop.svc.cluster.local:9080, example.com:80+tls' },
      { hostAliases: [{ ip: '192.168.1.1', hostnames: ['legacy-db'] }] },
    );
    const out = mutatePod({ pod, namespace: 'shop', ctx });
    expect(out.action).toBe('mutate');
    if (out.action !== 'mutate') return;
    expect(out.pod.spec?.hostAliases).toEqual([
      { ip: '192.168.1.1', hostnames: ['legacy-db'] },
      {
        ip: '10.96.0.50',
        hostnames: ['example.com', 'orders', 'orders.shop', 'orders.shop.svc', 'orders.shop.svc.cluster.local'],
      },
    ]);
    expect(out.pod.metadata?.labels?.['wpgw.io/managed']).toBe('true');
    const status = JSON.parse(out.pod.metadata?.annotations?.['wpgw.io/status'] ?? '{}');
    expect(status).toMatchObject({
      v: 1,
      mode: 'hostAliases',
      gatewayIP: '10.96.0.50',
      outbound: ['orders.shop.svc.cluster.local:9080', 'example.com:80+tls'],
    });
    // The input object is not modified.
    expect(pod.spec?.hostAliases).toHaveLength(1);
  });

  it('is idempotent: mutating the result again gives the same pod', () => {
    const first = mutatePod({ pod: windowsPod({ 'wpgw.io/outbound': 'example.com:80' }), namespace: 'shop', ctx });
    if (first.action !== 'mutate') throw new Error('expected mutate');
    const second = mutatePod({ pod: first.pod, namespace: 'shop', ctx });
    if (second.action !== 'mutate') throw new Error('expected mutate');
    expect(second.pod).toEqual(first.pod);
  });

  it('follows a gateway address change on re-admission (strip and re-apply)', () => {
    const first = mutatePod({ pod: windowsPod({ 'wpgw.io/outbound': 'example.com:80' }), namespace: 'shop', ctx });
    if (first.action !== 'mutate') throw new Error('expected mutate');
    const moved = staticContext({ gatewayIPs: { shop: '10.96.9.9' }, dnsIP: undefined });
    const second = mutatePod({ pod: first.pod, namespace: 'shop', ctx: moved });
    if (second.action !== 'mutate') throw new Error('expected mutate');
    expect(second.pod.spec?.hostAliases).toEqual([{ ip: '10.96.9.9', hostnames: ['example.com'] }]);
  });

  it('denies when the namespace has no gateway yet, saying so', () => {
    const out = mutatePod({ pod: windowsPod({ 'wpgw.io/outbound': 'example.com:80' }), namespace: 'other', ctx });
    expect(out).toMatchObject({ action: 'deny', reason: 'no_gateway' });
    if (out.action === 'deny') expect(out.message).toMatch(/namespace "other" has no wpgw gateway yet/);
  });

  it('manages a Windows pod without destinations (label only, no gateway needed)', () => {
    const out = mutatePod({ pod: windowsPod(), namespace: 'nogw', ctx });
    expect(out.action).toBe('mutate');
    if (out.action === 'mutate') {
      expect(out.pod.spec?.hostAliases).toBeUndefined();
      expect(out.pod.metadata?.labels?.['wpgw.io/managed']).toBe('true');
    }
  });

  it('denies a bad annotation naming the entry', () => {
    const out = mutatePod({ pod: windowsPod({ 'wpgw.io/outbound': 'example.com:80, nope' }), namespace: 'shop', ctx });
    expect(out).toMatchObject({ action: 'deny', reason: 'invalid_outbound' });
    if (out.action === 'deny') expect(out.message).toContain('"nope"');
  });

  it('denies wildcards outside dnsConfig mode and bad resolver values', () => {
    expect(
      mutatePod({ pod: windowsPod({ 'wpgw.io/outbound': 'tls://*.example.com:443' }), namespace: 'shop', ctx }),
    ).toMatchObject({
      action: 'deny',
      reason: 'wildcard_needs_dns',
    });
    expect(mutatePod({ pod: windowsPod({ 'wpgw.io/resolver': 'hosts' }), namespace: 'shop', ctx })).toMatchObject({
      action: 'deny',
      reason: 'invalid_resolver',
    });
  });
});

describe('pod mutation, dnsConfig mode', () => {
  it('points the resolver at wpgw-dns and restores the previous DNS settings when stripped', () => {
    const pod = windowsPod(
      { 'wpgw.io/outbound': 'tls://*.example.com:443', 'wpgw.io/resolver': 'dnsConfig' },
      {
        dnsPolicy: 'ClusterFirst',
        dnsConfig: { searches: ['corp.example'], options: [{ name: 'timeout', value: '2' }] },
      },
    );
    const out = mutatePod({ pod, namespace: 'shop', ctx });
    if (out.action !== 'mutate') throw new Error(`expected mutate, got ${JSON.stringify(out)}`);
    expect(out.pod.spec?.dnsPolicy).toBe('None');
    expect(out.pod.spec?.dnsConfig).toEqual({
      nameservers: ['10.96.0.53'],
      searches: ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local', 'corp.example'],
      options: [
        { name: 'ndots', value: '5' },
        { name: 'timeout', value: '2' },
      ],
    });
    expect(out.pod.spec?.hostAliases).toBeUndefined();
    const stripped = stripInjection(out.pod);
    expect(stripped.spec?.dnsPolicy).toBe('ClusterFirst');
    expect(stripped.spec?.dnsConfig).toEqual(pod.spec?.dnsConfig);
    expect(stripped.metadata?.labels).toEqual({ app: 'legacy' });
  });

  it('takes the mode from the namespace and denies when wpgw-dns is missing', () => {
    const out = mutatePod({ pod: { ...windowsPod({ 'wpgw.io/outbound': 'example.com:80' }) }, namespace: 'dns', ctx });
    expect(out).toMatchObject({ action: 'deny', reason: 'no_dns_service' });
  });
});

describe('pods with their own DNS', () => {
  const adDns = {
    dnsPolicy: 'None',
    dnsConfig: { nameservers: ['10.1.0.4', '10.1.0.5'], searches: ['corp.example.com'] },
  } as const;

  it.each([
    ['dnsPolicy None with its own nameservers', adDns],
    ['ClusterFirst plus extra nameservers', { dnsPolicy: 'ClusterFirst', dnsConfig: { nameservers: ['10.1.0.4'] } }],
  ])('%s in dnsConfig mode is denied, naming the nameservers and the way out', (_what, extra) => {
    const out = mutatePod({
      pod: windowsPod({ 'wpgw.io/outbound': 'example.com:80', 'wpgw.io/resolver': 'dnsConfig' }, extra as never),
      namespace: 'shop',
      ctx,
    });
    if (out.action !== 'deny') throw new Error(JSON.stringify(out));
    expect(out.reason).toBe('own_nameservers');
    expect(out.message).toContain('pod "legacy-1"');
    expect(out.message).toContain(extra.dnsConfig.nameservers.join(', '));
    expect(out.message).toContain('wpgw.io/resolver: hostAliases');
  });

  it('in hostAliases mode keeps its DNS exactly as written', () => {
    const out = mutatePod({
      pod: windowsPod({ 'wpgw.io/outbound': 'example.com:80' }, adDns as never),
      namespace: 'shop',
      ctx,
    });
    if (out.action !== 'mutate') throw new Error(JSON.stringify(out));
    expect(out.pod.spec?.dnsPolicy).toBe('None');
    expect(out.pod.spec?.dnsConfig).toEqual(adDns.dnsConfig);
    expect(out.warnings).toEqual([]);
  });

  it('dnsPolicy Default without nameservers is admitted with a warning that the NetworkPolicy cannot know the node resolvers', () => {
    const out = mutatePod({
      pod: windowsPod({ 'wpgw.io/outbound': 'example.com:80' }, { dnsPolicy: 'Default' }),
      namespace: 'shop',
      ctx,
    });
    if (out.action !== 'mutate') throw new Error(JSON.stringify(out));
    expect(out.warnings).toEqual([
      expect.stringMatching(
        /^pod "legacy-1": uses dnsPolicy Default .* list the node's resolvers in dnsConfig.nameservers/,
      ),
    ]);
    const listed = mutatePod({
      pod: windowsPod({}, { dnsPolicy: 'Default', dnsConfig: { nameservers: ['168.63.129.16'] } }),
      namespace: 'shop',
      ctx,
    });
    expect(listed.action === 'mutate' && listed.warnings).toEqual([]);
  });

  it('dnsPolicy Default in dnsConfig mode is replaced by wpgw-dns (which forwards to cluster DNS) without a warning', () => {
    const out = mutatePod({
      pod: windowsPod(
        { 'wpgw.io/outbound': 'example.com:80', 'wpgw.io/resolver': 'dnsConfig' },
        { dnsPolicy: 'Default' },
      ),
      namespace: 'shop',
      ctx,
    });
    if (out.action !== 'mutate') throw new Error(JSON.stringify(out));
    expect(out.pod.spec?.dnsPolicy).toBe('None');
    expect(out.warnings).toEqual([]);
  });
});

describe('which pods are touched', () => {
  it('skips Linux pods and honours opt-in and opt-out', () => {
    const linux: PodLike = { metadata: { name: 'web' }, spec: { containers: [{ name: 'web' }] } };
    expect(mutatePod({ pod: linux, namespace: 'shop', ctx })).toMatchObject({ action: 'skip', reason: 'not_windows' });
    const optedIn = { ...linux, metadata: { name: 'web', labels: { 'wpgw.io/inject': 'true' } } };
    expect(mutatePod({ pod: optedIn, namespace: 'shop', ctx }).action).toBe('mutate');
    const optedOut = windowsPod({ 'wpgw.io/inject': 'false', 'wpgw.io/outbound': 'example.com:80' });
    expect(mutatePod({ pod: optedOut, namespace: 'shop', ctx })).toMatchObject({ action: 'skip', reason: 'opted_out' });
    expect(mutatePod({ pod: windowsPod({ 'wpgw.io/inject': 'maybe' }), namespace: 'shop', ctx })).toMatchObject({
      action: 'deny',
      reason: 'invalid_inject_value',
    });
  });

  it('the label wins over the annotation', () => {
    const pod = windowsPod({ 'wpgw.io/inject': 'false' });
    pod.metadata!.labels = { 'wpgw.io/inject': 'true' };
    expect(mutatePod({ pod, namespace: 'shop', ctx }).action).toBe('mutate');
  });

  it('warns for hostNetwork and HostProcess pods, and denies them when routing was asked for', () => {
    const hostNet = mutatePod({ pod: windowsPod({}, { hostNetwork: true }), namespace: 'shop', ctx });
    expect(hostNet).toMatchObject({ action: 'skip', reason: 'host_network' });
    if (hostNet.action === 'skip') expect(hostNet.warnings[0]).toMatch(/hostNetwork/);
    const hp = mutatePod({
      pod: windowsPod(
        { 'wpgw.io/outbound': 'example.com:80' },
        { securityContext: { windowsOptions: { hostProcess: true } } },
      ),
      namespace: 'shop',
      ctx,
    });
    expect(hp).toMatchObject({ action: 'deny', reason: 'host_network_outbound' });
  });

  it('strips an injection copied onto a pod that opted out', () => {
    const first = mutatePod({ pod: windowsPod({ 'wpgw.io/outbound': 'example.com:80' }), namespace: 'shop', ctx });
    if (first.action !== 'mutate') throw new Error('expected mutate');
    const copied: PodLike = {
      ...first.pod,
      metadata: {
        ...first.pod.metadata,
        annotations: { ...first.pod.metadata?.annotations, 'wpgw.io/inject': 'false' },
      },
    };
    const out = mutatePod({ pod: copied, namespace: 'shop', ctx });
    expect(out.action).toBe('mutate');
    if (out.action === 'mutate') {
      expect(out.reason).toBe('stripped');
      expect(out.pod.spec?.hostAliases).toBeUndefined();
      expect(out.pod.metadata?.labels?.['wpgw.io/managed']).toBeUndefined();
    }
  });
});

describe('Istio sidecar injection', () => {
  it('tells Istio to skip a managed pod, and keeps a user label as it is', () => {
    const out = mutatePod({ pod: windowsPod({ 'wpgw.io/outbound': 'example.com:80' }), namespace: 'shop', ctx });
    if (out.action !== 'mutate') throw new Error('expected mutate');
    expect(out.pod.metadata?.labels?.['sidecar.istio.io/inject']).toBe('false');
    expect(stripInjection(out.pod).metadata?.labels?.['sidecar.istio.io/inject']).toBeUndefined();
    const own = windowsPod();
    own.metadata!.labels = { app: 'legacy', 'sidecar.istio.io/inject': 'false' };
    const kept = mutatePod({ pod: own, namespace: 'shop', ctx });
    if (kept.action !== 'mutate') throw new Error('expected mutate');
    expect(stripInjection(kept.pod).metadata?.labels?.['sidecar.istio.io/inject']).toBe('false');
  });

  it("undoes Istio's injection when its webhook ran first", () => {
    const pod = windowsPod(
      {
        'wpgw.io/outbound': 'example.com:80',
        'sidecar.istio.io/status': JSON.stringify({
          initContainers: ['istio-init'],
          containers: ['istio-proxy'],
          volumes: ['istio-envoy', 'istio-data'],
        }),
      },
      {
        initContainers: [
          { name: 'istio-init', image: 'proxyv2' },
          { name: 'setup', image: 'setup' },
        ],
        containers: [
          { name: 'app', image: 'app' },
          { name: 'istio-proxy', image: 'proxyv2' },
        ],
        volumes: [
          { name: 'istio-envoy', emptyDir: {} },
          { name: 'istio-data', emptyDir: {} },
          { name: 'data', emptyDir: {} },
        ],
      },
    );
    const out = mutatePod({ pod, namespace: 'shop', ctx });
    if (out.action !== 'mutate') throw new Error('expected mutate');
    expect(out.pod.spec?.containers.map((c) => c.name)).toEqual(['app']);
    expect(out.pod.spec?.initContainers?.map((c) => c.name)).toEqual(['setup']);
    expect(out.pod.spec?.volumes?.map((v) => v.name)).toEqual(['data']);
    expect(out.pod.metadata?.annotations?.['sidecar.istio.io/status']).toBeUndefined();
    expect(out.warnings.join(' ')).toMatch(/removed Istio's sidecar injection \(istio-proxy, istio-init\)/);
  });

  it('drops a malformed status record instead of restoring it', () => {
    const pod = windowsPod({
      'wpgw.io/outbound': 'example.com:80',
      'wpgw.io/status': JSON.stringify({
        v: 1,
        mode: 'dnsConfig',
        dnsIP: '10.96.0.53',
        outbound: [],
        previousDnsConfig: { evil: { deep: [1] } },
      }),
    });
    const out = mutatePod({ pod, namespace: 'shop', ctx });
    if (out.action !== 'mutate') throw new Error('expected mutate');
    expect(JSON.parse(out.pod.metadata?.annotations?.['wpgw.io/status'] ?? '{}')).toMatchObject({
      mode: 'hostAliases',
      gatewayIP: '10.96.0.50',
    });
  });
});
