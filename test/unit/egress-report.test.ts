// The controller's egress report (ConfigMap wpgw-egress-report, src/core/desired/egress-report.ts):
// refused and unresolved external names per workload, the cluster ranges in force, and how
// `wpgw status` prints them. From the real desired state (pinning) and the real status formatter.
import { describe, expect, it } from 'vitest';
import { formatStatus, type NamespaceStatus } from '../../src/commands/status-report.js';
import { desiredNamespaceState, namespaceEgressRanges } from '../../src/core/desired.js';
import {
  EGRESS_REPORT,
  egressReport,
  egressReportConfigMap,
  readEgressReport,
} from '../../src/core/desired/egress-report.js';
import type { DesiredOptions, NamespaceInput } from '../../src/core/desired-types.js';
import { injectedPod, namespaceObject } from './helpers/builders.js';

const OPTS: DesiredOptions = {
  clusterDomain: 'cluster.local',
  defaultGatewayReplicas: 2,
  corednsImage: 'coredns',
  clusterCIDRs: ['203.0.113.0/24'],
};

function reportFor(outbound: string, resolved: NamespaceInput['resolved'], clusterAddresses: string[] = []) {
  const pod = injectedPod({ name: 'prober-7d9-abc', labels: { app: 'prober' }, outbound, ip: '10.244.64.10' });
  const input: NamespaceInput = {
    namespace: namespaceObject('shop'),
    pods: [pod],
    services: [],
    clusterAddresses,
    ...(resolved ? { resolved } : {}),
  };
  const state = desiredNamespaceState(input, OPTS);
  return egressReport({
    namespace: 'shop',
    flags: OPTS.clusterCIDRs!,
    discovered: [
      { cidr: '10.244.0.0/24', source: 'node linux-1 podCIDR' },
      { cidr: '127.0.100.1/32', source: 'node linux-1 InternalIP' },
      { cidr: '198.51.100.0/24', source: 'node edge-1 podCIDR' },
    ],
    discovery: { nodes: 'watched', serviceCIDRs: 'watched' },
    ranges: namespaceEgressRanges(input, OPTS),
    refusals: state.refusals ?? [],
    ownerOf: (pod) => (pod === 'prober-7d9-abc' ? 'Deployment/prober' : `Pod/${pod}`),
  });
}

describe('egress report', () => {
  const resolved = {
    'meta.evil.example': { addresses: ['169.254.169.254'] },
    'intranet.example': { addresses: ['10.20.0.5'] },
    'gone.example': { addresses: [], error: 'ENOTFOUND' },
    'example.com': { addresses: ['93.184.216.34'] },
  };
  const outbound = 'meta.evil.example:80 intranet.example:8080 gone.example:443+tls example.com:80';

  it('lists each refused or unresolved name by workload with the address, range and whether the allowlist may re-open it', () => {
    const r = reportFor(outbound, resolved);
    expect(
      r.refusals.map((f) => [f.workload, f.reason, f.host, f.addresses.map((a) => [a.address, a.range, a.allowable])]),
    ).toEqual([
      ['Deployment/prober', 'ExternalNameUnresolved', 'gone.example', []],
      ['Deployment/prober', 'ForbiddenAddress', 'intranet.example', [['10.20.0.5', '10.0.0.0/8', true]]],
      ['Deployment/prober', 'ForbiddenAddress', 'meta.evil.example', [['169.254.169.254', '169.254.0.0/16', false]]],
    ]);
    // the good name is not in it; offline (no resolver) nothing is
    expect(r.refusals.some((f) => f.host === 'example.com')).toBe(false);
    expect(reportFor(outbound, undefined).refusals).toEqual([]);
  });

  it('cluster ranges: the flags, and only discovered ranges that widen what is denied (private ones are denied anyway)', () => {
    const r = reportFor('example.com:80', { 'example.com': { addresses: ['93.184.216.34'] } });
    expect(r.clusterRanges).toEqual({
      flags: ['203.0.113.0/24'],
      discovered: [{ cidr: '198.51.100.0/24', source: 'node edge-1 podCIDR' }],
      coveredAnyway: true,
      discovery: { nodes: 'watched', serviceCIDRs: 'watched' },
    });
  });

  it('round-trips through its ConfigMap; anything else reads as no report', () => {
    const r = reportFor(outbound, resolved);
    const cm = egressReportConfigMap('shop', r);
    expect(cm.metadata).toMatchObject({
      name: EGRESS_REPORT,
      namespace: 'shop',
      labels: { 'app.kubernetes.io/managed-by': 'wpgw' },
    });
    expect(readEgressReport(cm as { data?: Record<string, string> })).toEqual(r);
    expect(readEgressReport({ data: { 'report.json': 'not json' } })).toBeUndefined();
    expect(readEgressReport({ data: {} })).toBeUndefined();
    expect(readEgressReport(undefined)).toBeUndefined();
  });

  it('wpgw status prints the refusals per workload with the hint, and the ranges in force', () => {
    const base: NamespaceStatus = {
      namespace: 'shop',
      optedIn: true,
      gateway: {},
      repointed: [],
      destinations: [],
      drift: [],
      restartOnIpChange: true,
      conflicts: [],
      notes: [],
      leaving: [],
    };
    const text = formatStatus({ namespaces: [{ ...base, egress: reportFor(outbound, resolved) }], errors: [] });
    expect(text).toContain(
      '  egress ranges: --cluster-cidrs 203.0.113.0/24; discovered: nodes watched, ServiceCIDRs watched\n',
    );
    expect(text).toContain(
      '  egress ranges: discovered, excepted from external egress: 198.51.100.0/24 (node edge-1 podCIDR)\n',
    );
    expect(text).toContain(
      '  egress ranges: the other discovered ranges lie in ranges denied anyway (loopback, link-local, private)\n',
    );
    expect(text).toContain(
      '  refused:      Deployment/prober (pod prober-7d9-abc): "meta.evil.example:80": meta.evil.example resolves to 169.254.169.254 (in 169.254.0.0/16, link-local, incl. the cloud metadata address 169.254.169.254); not routed; never allowed',
    );
    expect(text).toContain(
      '"intranet.example:8080": intranet.example resolves to 10.20.0.5 (in 10.0.0.0/8, a private range); not routed; if it is meant, add 10.20.0.5/32 to the Namespace annotation wpgw.io/egress-allow-cidrs of shop\n',
    );
    expect(text).toContain(
      '  unresolved:   Deployment/prober (pod prober-7d9-abc): "gone.example:443+tls": gone.example did not resolve (ENOTFOUND)',
    );
  });
});
