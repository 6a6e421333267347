// AdmissionReview bodies for the benchmark, shaped like what kube-apiserver sends on CREATE: the
// object already defaulted and carrying managedFields, the envelope with resource/userInfo/options.
// Deterministic: the same run always posts the same bytes.

export const BENCH_NAMESPACE = 'shop';
export const BENCH_GATEWAY_IP = '10.96.100.10';
export const BENCH_DNS_IP = '10.96.100.53';

/** Labels of the Windows workloads the static context knows in every namespace. */
export const WINDOWS_LABEL_SETS: ReadonlyArray<Record<string, string>> = [
  { app: 'legacy', 'app.kubernetes.io/name': 'legacy', 'pod-template-hash': '5d8c9f7b6' },
  { app: 'billing', 'app.kubernetes.io/name': 'billing', 'pod-template-hash': '7f9b8c6d5' },
  { app: 'reports', tier: 'backend', 'pod-template-hash': '6c5d4b3a2' },
];

type Json = Record<string, unknown>;

/** fieldsV1 as the API server writes it for an object: every leaf an empty set, lists keyed. */
function fieldsOf(value: unknown): Json {
  if (Array.isArray(value)) {
    const out: Json = {};
    value.forEach((item, i) => {
      const key =
        typeof item === 'object' && item !== null && typeof (item as Json).name === 'string'
          ? `k:{"name":"${(item as Json).name as string}"}`
          : typeof item === 'object' && item !== null && typeof (item as Json).containerPort === 'number'
            ? `k:{"containerPort":${(item as Json).containerPort as number},"protocol":"TCP"}`
            : `v:${JSON.stringify(item ?? i)}`;
      out[key] = typeof item === 'object' && item !== null ? { '.': {}, ...fieldsOf(item) } : {};
    });
    return out;
  }
  if (typeof value === 'object' && value !== null) {
    const out: Json = {};
    for (const [k, v] of Object.entries(value)) out[`f:${k}`] = typeof v === 'object' && v !== null ? fieldsOf(v) : {};
    return out;
  }
  return {};
}

function managedFields(manager: string, meta: Json, spec: Json): Json[] {
  const { managedFields: _m, name: _n, namespace: _ns, generateName: _g, ...metaRest } = meta;
  return [
    {
      manager,
      operation: 'Update',
      apiVersion: 'v1',
      time: '2025-01-01T00:00:00Z',
      fieldsType: 'FieldsV1',
      fieldsV1: { 'f:metadata': fieldsOf(metaRest), 'f:spec': fieldsOf(spec) },
    },
  ];
}

function envelope(uid: string, kind: 'Pod' | 'Service', namespace: string, object: Json, name?: string): Json {
  const resource = kind === 'Pod' ? 'pods' : 'services';
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind },
      resource: { group: '', version: 'v1', resource },
      requestKind: { group: '', version: 'v1', kind },
      requestResource: { group: '', version: 'v1', resource },
      ...(name ? { name } : {}),
      namespace,
      operation: 'CREATE',
      userInfo: {
        username: 'system:serviceaccount:kube-system:replicaset-controller',
        uid: 'a1b2c3d4-0000-4000-8000-00000000beef',
        groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
      },
      object,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  };
}

function container(name: string, envCount: number, image = `registry.example.com/shop/${name}:4.2.1`): Json {
  return {
    name,
    image,
    imagePullPolicy: 'IfNotPresent',
    ports: [{ containerPort: 8080, name: 'http', protocol: 'TCP' }],
    env: Array.from({ length: envCount }, (_, i) => ({
      name: `${name.toUpperCase().replace(/-/g, '_')}_SETTING_${i}`,
      value: `value-${i}-of-${name}-with-some-realistic-length-${'x'.repeat(i % 17)}`,
    })),
    resources: { limits: { cpu: '2', memory: '2Gi' }, requests: { cpu: '500m', memory: '1Gi' } },
    readinessProbe: {
      httpGet: { path: '/healthz', port: 8080, scheme: 'HTTP' },
      periodSeconds: 10,
      timeoutSeconds: 1,
      successThreshold: 1,
      failureThreshold: 3,
    },
    volumeMounts: [
      { name: 'config', mountPath: 'C:\\app\\config', readOnly: true },
      { name: 'kube-api-access-x7k2p', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true },
    ],
    terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File',
  };
}

