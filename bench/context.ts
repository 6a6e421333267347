// The AdmissionContexts the benchmark serves from:
// - staticBenchContext: fixed answers (a gateway address, a few Windows label sets), the cheapest
//   possible context, so the main comparison measures the webhook itself;
// - cachedBenchContext: the production cacheAdmissionContext over a real ClusterCache (real
//   Reflectors and NamespacedStores) whose list/watch sources are in-memory fakes holding a
//   synthetic cluster of N opted-in namespaces. Used by the cache-size run.
import { cacheAdmissionContext } from '../src/cluster/admission-context.js';
import { ClusterCache, WEBHOOK_CACHE } from '../src/cluster/cache.js';
import type { ListResult, ListWatchSource, WatchHandle } from '../src/cluster/reflector.js';
import type { KubeObjectLike } from '../src/cluster/store.js';
import type { AdmissionContext } from '../src/core/context.js';
import { BENCH_DNS_IP, BENCH_GATEWAY_IP, WINDOWS_LABEL_SETS, typicalPod } from './payloads.js';

export function staticBenchContext(): AdmissionContext {
  const none = new Set<number>();
  return {
    gatewayIP: () => BENCH_GATEWAY_IP,
    dnsIP: () => BENCH_DNS_IP,
    runtimeClassOS: (name) => (name === 'windows-2022' ? 'windows' : undefined),
    namespaceAnnotations: () => ({}),
    windowsLabelSets: () => WINDOWS_LABEL_SETS,
    takenInboundPorts: () => none,
    gatewaySelectingServicePorts: () => none,
    serviceOwner: () => undefined,
    unmanagedWorkloads: () => [],
    ingresses: () => [],
  };
}

export function benchNamespace(i: number): string {
  return `ns-${i}`;
}

type Obj = KubeObjectLike & Record<string, unknown>;

function ip(i: number, last: number): string {
  return `10.${96 + ((i >> 16) & 0x1f)}.${(i >> 8) & 0xff}.${((i & 0xff) + last) & 0xff}`;
}

function workload(
  kind: 'Deployment' | 'ReplicaSet',
  name: string,
  namespace: string,
  labels: Record<string, string>,
  windows: boolean,
  rv: number,
): Obj {
  return {
    apiVersion: 'apps/v1',
    kind,
    metadata: {
      name,
      namespace,
      uid: `${namespace}-${name}`,
      resourceVersion: String(rv),
      labels: { app: labels.app ?? name },
    },
    spec: {
      replicas: 2,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          ...(windows ? { nodeSelector: { 'kubernetes.io/os': 'windows' } } : {}),
          containers: [{ name: 'app', image: `registry.example.com/${name}:1`, ports: [{ containerPort: 8080 }] }],
        },
      },
    },
  };
}

