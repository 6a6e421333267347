// The real CoreDNS in the data-path suite (binary: coredns-min/build.sh, CoreDNS built from its Go
// module), run by the pod runner (runner.ts `containers` hook) for two kinds of pods:
//   - wpgw-dns, the Deployment the wpgw controller writes for dnsConfig mode, with the Corefile
//     from the controller's ConfigMap;
//   - cluster DNS: kube-system/coredns behind the kube-dns Service (clusterDnsObjects()), with the
//     kubernetes plugin against the harness API server.
// Both run with the pod's own args; a configMap volume becomes a directory under the pod's dir
// that ConfigMapVolumes keeps in sync with the ConfigMap, as kubelet does (the reload plugin then
// re-reads the Corefile), and the args' mount paths point there.
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ContainerContext } from './runner.js';
import { startProc, type Proc } from './procs.js';

export const COREDNS = resolve(import.meta.dirname, 'bin/coredns-min');
/** The image the suite's manifests and the controller (--coredns-image) name; the runner maps it to COREDNS. */
export const COREDNS_IMAGE = 'wpgw.test/coredns:1.15.0';
export const CLUSTER_DNS_IP = '10.96.0.10';
export const CLUSTER_DNS_LABELS = { 'k8s-app': 'kube-dns' };

type Container = NonNullable<V1Pod['spec']>['containers'][number];

/**
 * configMap volumes as kubelet projects them: one file per key, replaced atomically (write, then
 * rename) whenever the ConfigMap changes. Kubelet's own refresh takes up to its sync period plus
 * its ConfigMap cache TTL (about a minute by default); this one polls every intervalMs, so the
 * suite's propagation time is the controller's and CoreDNS's, not kubelet's.
 */
export class ConfigMapVolumes {
  private readonly core: CoreV1Api;
  private readonly mounts: Array<{ namespace: string; name: string; dir: string; last: string }> = [];
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** When each file last changed (ms since epoch), by path: the suite measures propagation with it. */
  readonly written = new Map<string, number>();

  constructor(kubeconfig: string) {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    this.core = kc.makeApiClient(CoreV1Api);
  }

  /** Writes the ConfigMap into dir now (kubelet does not start a container whose volume is missing) and keeps it in sync. */
  async mount(namespace: string, name: string, dir: string): Promise<void> {
    mkdirSync(dir, { recursive: true });
    const m = { namespace, name, dir, last: '' };
    await this.sync(m);
    this.mounts.push(m);
    if (!this.timer && !this.stopped) this.tick();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private tick(intervalMs = 500): void {
    this.timer = setTimeout(async () => {
      for (const m of this.mounts) await this.sync(m).catch(() => undefined); // deleted with its pod: the runner stops that CoreDNS
      if (!this.stopped) this.tick(intervalMs);
    }, intervalMs);
  }

  private async sync(m: { namespace: string; name: string; dir: string; last: string }): Promise<void> {
    const cm = await this.core.readNamespacedConfigMap({ name: m.name, namespace: m.namespace });
    const data = cm.data ?? {};
    const text = JSON.stringify(data);
    if (text === m.last) return;
    for (const [key, value] of Object.entries(data)) {
      const file = join(m.dir, key);
      writeFileSync(`${file}.tmp`, value);
      renameSync(`${file}.tmp`, file);
      this.written.set(file, Date.now());
    }
    m.last = text;
  }
}

export interface CorednsRunOptions {
  volumes: ConfigMapVolumes;
  /** Pods that reach the API server (cluster DNS): a socat in the pod's namespace bridges 127.0.0.1:<port> to the host's API server through this Unix socket (kube-proxy.ts makes it). */
  api?: { socket: string; port: number; wants: (pod: V1Pod) => boolean };
}

/** The runner hook for CoreDNS containers (image COREDNS_IMAGE or CoreDNS's own); undefined for any other container. */
export function corednsContainers(o: CorednsRunOptions) {
  return async (c: Container, ctx: ContainerContext): Promise<Proc[] | undefined> => {
    if (!/^(wpgw\.test|registry\.k8s\.io\/coredns)\/coredns:/.test(c.image ?? '')) return undefined;
    const ns = ctx.pod.metadata!.namespace!;
    const podName = ctx.pod.metadata!.name!;
    // Mount paths as the container sees them -> directories on this machine (longest first).
    const mounts: Array<[string, string]> = [];
    for (const vm of c.volumeMounts ?? []) {
      const vol = (ctx.pod.spec!.volumes ?? []).find((v) => v.name === vm.name);
      // Only configMap volumes are projected; the ServiceAccount token volume is not (cluster DNS
      // gets its token through the kubeconfig its Corefile names).
      if (!vol?.configMap) continue;
      const dir = join(ctx.dir, 'volumes', vm.name);
      await o.volumes.mount(ns, vol.configMap.name!, dir);
      mounts.push([vm.mountPath.replace(/\/$/, ''), dir]);
    }
    mounts.sort((a, b) => b[0].length - a[0].length);
    const mapPath = (arg: string) => {
      const hit = mounts.find(([p]) => arg === p || arg.startsWith(`${p}/`));
      return hit ? hit[1] + arg.slice(hit[0].length) : arg;
    };
    const args = [...(c.command?.slice(1) ?? []), ...(c.args ?? [])].map(mapPath);
    const procs: Proc[] = [];
    if (o.api?.wants(ctx.pod)) {
      procs.push(
        startProc(`${ns}/${podName}/api-bridge`, 'ip', ['netns', 'exec', ctx.netns, 'socat', `TCP-LISTEN:${o.api.port},bind=127.0.0.1,fork,reuseaddr`, `UNIX-CONNECT:${o.api.socket}`], {
          log: join(ctx.dir, 'api-bridge.log'),
        }),
      );
    }
    // runAsUser as the pod asks (wpgw-dns: 65532, no capabilities: it listens on 1053)
    const uid = c.securityContext?.runAsUser ?? ctx.pod.spec!.securityContext?.runAsUser;
    const asUser = uid ? ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--inh-caps=-all'] : [];
    procs.push(
      startProc(`${ns}/${podName}/${c.name}`, 'ip', ['netns', 'exec', ctx.netns, ...asUser, COREDNS, ...args], {
        log: join(ctx.dir, `${c.name}.log`),
        env: { PATH: process.env.PATH, ...ctx.env },
      }),
    );
    return procs;
  };
}

/** A kubeconfig for a ServiceAccount token against the API server at https://127.0.0.1:<port> (the CA of the admin kubeconfig). */
export function tokenKubeconfig(adminKubeconfig: string, token: string, file: string): string {
  const kc = new KubeConfig();
  kc.loadFromFile(adminKubeconfig);
  const cluster = kc.getCurrentCluster()!;
  const ca = cluster.caData ?? (cluster.caFile ? readFileSync(cluster.caFile).toString('base64') : undefined);
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'harness', cluster: { server: cluster.server, 'certificate-authority-data': ca } }],
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