interface PodShape {
  app: string;
  outbound: string;
  containers: number;
  envPerContainer: number;
  extraLabels: number;
  extraAnnotations: number;
}

function pod(namespace: string, s: PodShape): Json {
  const hash = WINDOWS_LABEL_SETS.find((l) => l.app === s.app)?.['pod-template-hash'] ?? '5d8c9f7b6';
  const labels: Record<string, string> = { app: s.app, 'app.kubernetes.io/name': s.app, 'pod-template-hash': hash };
  for (let i = 0; i < s.extraLabels; i++) labels[`example.com/label-${i}`] = `value-${i}`;
  const annotations: Record<string, string> = {
    'wpgw.io/outbound': s.outbound,
    'kubectl.kubernetes.io/restartedAt': '2025-01-01T00:00:00Z',
  };
  for (let i = 0; i < s.extraAnnotations; i++)
    annotations[`example.com/annotation-${i}`] = `some annotation value number ${i} ${'y'.repeat(40)}`;
  const spec: Json = {
    nodeSelector: { 'kubernetes.io/os': 'windows' },
    tolerations: [
      { key: 'os', operator: 'Equal', value: 'windows', effect: 'NoSchedule' },
      { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
    ],
    initContainers: [container('init-config', 3)],
    containers: Array.from({ length: s.containers }, (_, i) =>
      container(i === 0 ? s.app : `${s.app}-side-${i}`, s.envPerContainer),
    ),
    volumes: [
      { name: 'config', configMap: { name: `${s.app}-config`, defaultMode: 420 } },
      {
        name: 'kube-api-access-x7k2p',
        projected: { defaultMode: 420, sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }] },
      },
    ],
    securityContext: { windowsOptions: { runAsUserName: 'ContainerUser' } },
    serviceAccountName: s.app,
    restartPolicy: 'Always',
    dnsPolicy: 'ClusterFirst',
    terminationGracePeriodSeconds: 30,
    schedulerName: 'default-scheduler',
    enableServiceLinks: true,
    preemptionPolicy: 'PreemptLowerPriority',
    priority: 0,
  };
  const metadata: Json = {
    generateName: `${s.app}-${hash}-`,
    namespace,
    labels,
    annotations,
    ownerReferences: [
      {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        name: `${s.app}-${hash}`,
        uid: '0f1e2d3c-0000-4000-8000-000000000001',
        controller: true,
        blockOwnerDeletion: true,
      },
    ],
  };
  metadata.managedFields = managedFields('kube-controller-manager', metadata, spec);
  return { apiVersion: 'v1', kind: 'Pod', metadata, spec };
}

/**
 * `n` distinct destinations: in-cluster Services of other namespaces and external TLS-originated
 * hosts. `variant` changes every name, for pods that share nothing with each other.
 */
export function destinations(n: number, variant?: number): string {
  const v = variant === undefined ? '' : `v${variant}-`;
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      i % 2 === 0
        ? `${v}svc-${i}.team-${i % 7}.svc.cluster.local:${8000 + (i % 50)}`
        : `${v}api-${i}.partner-${i % 5}.example.com:80+tls`,
    );
  }
  return out.join('\n');
}

export function typicalPod(namespace = BENCH_NAMESPACE): Json {
  return pod(namespace, {
    app: 'legacy',
    outbound: 'orders.sales.svc.cluster.local:9080, example.com:80+tls',
    containers: 2,
    envPerContainer: 8,
    extraLabels: 2,
    extraAnnotations: 2,
  });
}

export function largePod(namespace = BENCH_NAMESPACE): Json {
  return pod(namespace, {
    app: 'legacy',
    outbound: destinations(4),
    containers: 20,
    envPerContainer: 100,
    extraLabels: 40,
    extraAnnotations: 40,
  });
}

