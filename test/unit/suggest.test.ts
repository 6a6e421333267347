// `wpgw suggest` core: wpgw-dns's query log (CoreDNS "log" plugin, its default format) -> per
// workload, the names not declared and not covered by mesh-wide outbound, with the entry to paste.
import type { V1Pod, V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { formatSuggestions, parseQueryLog, suggestEntries, workloadOf } from '../../src/core/suggest.js';
import { injectedPod, namespaceObject } from './helpers/builders.js';

// Lines as CoreDNS 1.12 writes them (the data-path suite greps the same format from the real binary).
const line = (ip: string, type: string, name: string, rcode: string) =>
  `[INFO] ${ip}:41234 - 5150 "${type} IN ${name}. udp 41 false 1232" ${rcode} qr,rd,ra 106 0.000512s`;

function owned(pod: V1Pod, deployment: string, hash: string): V1Pod {
  return {
    ...pod,
    metadata: {
      ...pod.metadata,
      labels: { ...pod.metadata?.labels, 'pod-template-hash': hash },
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${deployment}-${hash}`, uid: 'u', controller: true },
      ],
    },
  };
}

const svc = (
  name: string,
  namespace: string,
  ports: V1Service['spec'] extends infer S ? (S extends { ports?: infer P } ? P : never) : never,
): V1Service => ({ metadata: { name, namespace }, spec: { ports } });

const CLUSTER: V1Service[] = [
  svc('orders', 'sales', [{ name: 'http', port: 9080 }]),
  svc('db', 'sales', [{ name: 'tcp-pg', port: 5432 }]),
  svc('mixed', 'sales', [
    { name: 'http', port: 8080 },
    { name: 'tls-x', port: 8443 },
  ]),
  svc('cache', 'shop', [{ name: 'redis', port: 6379 }]),
];

describe('wpgw suggest', () => {
  it('parses CoreDNS query lines (IPv4 and IPv6 clients) and ignores the rest', () => {
    const text = [
      '.:1053',
      'CoreDNS-1.12.4',
      line('10.244.64.10', 'A', 'Api.Example.com', 'NOERROR'),
      '[INFO] [fd00::5]:5353 - 1 "AAAA IN x.test. tcp 30 false 65535" NXDOMAIN qr,aa 30 0.1s',
      '[ERROR] plugin/errors: 2 x. A: read udp: i/o timeout',
    ].join('\n');
    expect(parseQueryLog(text)).toEqual([
      { client: '10.244.64.10', type: 'A', name: 'api.example.com', rcode: 'NOERROR' },
      { client: 'fd00::5', type: 'AAAA', name: 'x.test', rcode: 'NXDOMAIN' },
    ]);
  });

  it('per workload: external names and uncovered Services with the exact entry; declared, covered, search-path misses and other pods left out', () => {
    const legacy = owned(
      injectedPod({
        name: 'legacy-6d4f-abcde',
        outbound: 'orders.sales.svc:9080, example.com:80+tls, tls://*.zone.test:443',
        ip: '10.244.64.10',
        resolver: 'dnsConfig',
      }),
      'legacy',
      '6d4f',
    );
    const meshy = owned(
      injectedPod({ name: 'meshy-77aa-xyz12', mesh: 'sales/*', ip: '10.244.64.11' }),
      'meshy',
      '77aa',
    );
    const log = parseQueryLog(
      [
        // legacy: its declared names, then an undeclared external host (after the search path) and a Service
        line('10.244.64.10', 'A', 'orders.sales.svc.cluster.local', 'NOERROR'),
        line('10.244.64.10', 'A', 'example.com', 'NOERROR'),
        line('10.244.64.10', 'A', 'api.zone.test', 'NOERROR'), // under the declared wildcard
        line('10.244.64.10', 'A', 'api.partner.test.shop.svc.cluster.local', 'NXDOMAIN'),
        line('10.244.64.10', 'A', 'api.partner.test.svc.cluster.local', 'NXDOMAIN'),
        line('10.244.64.10', 'A', 'api.partner.test', 'NOERROR'),
        line('10.244.64.10', 'AAAA', 'api.partner.test', 'NOERROR'),
        line('10.244.64.10', 'A', 'cache.shop.svc.cluster.local', 'NOERROR'),
        // meshy: sales/* covers orders (HTTP) but not db (TCP) nor mixed's TLS port
        line('10.244.64.11', 'A', 'orders.sales.svc.cluster.local', 'NOERROR'),
        line('10.244.64.11', 'A', 'db.sales.svc.cluster.local', 'NOERROR'),
        line('10.244.64.11', 'A', 'mixed.sales.svc.cluster.local', 'NOERROR'),
        line('10.244.64.11', 'A', 'gone.sales.svc.cluster.local', 'NOERROR'), // no such Service (any more)
        line('10.244.64.11', 'A', 'typo.example', 'NXDOMAIN'),
        // not a managed pod of the namespace
        line('10.244.99.99', 'A', 'elsewhere.test', 'NOERROR'),
      ].join('\n'),
    );
    const input = { namespace: namespaceObject('shop'), pods: [legacy, meshy], services: [], clusterServices: CLUSTER };
    const out = suggestEntries(input, log, 'cluster.local');
    expect(
      out.map((w) => ({
        workload: w.workload,
        pods: w.pods,
        entries: w.suggestions.flatMap((s) => s.entries),
        queries: w.suggestions.map((s) => s.queries),
      })),
    ).toEqual([
      {
        workload: 'Deployment/legacy',
        pods: ['legacy-6d4f-abcde'],
        entries: ['tls://api.partner.test:443', 'tcp://cache.shop.svc:6379'],
        queries: [2, 1],
      },
      {
        workload: 'Deployment/meshy',
        pods: ['meshy-77aa-xyz12'],
        entries: ['tcp://db.sales.svc:5432', 'tls://mixed.sales.svc:8443'],
        queries: [1, 1],
      },
    ]);
    const text = formatSuggestions('shop', out);
    expect(text).toContain(
      '  Deployment/legacy (pods legacy-6d4f-abcde): add to wpgw.io/outbound of its pod template\n    tls://api.partner.test:443\n      # api.partner.test: 2 queries; external: DNS carries no port, 443',
    );
    expect(text).toContain(
      '    tcp://db.sales.svc:5432\n      # db.sales.svc.cluster.local: 1 query; in the mesh-wide scope, but TCP or app-TLS: not routable without an entry',
    );
    expect(formatSuggestions('quiet', [])).toMatch(/nothing to suggest/);
  });

  it('names the workload of a pod: a Deployment through its ReplicaSet, else the owner, else the pod', () => {
    const base = injectedPod({ name: 'p-1', outbound: 'example.com:80' });
    expect(workloadOf(owned(base, 'web', 'abc12'))).toBe('Deployment/web');
    expect(
      workloadOf({
        ...base,
        metadata: {
          ...base.metadata,
          ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', uid: 'u', controller: true }],
        },
      }),
    ).toBe('StatefulSet/db');
    expect(workloadOf(base)).toBe('Pod/p-1');
  });
});