/** A synthetic cluster: per namespace 1 Namespace, 4 Services, 3 Deployments, 3 ReplicaSets, 4 managed pods. */
export function syntheticCluster(namespaces: number): Map<string, Obj[]> {
  const byKind = new Map<string, Obj[]>();
  const put = (o: Obj): void => {
    const list = byKind.get(o.kind as string) ?? [];
    list.push(o);
    byKind.set(o.kind as string, list);
  };
  let rv = 1;
  // Pods as the API server lists them, except managedFields (left out to keep the fill quick; the
  // real cache would hold them too, so the cache servers' RSS is an underestimate).
  const template = typicalPod('NAMESPACE');
  delete (template.metadata as Record<string, unknown>).managedFields;
  const podTemplate = JSON.stringify(template);
  put({
    apiVersion: 'node.k8s.io/v1',
    kind: 'RuntimeClass',
    metadata: { name: 'windows-2022', resourceVersion: '1' },
    handler: 'runhcs-wcow-process',
    scheduling: { nodeSelector: { 'kubernetes.io/os': 'windows' } },
  });
  for (let i = 0; i < namespaces; i++) {
    const ns = benchNamespace(i);
    put({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: ns,
        uid: ns,
        resourceVersion: String(rv++),
        labels: { 'wpgw.io/inject': 'enabled', 'kubernetes.io/metadata.name': ns },
      },
    });
    put({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: 'wpgw',
        namespace: ns,
        resourceVersion: String(rv++),
        labels: { 'app.kubernetes.io/managed-by': 'wpgw' },
      },
      spec: {
        selector: { 'wpgw.io/gateway': ns },
        clusterIP: ip(i, 10),
        ports: [
          { name: 'http-9080', port: 9080, targetPort: 29080 },
          { name: 'http-80', port: 80, targetPort: 20080 },
        ],
      },
    });
    put({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: 'wpgw-dns',
        namespace: ns,
        resourceVersion: String(rv++),
        labels: { 'app.kubernetes.io/managed-by': 'wpgw' },
      },
      spec: {
        selector: { 'app.kubernetes.io/name': 'wpgw-dns' },
        clusterIP: ip(i, 53),
        ports: [{ name: 'dns', port: 53, protocol: 'UDP' }],
      },
    });
    put({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        name: 'billing',
        namespace: ns,
        resourceVersion: String(rv++),
        labels: { 'wpgw.io/repointed': 'true' },
        annotations: {
          'wpgw.io/original': JSON.stringify({ selector: { app: 'billing' }, ports: [{ port: 80, targetPort: 8080 }] }),
        },
      },
      spec: {
        selector: { 'wpgw.io/gateway': ns },
        clusterIP: ip(i, 20),
        ports: [{ name: 'http', port: 80, targetPort: 31234 }],
      },
    });
    put({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'frontend', namespace: ns, resourceVersion: String(rv++) },
      spec: {
        selector: { app: 'frontend' },
        clusterIP: ip(i, 30),
        ports: [{ name: 'http', port: 80, targetPort: 8080 }],
      },
    });
    const apps: Array<[string, Record<string, string>, boolean]> = [
      ['legacy', { ...WINDOWS_LABEL_SETS[0] } as Record<string, string>, true],
      ['billing', { ...WINDOWS_LABEL_SETS[1] } as Record<string, string>, true],
      ['frontend', { app: 'frontend', 'pod-template-hash': '55d4c3b2a1' }, false],
    ];
    for (const [name, labels, windows] of apps) {
      const { 'pod-template-hash': hash, ...deployLabels } = labels;
      put(workload('Deployment', name, ns, deployLabels, windows, rv++));
      put(workload('ReplicaSet', `${name}-${hash}`, ns, labels, windows, rv++));
      if (!windows) continue;
      for (let p = 0; p < 2; p++) {
        const pod = JSON.parse(podTemplate.replaceAll('NAMESPACE', ns)) as Obj;
        const meta = pod.metadata as Record<string, unknown>;
        meta.name = `${name}-${hash}-p${p}`;
        meta.resourceVersion = String(rv++);
        meta.labels = { ...labels, 'wpgw.io/managed': 'true' };
        pod.status = { phase: 'Running', podIP: ip(i, 100 + p), podIPs: [{ ip: ip(i, 100 + p) }] };
        put(pod);
      }
    }
  }
  return byKind;
}

function fakeSource(items: Obj[], labelSelector: string | undefined): ListWatchSource<KubeObjectLike> {
  const selected = labelSelector ? items.filter((o) => o.metadata?.labels?.[labelSelector] !== undefined) : items;
  return {
    list: async (): Promise<ListResult<KubeObjectLike>> => ({ items: selected, resourceVersion: '1' }),
    // A watch that never delivers anything (the cluster is static) and ends only when aborted.
    watch: async (): Promise<WatchHandle> => ({ abort: () => {} }),
  };
}

/** The webhook's real cache + context, fed a synthetic cluster of `namespaces` namespaces. */
export async function cachedBenchContext(
  namespaces: number,
): Promise<{ context: AdmissionContext; cache: ClusterCache; objects: number }> {
  const world = syntheticCluster(namespaces);
  let objects = 0;
  for (const list of world.values()) objects += list.length;
  const cache = new ClusterCache({
    ...WEBHOOK_CACHE,
    relistIntervalMs: 0,
    sourceFactory: (info, labelSelector) => fakeSource(world.get(info.kind) ?? [], labelSelector),
  });
  cache.start();
  await cache.waitForSync();
  world.clear(); // the cache holds the only references from here on
  return { context: cacheAdmissionContext(cache), cache, objects };
}
