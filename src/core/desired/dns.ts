// dnsConfig mode: a per-namespace CoreDNS that answers the declared names with the gateway's
// address and forwards the rest to cluster DNS. Pods keep working when names or the address
// change: the ConfigMap changes and CoreDNS's reload plugin picks it up, no pod restart.
import { DNS_SERVICE, OS_LABEL } from '../../names.js';
import type { KubeObject } from '../desired-types.js';
import { escapeRegex, meta, type Owner } from './common.js';
import type { PortGroup } from './outbound-plan.js';
import { DNS_POD_LABEL } from '../../names.js';
import { DNS_CONTAINER_PORT } from './policy.js';

const NS_OWNER: Owner = { kind: 'namespace' };

export function corefile(groups: PortGroup[], gatewayIP: string | undefined, upstream: string): string {
  const names = [...new Set(groups.flatMap((g) => g.routes.flatMap((r) => r.names)))].sort();
  const exact = names.filter((n) => !n.startsWith('*.'));
  const wildcards = names.filter((n) => n.startsWith('*.'));
  // "log": one line per query in the pod's log, which `wpgw suggest` reads (with the reader's own
  // pods/log permission) to propose the entries a pod is missing. It never leaves the cluster.
  const lines = [`.:${DNS_CONTAINER_PORT} {`, '    errors', '    log', '    health :8080', '    ready :8181'];
  if (gatewayIP && exact.length > 0) {
    lines.push(
      '    hosts {',
      `        ${gatewayIP} ${exact.join(' ')}`,
      '        ttl 30',
      '        fallthrough',
      '    }',
    );
  }
  if (gatewayIP) {
    for (const w of wildcards) {
      const zone = w.slice(2);
      lines.push(
        `    template IN A ${zone} {`,
        `        match "^(?:[^.]+\\.)+${escapeRegex(zone)}\\.$"`,
        `        answer "{{ .Name }} 30 IN A ${gatewayIP}"`,
        '        fallthrough',
        '    }',
        // No AAAA for redirected names, so an IPv6 answer cannot route around the gateway.
        `    template IN AAAA ${zone} {`,
        `        match "^(?:[^.]+\\.)+${escapeRegex(zone)}\\.$"`,
        '        rcode NOERROR',
        '        fallthrough',
        '    }',
      );
    }
  }
  lines.push(`    forward . ${upstream}`, '    cache 30', '    loop', '    reload 10s', '}');
  return `${lines.join('\n')}\n`;
}

export function dnsObjects(
  namespace: string,
  groups: PortGroup[],
  gatewayIP: string | undefined,
  upstream: string,
  image: string,
  clusterIP: string | undefined,
): KubeObject[] {
  const labels = { [DNS_POD_LABEL]: namespace };
  return [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: meta(DNS_SERVICE, namespace, NS_OWNER),
      data: { Corefile: corefile(groups, gatewayIP, upstream) },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: meta(DNS_SERVICE, namespace, NS_OWNER),
      spec: {
        replicas: 2,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels: { ...labels, 'sidecar.istio.io/inject': 'false' } },
          spec: {
            nodeSelector: { [OS_LABEL]: 'linux' },
            securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
            topologySpreadConstraints: [
              {
                maxSkew: 1,
                topologyKey: 'kubernetes.io/hostname',
                whenUnsatisfiable: 'ScheduleAnyway',
                labelSelector: { matchLabels: labels },
              },
            ],
            containers: [
              {
                name: 'coredns',
                image,
                args: ['-conf', '/etc/coredns/Corefile'],
                ports: [
                  { name: 'dns', containerPort: DNS_CONTAINER_PORT, protocol: 'UDP' },
                  { name: 'dns-tcp', containerPort: DNS_CONTAINER_PORT, protocol: 'TCP' },
                ],
                readinessProbe: { httpGet: { path: '/ready', port: 8181 } },
                livenessProbe: { httpGet: { path: '/health', port: 8080 }, initialDelaySeconds: 10 },
                securityContext: {
                  allowPrivilegeEscalation: false,
                  readOnlyRootFilesystem: true,
                  capabilities: { drop: ['ALL'] },
                },
                resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '128Mi' } },
                volumeMounts: [{ name: 'config', mountPath: '/etc/coredns', readOnly: true }],
              },
            ],
            volumes: [{ name: 'config', configMap: { name: DNS_SERVICE } }],
          },
        },
      },
    },
    {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: meta(DNS_SERVICE, namespace, NS_OWNER),
      spec: { maxUnavailable: 1, selector: { matchLabels: labels } },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(DNS_SERVICE, namespace, NS_OWNER),
      spec: {
        type: 'ClusterIP',
        // Kept stable like the gateway's: pods carry this address as their nameserver.
        ...(clusterIP ? { clusterIP } : {}),
        selector: labels,
        ports: [
          { name: 'dns', port: 53, targetPort: DNS_CONTAINER_PORT, protocol: 'UDP' },
          { name: 'dns-tcp', port: 53, targetPort: DNS_CONTAINER_PORT, protocol: 'TCP' },
        ],
      },
    },
  ];
}
