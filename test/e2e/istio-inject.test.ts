// istiod's real sidecar injector in the admission chain, ahead of wpgw.
//
// Mutating webhooks run in name order, so in a namespace with both `istio-injection=enabled` and
// `wpgw.io/inject=enabled` the API server calls Istio's `istio-sidecar-injector` first and wpgw
// gets the injected pod. Here istiod runs with its injector on (ISTIO_INJECTOR=1
// test/istio/start.sh) and this file registers it by URL the way the chart's
// `namespace.sidecar-injector.istio.io` webhook is (namespaceSelector istio-injection=enabled,
// objectSelector sidecar.istio.io/inject NotIn [false], failurePolicy Fail). Then a Windows Pod
// and a Windows Deployment are created and the stored Pods must be the pods as their creators
// sent them plus only wpgw's own additions: spec deep-equal to the same pod created (dry-run) in
// a namespace neither webhook applies to. A control namespace with Istio injection alone shows the
// injector really rewrites such pods.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stripInjection, type PodLike } from '../../src/core/pod.js';
import { apply, env, eventually, getJson, k, kubectl, list, waitForDefaultServiceAccount } from './helpers.js';
import { ISTIO_DIR, readJson, run, timed } from './istio-helpers.js';

const BOTH = 'istio-wpgw';
const ISTIO_ONLY = 'istio-only';
const PLAIN = 'istio-plain';
const WEBHOOK = 'istio-sidecar-injector';
const IMAGE = 'mcr.microsoft.com/dotnet/samples:aspnetapp-nanoserver-ltsc2022';

let harnessState = '';
let istioStarted = false;
let istio: Record<string, string> = {};

function namespace(name: string, labels: Record<string, string>): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } };
}

/** A Windows ASP.NET pod template as people deploy them: probes of every kind, its own metrics. */
function appTemplate(extraAnnotations: Record<string, string> = {}): {
  metadata: Record<string, unknown>;
  spec: Record<string, unknown>;
} {
  return {
    metadata: {
      labels: { app: 'orders-win', version: 'v2' },
      annotations: {
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': '9102',
        'prometheus.io/path': '/metrics',
        ...extraAnnotations,
      },
    },
    spec: {
      nodeSelector: { 'kubernetes.io/os': 'windows' },
      tolerations: [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }],
      // The token volume's name is random per pod; without it specs compare exactly.
      automountServiceAccountToken: false,
      containers: [
        {
          name: 'app',
          image: IMAGE,
          ports: [
            { name: 'http', containerPort: 8080 },
            { name: 'grpc', containerPort: 9090 },
            { name: 'metrics', containerPort: 9102 },
          ],
          readinessProbe: { httpGet: { path: '/healthz/ready', port: 8080 }, periodSeconds: 5 },
          livenessProbe: { tcpSocket: { port: 8080 }, initialDelaySeconds: 10 },
          startupProbe: { grpc: { port: 9090 }, failureThreshold: 30 },
        },
      ],
    },
  };
}

function pod(name: string, ns: string, extraAnnotations: Record<string, string> = {}): Record<string, unknown> {
  const t = appTemplate(extraAnnotations);
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, ...t.metadata }, spec: t.spec };
}

/** The pod as the API server stores it with no webhook involved (defaults and built-in admission only). */
function reference(object: Record<string, unknown>): PodLike {
  const meta = object.metadata as Record<string, unknown>;
  const plain = { ...object, metadata: { ...meta, namespace: PLAIN } };
  return JSON.parse(k(['create', '--dry-run=server', '-o', 'json', '-f', '-'], JSON.stringify(plain))) as PodLike;
}

