// Cluster DNS for the dnsConfig-mode files (dns-stack.ts): kube-system/coredns behind the
// kube-dns Service, the real CoreDNS (test/datapath/build.sh: upstream v1.12.4, the version of the
// wpgw-dns image, built from its Go module; the same binary runs wpgw-dns), run by the pod runner like wpgw-dns (runner.ts: coredns
// images become this binary with the pod's args, configMap volumes are synced into the pod's dir).
import { KubeConfig } from '@kubernetes/client-node';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULT_COREDNS_IMAGE } from '../../src/defaults.js';

export const COREDNS = resolve(import.meta.dirname, 'bin/coredns');
/** What the cluster DNS Deployment names; the runner maps any coredns/coredns image to COREDNS. */
export const COREDNS_IMAGE = DEFAULT_COREDNS_IMAGE;
export const CLUSTER_DNS_IP = '10.96.0.10';
export const CLUSTER_DNS_LABELS = { 'k8s-app': 'kube-dns' };

/**
 * A kubeconfig for a ServiceAccount token against the API server at `server` (the CA of the admin
 * kubeconfig; the name checked in its certificate stays the admin kubeconfig's host, 127.0.0.1).
 */
export function tokenKubeconfig(adminKubeconfig: string, token: string, server: string, file: string): string {
  const kc = new KubeConfig();
  kc.loadFromFile(adminKubeconfig);
  const cluster = kc.getCurrentCluster()!;
  const ca = cluster.caData ?? (cluster.caFile ? readFileSync(cluster.caFile).toString('base64') : undefined);
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'harness',
        cluster: { server, 'certificate-authority-data': ca, 'tls-server-name': new URL(cluster.server).hostname },
      },
    ],
    users: [{ name: 'sa', user: { token } }],
    contexts: [{ name: 'sa', context: { cluster: 'harness', user: 'sa' } }],
    'current-context': 'sa',
  };
  writeFileSync(file, JSON.stringify(doc), { mode: 0o600 });
  return file;
}

/**
 * Cluster DNS as kubeadm deploys it (kube-system/coredns behind the kube-dns Service at
 * CLUSTER_DNS_IP, the system:coredns RBAC), with this suite's Corefile: the kubernetes plugin
 * (kubeconfig: the coredns ServiceAccount's token, as in-cluster config would use it), log (the
 * suite checks who asked), and forward to `upstream` for every other name (the node's resolver).
 */
export function clusterDnsObjects(kubeconfigFile: string, upstream: string): object[] {
  const ns = 'kube-system';
  const corefile = [
    '.:53 {',
    '    errors',
    '    log',
    '    health :8080',
    '    ready :8181',
    '    kubernetes cluster.local in-addr.arpa ip6.arpa {',
    `        kubeconfig ${kubeconfigFile}`,
    '        pods insecure',
    '        fallthrough in-addr.arpa ip6.arpa',
    '        ttl 5',
    '    }',
    `    forward . ${upstream}`,
    '    cache 5',
    '    loop',
    '    reload 2s',
    '}',
    '',
  ].join('\n');
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'coredns', namespace: ns } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'system:coredns' },
      rules: [
        { apiGroups: [''], resources: ['endpoints', 'services', 'pods', 'namespaces'], verbs: ['list', 'watch'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'system:coredns' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:coredns' },
      subjects: [{ kind: 'ServiceAccount', name: 'coredns', namespace: ns }],
    },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'coredns', namespace: ns }, data: { Corefile: corefile } },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'coredns', namespace: ns, labels: CLUSTER_DNS_LABELS },
      spec: {
        replicas: 1,
        selector: { matchLabels: CLUSTER_DNS_LABELS },
        template: {
          metadata: { labels: CLUSTER_DNS_LABELS },
          spec: {
            serviceAccountName: 'coredns',
            dnsPolicy: 'Default',
            nodeSelector: { 'kubernetes.io/os': 'linux' },
            containers: [
              {
                name: 'coredns',
                image: COREDNS_IMAGE,
                args: ['-conf', '/etc/coredns/Corefile'],
                ports: [
                  { name: 'dns', containerPort: 53, protocol: 'UDP' },
                  { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' },
                ],
                volumeMounts: [{ name: 'config-volume', mountPath: '/etc/coredns', readOnly: true }],
              },
            ],
            volumes: [{ name: 'config-volume', configMap: { name: 'coredns' } }],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'kube-dns', namespace: ns, labels: CLUSTER_DNS_LABELS },
      spec: {
        clusterIP: CLUSTER_DNS_IP,
        selector: CLUSTER_DNS_LABELS,
        ports: [
          { name: 'dns', port: 53, targetPort: 53, protocol: 'UDP' },
          { name: 'dns-tcp', port: 53, targetPort: 53, protocol: 'TCP' },
        ],
      },
    },
  ];
}
