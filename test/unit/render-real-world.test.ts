// `wpgw render` over examples/real-world.yaml (issue 11 items 2-5): Argo Rollouts, Services
// non-mesh clients reach, ClientIP affinity, a selector shared with a Linux Deployment; and
// Services whose <name>-app cannot exist.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { render } from '../../src/render.js';

const ROOT = resolve(import.meta.dirname, '../..');
const REAL = readFileSync(join(ROOT, 'examples/real-world.yaml'), 'utf8');

type Doc = any;
const docsOf = (yaml: string): Doc[] =>
  parseAllDocuments(yaml)
    .map((d) => d.toJS() as Doc)
    .filter((d) => d !== null);
const pick = (all: Doc[], kind: string, name: string): Doc => {
  const found = all.filter((d) => d.kind === kind && d.metadata?.name === name);
  expect(found, `${kind}/${name}`).toHaveLength(1);
  return found[0];
};

describe('render: examples/real-world.yaml', () => {
  const r = render(REAL, { gatewayIP: '10.96.100.10' });
  const out = docsOf(r.yaml);
  const input = docsOf(REAL);

  it('renders without errors, and rendering the output again changes nothing', () => {
    expect(r.errors).toEqual([]);
    const again = render(r.yaml, { gatewayIP: '10.96.100.10' });
    expect(again.errors).toEqual([]);
    expect(docsOf(again.yaml)).toEqual(out);
  });

  it('an Argo Rollout is a workload: its Windows template is injected and its stable Service re-pointed', () => {
    const tpl = pick(out, 'Rollout', 'checkout').spec.template;
    expect(tpl.spec.hostAliases).toEqual([
      {
        ip: '10.96.100.10',
        hostnames: ['payments', 'payments.store', 'payments.store.svc', 'payments.store.svc.cluster.local'],
      },
    ]);
    expect(tpl.metadata.labels['wpgw.io/managed']).toBe('true');
    expect(pick(out, 'Rollout', 'checkout').spec.strategy).toEqual(pick(input, 'Rollout', 'checkout').spec.strategy);
    expect(pick(out, 'Service', 'checkout').spec.selector).toEqual({ 'wpgw.io/gateway': 'store' });
    expect(pick(out, 'Service', 'checkout-app').spec.selector).toEqual({ app: 'checkout' });
    expect(r.report).toContain('Rollout/checkout in namespace store: injected');
  });

  it('ClientIP affinity is carried to the gateway -> checkout-app hop and said so', () => {
    expect(pick(out, 'DestinationRule', 'wpgw-app-checkout').spec.trafficPolicy).toEqual({
      tls: { mode: 'DISABLE' },
      loadBalancer: { consistentHash: { useSourceIp: true } },
    });
    expect(
      r.report.some((l) =>
        l.startsWith(
          'warning: Service/checkout in namespace store: service "checkout": sessionAffinity ClientIP is carried',
        ),
      ),
    ).toBe(true);
  });

  it('the LoadBalancer Service Prometheus scrapes is left alone, said so, and its clients let through to the Windows pods', () => {
    expect(pick(out, 'Service', 'portal-public')).toEqual(pick(input, 'Service', 'portal-public'));
    expect(out.some((d) => d.kind === 'Service' && d.metadata.name === 'portal-public-app')).toBe(false);
    expect(r.report).toContain('Service/portal-public in namespace store: unchanged (non_mesh_clients)');
    expect(
      r.report.some((l) =>
        /^warning: Service\/portal-public .*is left alone .*type LoadBalancer.*prometheus\.io\/scrape/.test(l),
      ),
    ).toBe(true);
    expect(r.report.some((l) => l.startsWith('conflict: namespace store: Service/portal-public: is left alone'))).toBe(
      true,
    );
    const np = pick(out, 'NetworkPolicy', 'wpgw-direct-portal-public');
    expect(np.spec.podSelector.matchLabels).toEqual({ app: 'portal', 'wpgw.io/managed': 'true' });
    expect(np.spec.ingress).toEqual([
      {
        ports: [
          { protocol: 'TCP', port: 'http' },
          { protocol: 'TCP', port: 9102 },
        ],
      },
    ]);
    // The mesh-facing Service of the same pods is re-pointed.
    expect(pick(out, 'Service', 'portal').spec.selector).toEqual({ 'wpgw.io/gateway': 'store' });
  });

  it('a Service shared with a Linux Deployment is re-pointed with catalog-app narrowed to the Windows pods, naming the Linux one', () => {
    expect(pick(out, 'Service', 'catalog-app').spec.selector).toEqual({ app: 'catalog', 'wpgw.io/managed': 'true' });
    expect(
      r.report.some((l) =>
        l.includes(
          'service "catalog": its selector also matches workloads wpgw does not manage: Deployment/catalog-linux (not Windows)',
        ),
      ),
    ).toBe(true);
    expect(pick(out, 'Deployment', 'catalog-linux')).toEqual(pick(input, 'Deployment', 'catalog-linux'));
  });
});

describe('render: a Service whose <name>-app cannot exist', () => {
  const windowsApp = (svcName: string) => `
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: shop}
spec:
  selector: {matchLabels: {app: win}}
  template:
    metadata: {labels: {app: win}}
    spec:
      nodeSelector: {kubernetes.io/os: windows}
      containers: [{name: c, image: i}]
---
apiVersion: v1
kind: Service
metadata: {name: ${svcName}, namespace: shop}
spec:
  selector: {app: win}
  ports: [{name: http, port: 80}]
`;

  it('a 60-character name fails the render naming the Service and the limit', () => {
    const name = `a${'b'.repeat(58)}c`;
    const r = render(windowsApp(name));
    expect(r.errors).toEqual([
      `Service/${name} in namespace shop: service "${name}": cannot be re-pointed at the wpgw gateway: its Windows pods would be reached through a Service named "${name}-app" (64 characters; Service names are at most 63); rename the Service to at most 59 characters`,
    ]);
  });

  it('a <name>-app the input already defines fails the render naming it', () => {
    const r = render(`${windowsApp('legacy')}---
apiVersion: v1
kind: Service
metadata: {name: legacy-app, namespace: shop}
spec:
  selector: {app: something-else}
  ports: [{port: 80}]
`);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatch(
      /^Service\/legacy in namespace shop: service "legacy": .*"legacy-app", and a Service of that name already exists that wpgw does not manage/,
    );
  });
});

describe('render: an Ingress of another controller in the input', () => {
  it('leaves the Service it sends to alone, and says which Ingress', () => {
    const input = `${REAL}---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: storefront, namespace: store}
spec:
  ingressClassName: nginx
  rules:
  - host: store.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: portal, port: {number: 8080}}}}
`;
    const r = render(input, { gatewayIP: '10.96.100.10' });
    expect(r.errors).toEqual([]);
    const out = docsOf(r.yaml);
    expect(pick(out, 'Service', 'portal').spec.selector).toEqual({ app: 'portal' });
    expect(
      r.report.some(
        (l) =>
          l.includes('service "portal": is left alone') && l.includes('sent to by Ingress/storefront (class nginx)'),
      ),
    ).toBe(true);
    expect(pick(out, 'NetworkPolicy', 'wpgw-direct-portal').spec.ingress).toEqual([
      { ports: [{ protocol: 'TCP', port: 'http' }] },
    ]);
  });
});