/** What Istio would leave behind: anything naming its agent, its port or its records (`own`: the creator's keys). */
function istioResidue(p: PodLike, own: PodLike = {}): string[] {
  const text = JSON.stringify(p.spec);
  const out: string[] = [];
  for (const needle of [
    'istio-proxy',
    'istio-init',
    'istio-validation',
    '/app-health/',
    '15020',
    'istio-envoy',
    'istio-token',
    'ISTIO_',
  ])
    if (text.includes(needle)) out.push(`spec mentions ${needle}`);
  const ownLabels = own.metadata?.labels ?? {};
  const ownAnnotations = own.metadata?.annotations ?? {};
  for (const key of Object.keys(p.metadata?.labels ?? {}))
    if (/istio\.io\//.test(key) && key !== 'sidecar.istio.io/inject' && !(key in ownLabels)) out.push(`label ${key}`);
  for (const key of Object.keys(p.metadata?.annotations ?? {}))
    if (/istio\.io|kubectl\.kubernetes\.io\/default/.test(key) && !(key in ownAnnotations))
      out.push(`annotation ${key}`);
  return out;
}

// ---- generated pods: what people write on Windows nodes, in many combinations ----------------

const name = fc.constantFrom('app', 'web', 'api', 'worker', 'iis', 'agent');
const port = fc.constantFrom(80, 443, 5000, 8080, 8443, 9090, 9102);
const probe = fc.oneof(
  fc.record(
    {
      httpGet: fc.record(
        {
          path: fc.constantFrom('/', '/healthz', '/ready'),
          port,
          scheme: fc.constantFrom('HTTP', 'HTTPS'),
          httpHeaders: fc.constantFrom(undefined, [{ name: 'X-Probe', value: 'k' }]),
        },
        { requiredKeys: ['path', 'port'] },
      ),
      periodSeconds: fc.integer({ min: 1, max: 30 }),
      timeoutSeconds: fc.integer({ min: 1, max: 5 }),
    },
    { requiredKeys: ['httpGet'] },
  ),
  fc.record(
    { tcpSocket: fc.record({ port }), initialDelaySeconds: fc.integer({ min: 0, max: 20 }) },
    { requiredKeys: ['tcpSocket'] },
  ),
  fc.record(
    { grpc: fc.record({ port }), failureThreshold: fc.integer({ min: 1, max: 30 }) },
    { requiredKeys: ['grpc'] },
  ),
);
const hook = fc.oneof(
  fc.record({ httpGet: fc.record({ path: fc.constantFrom('/drain', '/start'), port }) }),
  fc.record({ tcpSocket: fc.record({ port }) }),
);
/** kind: an app container, a plain init container (no probes or hooks allowed), or a native sidecar. */
const container = (n: string, kind: 'app' | 'init' | 'sidecar') =>
  fc.record(
    {
      name: fc.constant(n),
      image: fc.constant(IMAGE),
      ...(kind === 'sidecar' ? { restartPolicy: fc.constant('Always') } : {}),
      ports: fc
        .uniqueArray(port, { minLength: 1, maxLength: 3 })
        .map((ps) => ps.map((containerPort) => ({ containerPort }))),
      ...(kind === 'init'
        ? {}
        : {
            readinessProbe: probe,
            livenessProbe: probe,
            startupProbe: probe,
            lifecycle: fc.record({ preStop: hook, postStart: hook }, { requiredKeys: [] }),
          }),
      volumeMounts: fc.constantFrom(undefined, [{ name: 'config', mountPath: 'C:\\config' }]),
    },
    { requiredKeys: kind === 'sidecar' ? ['name', 'image', 'ports', 'restartPolicy'] : ['name', 'image', 'ports'] },
  );
const generatedPod = fc
  .record({
    names: fc.uniqueArray(name, { minLength: 2, maxLength: 4 }),
    containers: fc.integer({ min: 1, max: 2 }),
    inits: fc.integer({ min: 0, max: 2 }),
    sidecarInit: fc.boolean(),
    native: fc.constantFrom(undefined, 'true', 'false'),
    labels: fc.record(
      { app: name, version: fc.constantFrom('v1', '2.0'), 'app.kubernetes.io/name': name },
      { requiredKeys: [] },
    ),
    prometheus: fc.record(
      {
        'prometheus.io/scrape': fc.constantFrom('true', 'false'),
        'prometheus.io/port': fc.constantFrom('9102', '8080'),
        'prometheus.io/path': fc.constantFrom('/metrics', '/stats'),
      },
      { requiredKeys: [] },
    ),
    own: fc.record(
      { 'kubectl.kubernetes.io/default-container': name, 'security.istio.io/tlsMode': fc.constant('istio') },
      { requiredKeys: [] },
    ),
    pullSecret: fc.boolean(),
  })
  .chain((g) => {
    const [first, ...rest] = g.names;
    const appNames = [first!, ...rest.slice(0, g.containers - 1)];
    const initNames = rest.slice(g.containers - 1, g.containers - 1 + g.inits).map((n) => `init-${n}`);
    return fc.record({
      g: fc.constant(g),
      containers: fc.tuple(...appNames.map((n) => container(n, 'app'))),
      inits:
        initNames.length > 0
          ? fc.tuple(...initNames.map((n, i) => container(n, g.sidecarInit && i === 0 ? 'sidecar' : 'init')))
          : fc.constant([]),
    });
  })
  .map(({ g, containers, inits }) => {
    const { 'security.istio.io/tlsMode': tlsMode, ...ownAnnotations } = g.own;
    const annotations: Record<string, string> = {
      ...g.prometheus,
      ...ownAnnotations,
      ...(g.native ? { 'sidecar.istio.io/nativeSidecar': g.native } : {}),
    };
    return {
      labels: { ...g.labels, ...(tlsMode ? { 'security.istio.io/tlsMode': tlsMode } : {}) },
      annotations,
      spec: {
        nodeSelector: { 'kubernetes.io/os': 'windows' },
        automountServiceAccountToken: false,
        ...(inits.length > 0 ? { initContainers: inits } : {}),
        containers,
        volumes: [{ name: 'config', configMap: { name: 'app-config' } }],
        ...(g.pullSecret ? { imagePullSecrets: [{ name: 'regcred' }] } : {}),
      },
    };
  });

/** `kubectl create --dry-run=server` of many pods at once: what the API server would store. */
function dryRun(pods: Array<Record<string, unknown>>, ns: string): PodLike[] {
  const items = pods.map((p) => ({ ...p, metadata: { ...(p.metadata as object), namespace: ns } }));
  // One YAML document per pod (with -o json kubectl concatenates JSON objects).
  const out = k(
    ['create', '--dry-run=server', '--show-managed-fields', '-o', 'yaml', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items }),
  );
  return parseAllDocuments(out).map((d) => d.toJS() as PodLike);
}