export function podWithDestinations(n: number, namespace = BENCH_NAMESPACE, variant?: number): Json {
  return pod(namespace, {
    app: 'legacy',
    outbound: destinations(n, variant),
    containers: 2,
    envPerContainer: 8,
    extraLabels: 2,
    extraAnnotations: 2,
  });
}

/**
 * More distinct pods than the webhook's outbound memo holds (256), sent in turn: every admission
 * parses and expands its annotation from scratch, as for pods of many different workloads.
 */
export const DISTINCT_PODS = 1000;

/** A Service selecting the Windows pods of `legacy`: admitted, it is re-pointed at the gateway. */
export function legacyService(namespace = BENCH_NAMESPACE, name = 'legacy'): Json {
  const metadata: Json = {
    name,
    namespace,
    labels: { app: 'legacy', 'app.kubernetes.io/name': 'legacy' },
    annotations: {
      'kubectl.kubernetes.io/last-applied-configuration':
        '{"apiVersion":"v1","kind":"Service","metadata":{"name":"legacy"}}',
    },
  };
  const spec: Json = {
    type: 'ClusterIP',
    selector: { app: 'legacy' },
    ports: [
      { name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' },
      { name: 'admin', port: 9090, targetPort: 9090, protocol: 'TCP' },
    ],
    sessionAffinity: 'None',
    ipFamilyPolicy: 'SingleStack',
    ipFamilies: ['IPv4'],
    internalTrafficPolicy: 'Cluster',
  };
  metadata.managedFields = managedFields('kubectl-client-side-apply', metadata, spec);
  return { apiVersion: 'v1', kind: 'Service', metadata, spec };
}

export interface Payload {
  key: string;
  label: string;
  /** The body checked before measuring (and the one sent, unless `bodies` is set). */
  body: string;
  /** Sent in turn instead of `body`: distinct requests, so nothing can be reused between them. */
  bodies?: string[];
  /** What the built webhook must answer (checked before measuring). */
  expect: 'patched';
}

function reviewBody(uid: string, kind: 'Pod' | 'Service', namespace: string, object: Json): string {
  const name = (object.metadata as Json | undefined)?.name;
  return JSON.stringify(envelope(uid, kind, namespace, object, typeof name === 'string' ? name : undefined));
}

export function podReview(
  object: Json,
  namespace = BENCH_NAMESPACE,
  uid = '4b7e5c8a-0000-4000-8000-000000000001',
): string {
  return reviewBody(uid, 'Pod', namespace, object);
}

export function serviceReview(
  object: Json,
  namespace = BENCH_NAMESPACE,
  uid = '4b7e5c8a-0000-4000-8000-000000000002',
): string {
  return reviewBody(uid, 'Service', namespace, object);
}

export function payloads(): Payload[] {
  return [
    { key: 'typical', label: 'typical Windows pod (2 ctr, 2 dest)', body: podReview(typicalPod()), expect: 'patched' },
    { key: 'large', label: 'large pod (20 ctr x 100 env)', body: podReview(largePod()), expect: 'patched' },
    { key: 'dest1', label: 'pod, 1 destination', body: podReview(podWithDestinations(1)), expect: 'patched' },
    { key: 'dest10', label: 'pod, 10 destinations', body: podReview(podWithDestinations(10)), expect: 'patched' },
    { key: 'dest100', label: 'pod, 100 destinations', body: podReview(podWithDestinations(100)), expect: 'patched' },
    {
      key: 'dest100u',
      label: `pod, 100 destinations, ${DISTINCT_PODS} distinct pods`,
      body: podReview(podWithDestinations(100, BENCH_NAMESPACE, 0)),
      bodies: Array.from({ length: DISTINCT_PODS }, (_, i) => podReview(podWithDestinations(100, BENCH_NAMESPACE, i))),
      expect: 'patched',
    },
    { key: 'service', label: 'Service re-point', body: serviceReview(legacyService()), expect: 'patched' },
  ];
}
