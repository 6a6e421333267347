import type { V1Deployment, V1Namespace, V1Pod, V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { DesiredState, NamespaceInput } from '../../src/core/desired-types.js';
import { formatStatus, summarizeNamespace } from '../../src/commands/status-report.js';

const ns: V1Namespace = { metadata: { name: 'shop', labels: { 'wpgw.io/inject': 'enabled' } } };
const services: V1Service[] = [
  { metadata: { name: 'wpgw' }, spec: { clusterIP: '10.96.0.10' } },
  { metadata: { name: 'wpgw-dns' }, spec: { clusterIP: '10.96.0.53' } },
  { metadata: { name: 'legacy', annotations: { 'wpgw.io/original': '{}' } }, spec: { clusterIP: '10.96.0.20' } },
  { metadata: { name: 'plain' }, spec: { clusterIP: '10.96.0.21' } },
];
const status = (ip: string) => JSON.stringify({ v: 1, mode: 'hostAliases', gatewayIP: ip, outbound: [] });
const pods: V1Pod[] = [
  {
    metadata: {
      name: 'legacy-1',
      annotations: { 'wpgw.io/outbound': 'orders.sales:9080, example.com:443', 'wpgw.io/status': status('10.96.0.10') },
    },
  },
  {
    metadata: {
      name: 'legacy-0',
      annotations: { 'wpgw.io/outbound': 'example.com:443', 'wpgw.io/status': status('10.96.0.9') },
    },
  },
];
const deployment: V1Deployment = {
  metadata: { name: 'wpgw' },
  spec: { replicas: 2, selector: {}, template: {} },
  status: { readyReplicas: 1 },
};

const desired = (input: NamespaceInput): DesiredState => ({
  objects: [],
  conflicts: [
    { subject: 'Service/plain', reason: 'PortTaken', message: `port 80 in ${input.namespace.metadata?.name}` },
  ],
  notes: ['gateway: Service wpgw'],
});

describe('status', () => {
  it('summarizes gateway, re-pointed Services, destinations, drift and conflicts', () => {
    const s = summarizeNamespace({ namespace: ns, pods, services }, deployment, desired);
    expect(s).toEqual({
      namespace: 'shop',
      optedIn: true,
      gateway: { serviceIP: '10.96.0.10', dnsIP: '10.96.0.53', deployment: { name: 'wpgw', ready: 1, desired: 2 } },
      repointed: [{ service: 'legacy', app: 'legacy-app', onlyManaged: false }],
      destinations: [
        { pod: 'legacy-0', outbound: 'example.com:443' },
        { pod: 'legacy-1', outbound: 'orders.sales:9080, example.com:443' },
      ],
      drift: [{ pod: 'legacy-0', recordedIP: '10.96.0.9', currentIP: '10.96.0.10' }],
      restartOnIpChange: true,
      conflicts: [{ subject: 'Service/plain', reason: 'PortTaken', message: 'port 80 in shop' }],
      notes: ['gateway: Service wpgw'],
      leaving: [],
    });
  });

  it("reads the Istio revision the controller chose from the live gateway's pod template", () => {
    const seen: Array<string | undefined> = [];
    const record = (_: NamespaceInput, o: { istioRevision?: string }) => (seen.push(o.istioRevision), desired(_));
    const labelled: V1Deployment = {
      ...deployment,
      spec: { ...deployment.spec!, template: { metadata: { labels: { 'istio.io/rev': 'asm-1-26' } } } },
    };
    summarizeNamespace({ namespace: ns, pods, services }, labelled, record);
    summarizeNamespace({ namespace: ns, pods, services }, deployment, record);
    expect(seen).toEqual(['asm-1-26', undefined]);
  });

  it('does not compute a desired state for a namespace that is not opted in', () => {
    const s = summarizeNamespace(
      { namespace: { metadata: { name: 'quiet' } }, pods: [], services: [] },
      undefined,
      () => {
        throw new Error('must not be called');
      },
    );
    expect(s.optedIn).toBe(false);
    expect(s.gateway).toEqual({});
  });

  it('shows how far an opted-out namespace has been handed back, and that its pods leave the mesh', () => {
    const quiet: V1Namespace = { metadata: { name: 'shop' } };
    const original = JSON.stringify({ selector: { app: 'legacy' }, ports: [{ port: 80 }] });
    const repointed: V1Service = {
      metadata: { name: 'legacy', annotations: { 'wpgw.io/original': original } },
      spec: { selector: { 'wpgw.io/gateway': 'shop' }, ports: [{ port: 80, targetPort: 30001 }] },
    };
    const gw = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {
        name: 'wpgw',
        namespace: 'shop',
        labels: { 'app.kubernetes.io/managed-by': 'wpgw', 'wpgw.io/for': 'namespace' },
      },
    };
    let s = summarizeNamespace({ namespace: quiet, pods, services: [repointed] }, deployment, desired, undefined, [gw]);
    expect(s.optOut).toEqual({ phase: 'services', services: ['legacy'], pods: ['legacy-0', 'legacy-1'] });
    const text = formatStatus({ namespaces: [s], errors: [] });
    expect(text).toContain('  opting out:   phase services (gateway -> callers -> services -> pods -> cleanup)\n');
    expect(text).toContain('  opting out:   Services still re-pointed: legacy\n');
    expect(text).toContain(
      '  opting out:   pods still resolving through the gateway: legacy-0, legacy-1; their owners are rolled\n',
    );
    expect(text).toContain('under STRICT PeerAuthentication those calls fail');
    s = summarizeNamespace({ namespace: quiet, pods: [], services: [] }, undefined, desired, undefined, [gw]);
    expect(s.optOut).toEqual({ phase: 'cleanup', services: [], pods: [] });
    expect(summarizeNamespace({ namespace: quiet, pods: [], services: [] }, undefined, desired).optOut).toBeUndefined();
  });

  it('shows a Service being handed back alone, and why, while the namespace stays in', () => {
    const original = JSON.stringify({ selector: { app: 'legacy' }, ports: [{ port: 80 }] });
    const repointed = (name: string, labels: Record<string, string> = {}): V1Service => ({
      metadata: { name, labels, annotations: { 'wpgw.io/original': original.replace('legacy', name) } },
      spec: { selector: { 'wpgw.io/gateway': 'shop' }, ports: [{ port: 80, targetPort: 30001 }] },
    });
    const rule = (name: string) => ({
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: {
        name: `wpgw-in-${name}`,
        namespace: 'shop',
        labels: { 'app.kubernetes.io/managed-by': 'wpgw', 'wpgw.io/for': `service.${name}` },
      },
      spec: { host: `${name}.shop.svc.cluster.local` },
    });
    const gateway = { ...deployment, metadata: { name: 'wpgw', labels: { 'app.kubernetes.io/managed-by': 'wpgw' } } };
    const svcs = [repointed('legacy', { 'wpgw.io/inject': 'false' }), repointed('gone'), repointed('kept')];
    const s = summarizeNamespace(
      { namespace: ns, pods: [], services: svcs },
      gateway,
      desired,
      undefined,
      [rule('legacy'), rule('gone'), rule('kept')],
      { windowsLabelSets: [{ app: 'kept' }] },
    );
    expect(s.leaving).toEqual([
      { service: 'gone', reason: 'no_windows_pods', phase: 'gateway' },
      { service: 'legacy', reason: 'opted_out', phase: 'gateway' },
    ]);
    const text = formatStatus({ namespaces: [s], errors: [] });
    expect(text).toContain(
      '  leaving:      Service legacy (labelled wpgw.io/inject=false): phase gateway (gateway -> callers -> services -> lingering); then its Windows pods are reached directly, without mTLS',
    );
    expect(text).toContain(
      '  leaving:      Service gone (no Windows workload or pod matches it any more): phase gateway',
    );
    // Without the workloads read, nothing is guessed as unbacked.
    expect(
      summarizeNamespace({ namespace: ns, pods: [], services: svcs }, gateway, desired, undefined, []).leaving,
    ).toEqual([{ service: 'legacy', reason: 'opted_out', phase: 'services' }]);
  });

  it('formats a readable report', () => {
    const text = formatStatus({
      namespaces: [summarizeNamespace({ namespace: ns, pods, services }, deployment, desired)],
      errors: ['kube-system/kube-dns: forbidden'],
    });
    expect(text).toBe(
      [
        'Namespace shop',
        '  gateway:      Service wpgw 10.96.0.10, dns 10.96.0.53; deployment wpgw 1/2 ready',
        '  re-pointed:   legacy -> gateway (app reachable as legacy-app)',
        '  destinations: pod legacy-0: example.com:443',
        '  destinations: pod legacy-1: orders.sales:9080, example.com:443',
        '  drift:        pod legacy-0 points at 10.96.0.9, gateway is 10.96.0.10',
        '  conflict:     Service/plain: PortTaken: port 80 in shop',
        '  note:         gateway: Service wpgw',
        'error: kube-system/kube-dns: forbidden',
        '',
      ].join('\n'),
    );
    expect(formatStatus({ namespaces: [], errors: [] })).toBe('no namespace is labelled wpgw.io/inject=enabled\n');
  });

  it('lists misplaced settings of the namespace and its workloads (the hints render shows and Events carry)', () => {
    const labelled: V1Namespace = {
      metadata: { name: 'shop', labels: { 'wpgw.io/inject': 'enabled', 'wpgw.io/resolver': 'dnsConfig' } },
    };
    const workloads = [
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web', annotations: { 'wpgw.io/outbound': 'api.example.com:443' } },
        spec: {
          template: {
            metadata: { labels: { app: 'web' } },
            spec: { containers: [{ name: 'c' }], nodeSelector: { 'kubernetes.io/os': 'windows' } },
          },
        },
      },
      {
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        metadata: { name: 'db' },
        spec: {
          template: {
            metadata: { annotations: { 'wpgw.io/outbound': 'api.example.com:443' } },
            spec: { containers: [{ name: 'c' }], runtimeClassName: 'win' },
          },
        },
      },
      {
        apiVersion: 'apps/v1',
        kind: 'DaemonSet',
        metadata: { name: 'agent' },
        spec: {
          template: {
            metadata: { annotations: { 'wpgw.io/outbound': 'api.example.com:443' } },
            spec: { containers: [{ name: 'c' }], runtimeClassName: 'lin' },
          },
        },
      },
    ];
    const runtimeClassOS = (n: string) => ({ win: 'windows', lin: 'linux' })[n];
    const s = summarizeNamespace({ namespace: labelled, pods, services }, deployment, desired, undefined, [], {
      workloads,
      runtimeClassOS,
    });
    expect(s.hints).toEqual([
      {
        subject: 'Namespace/shop',
        message:
          'wpgw.io/resolver is set as a label, but wpgw reads it as an annotation: kubectl annotate namespace shop wpgw.io/resolver=dnsConfig',
      },
      {
        subject: 'DaemonSet/agent',
        message: expect.stringMatching(/^its pod template has wpgw.io\/outbound but is not recognised as Windows/),
      },
      {
        subject: 'Deployment/web',
        message:
          "wpgw.io/outbound is on the Deployment's own metadata, where it has no effect: wpgw reads it from the pod template (spec.template.metadata.annotations)",
      },
    ]);
    const text = formatStatus({ namespaces: [s], errors: [] });
    expect(text).toContain(
      "  hint:         Deployment/web: wpgw.io/outbound is on the Deployment's own metadata, where it has no effect",
    );
    expect(text).toContain('  hint:         Namespace/shop: wpgw.io/resolver is set as a label');
    // Nothing misplaced: no hints field at all (the JSON output stays as it was).
    expect(
      summarizeNamespace({ namespace: ns, pods, services }, deployment, desired, undefined, [], {
        workloads: [workloads[1]!],
        runtimeClassOS,
      }).hints,
    ).toBeUndefined();
  });
});