const specWithoutNode = (p: PodLike) => {
  const { nodeName: _n, ...rest } = p.spec ?? {};
  return rest;
};

/** Asserts a stored pod is its creator's pod plus only what wpgw adds (wpgw's own strip undoes that). */
function expectOriginal(stored: PodLike, want: PodLike, ignoreLabels: string[] = []): void {
  expect(istioResidue(stored, want)).toEqual([]);
  const unWpgw = stripInjection(stored);
  expect(specWithoutNode(unWpgw)).toEqual(specWithoutNode(want));
  // topology.kubernetes.io/{zone,region}: copied from the node at binding (the API server's
  // PodTopologyLabelsAdmission), after both webhooks.
  const later = (key: string) => ignoreLabels.includes(key) || key.startsWith('topology.kubernetes.io/');
  const labels = (p: PodLike) =>
    Object.fromEntries(Object.entries(p.metadata?.labels ?? {}).filter(([key]) => !later(key)));
  expect(labels(unWpgw)).toEqual(labels(want));
  expect(unWpgw.metadata?.annotations ?? {}).toEqual(want.metadata?.annotations ?? {});
  expect(stored.metadata?.labels?.['sidecar.istio.io/inject']).toBe('false');
}

beforeAll(async () => {
  const e = env();
  harnessState = path.dirname(e.kubeconfig);
  await timed('build istiod (test/istio/build.sh, cached)', () =>
    run('bash', [path.join(ISTIO_DIR, 'build.sh')], { timeoutMs: 45 * 60_000 }),
  );
  await timed('start istiod with its sidecar injector (ISTIO_INJECTOR=1 test/istio/start.sh)', () =>
    run('bash', [path.join(ISTIO_DIR, 'start.sh'), harnessState], { env: { ISTIO_INJECTOR: '1' } }),
  );
  istioStarted = true;
  istio = readJson<Record<string, string>>(path.join(harnessState, 'istio-env.json'));
  expect(istio.ISTIO_INJECTOR).toBe('enabled');
  const caBundle = readFileSync(istio.ISTIO_WEBHOOK_CA!).toString('base64');
  apply([
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: WEBHOOK },
      webhooks: [
        {
          name: 'namespace.sidecar-injector.istio.io',
          clientConfig: { url: istio.ISTIO_INJECT_URL, caBundle },
          rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
          failurePolicy: 'Fail',
          reinvocationPolicy: 'Never',
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
          timeoutSeconds: 10,
          namespaceSelector: { matchExpressions: [{ key: 'istio-injection', operator: 'In', values: ['enabled'] }] },
          objectSelector: {
            matchExpressions: [{ key: 'sidecar.istio.io/inject', operator: 'NotIn', values: ['false'] }],
          },
        },
      ],
    },
  ]);
  apply([
    namespace(BOTH, { 'istio-injection': 'enabled', 'wpgw.io/inject': 'enabled' }),
    namespace(ISTIO_ONLY, { 'istio-injection': 'enabled' }),
    namespace(PLAIN, {}),
  ]);
  for (const ns of [BOTH, ISTIO_ONLY, PLAIN]) await waitForDefaultServiceAccount(ns);
  // wpgw routes a pod's outbound names to its namespace's gateway, which the controller creates.
  await eventually(
    `Service wpgw in ${BOTH}`,
    () => getJson(['service', 'wpgw', '-n', BOTH])?.spec?.clusterIP as string | undefined,
    90_000,
  );
}, 60 * 60_000);

afterAll(async () => {
  // The webhook first: with failurePolicy Fail it must not outlive istiod.
  kubectl(['delete', 'mutatingwebhookconfiguration', WEBHOOK, '--ignore-not-found']);
  for (const ns of [BOTH, ISTIO_ONLY, PLAIN])
    kubectl(['delete', 'namespace', ns, '--ignore-not-found', '--wait=false']);
  if (istioStarted)
    await timed('stop istiod (test/istio/stop.sh)', () => run('bash', [path.join(ISTIO_DIR, 'stop.sh'), harnessState]));
});

describe("istiod's sidecar injector runs before wpgw", () => {
  it('control: in a namespace with Istio injection alone, the injector rewrites a Windows pod (sidecar, probes, prometheus)', () => {
    k(['apply', '-f', '-'], JSON.stringify(pod('control', ISTIO_ONLY, { 'sidecar.istio.io/nativeSidecar': 'false' })));
    const stored = getJson<PodLike>(['pod', 'control', '-n', ISTIO_ONLY])!;
    expect(stored.spec!.containers.map((c) => c.name)).toEqual(['app', 'istio-proxy']);
    expect(stored.spec!.containers[0]!.readinessProbe!.httpGet).toMatchObject({
      path: '/app-health/app/readyz',
      port: 15020,
    });
    expect(stored.metadata!.annotations!['prometheus.io/port']).toBe('15020');
    expect(istioResidue(stored).length).toBeGreaterThan(5);
    // Without the annotation the injector makes it a native sidecar (the kwok nodes' kubelet is 1.36).
    k(['create', '-f', '-'], JSON.stringify(pod('control-native', ISTIO_ONLY)));
    const native = getJson<PodLike>(['pod', 'control-native', '-n', ISTIO_ONLY])!;
    expect(native.spec!.initContainers?.find((c) => c.name === 'istio-proxy')?.restartPolicy).toBe('Always');
  });

  it('a Windows Pod (classic sidecar): stored as created, probes and prometheus.io/* its own, no Istio residue', () => {
    const object = pod('orders-win-0', BOTH, {
      'sidecar.istio.io/nativeSidecar': 'false',
      'wpgw.io/outbound': 'orders.sales:9080',
    });
    // create, not apply: apply adds its last-applied-configuration annotation.
    const r = kubectl(['create', '-f', '-'], JSON.stringify(object));
    expect(r.status, r.stderr).toBe(0);
    // The warning wpgw returns proves the pod reached it injected.
    expect(r.stderr).toMatch(
      /removed Istio's sidecar injection \(istio-proxy, istio-init\), gave the app back its own probes \(app\/readinessProbe, app\/livenessProbe, app\/startupProbe\)/,
    );
    const stored = getJson<PodLike>(['pod', 'orders-win-0', '-n', BOTH])!;
    expect(stored.spec!.hostAliases?.at(-1)?.hostnames).toContain('orders.sales');
    expectOriginal(stored, reference(object));
  });

  it('generated Windows pods (probes, hooks, init and native-sidecar containers, prometheus, own keys) through istiod then wpgw are stored as created', () => {
    const generated = fc.sample(generatedPod, { seed: 20261201, numRuns: 40 }).map((p, i) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `gen-${i}`, labels: p.labels, annotations: p.annotations },
      spec: p.spec,
    }));
    const plain = dryRun(generated, PLAIN);
    const injected = dryRun(generated, ISTIO_ONLY);
    // Every one of them is something Istio's injector really rewrites.
    expect(injected.filter((p) => JSON.stringify(p.spec).includes('"istio-proxy"')).length).toBe(generated.length);
    expect(injected.filter((p) => JSON.stringify(p.spec).includes('/app-health/')).length).toBe(generated.length);
    const stored = dryRun(generated, BOTH);
    stored.forEach((p, i) => {
      // Istio records a probe's named port as its number (DumpAppProbers); none are named here.
      try {
        expectOriginal(p, plain[i]!);
      } catch (e) {
        throw new Error(`generated pod ${i}: ${JSON.stringify(generated[i])}\n${(e as Error).message}`);
      }
    });
  });

  it('a Windows Deployment (native sidecar, the kwok nodes report kubelet 1.36): every replica stored as its template', async () => {
    const t = appTemplate({ 'wpgw.io/outbound': 'orders.sales:9080' });
    apply([
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'orders-win', namespace: BOTH },
        spec: { replicas: 2, selector: { matchLabels: { app: 'orders-win' } }, template: t },
      },
    ]);
    const pods = await eventually('2 pods of Deployment orders-win', () => {
      const items = list<PodLike>(['pods', '-n', BOTH, '-l', 'app=orders-win,pod-template-hash']);
      return items.length === 2 ? items : undefined;
    });
    // Their creation went through istiod's injector first (its log names each request).
    const hash = pods[0]!.metadata!.labels!['pod-template-hash']!;
    const requests = readFileSync(istio.ISTIO_LOG!, 'utf8').match(
      new RegExp(`Process sidecar injection request\\s+path=/inject pod=${BOTH}/orders-win-${hash}-`, 'g'),
    );
    expect(requests?.length).toBeGreaterThanOrEqual(2);
    const want = reference({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'orders-win-template', ...t.metadata },
      spec: t.spec,
    });
    for (const p of pods) {
      expect(p.metadata!.ownerReferences?.[0]?.kind).toBe('ReplicaSet');
      expectOriginal(p, want, ['pod-template-hash']);
    }
  });
});
