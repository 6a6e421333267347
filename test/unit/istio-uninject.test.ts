// Undoing Istio's sidecar injection (src/core/istio-uninject.ts): the evidence rules, one at a
// time, on small pods. istio-injected.test.ts runs the same code over istiod's real output.
import type { V1Container, V1ManagedFieldsEntry } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { uninjectIstio } from '../../src/core/istio-uninject.js';
import { mutatePod, type PodLike } from '../../src/core/pod.js';
import { deepCopy } from './helpers/builders.js';
import { staticContext } from '../lib/admission.js';

const STATUS = JSON.stringify({
  initContainers: ['istio-init'],
  containers: ['istio-proxy'],
  volumes: ['istio-envoy', 'istio-token'],
  imagePullSecrets: null,
  revision: 'default',
});

function proxy(env: Record<string, string> = {}): V1Container {
  return {
    name: 'istio-proxy',
    image: 'docker.io/istio/proxyv2:1.30.3',
    args: ['proxy', 'sidecar', '--domain', '$(POD_NAMESPACE).svc.cluster.local'],
    env: Object.entries(env).map(([name, value]) => ({ name, value })),
  };
}
const istioInit: V1Container = {
  name: 'istio-init',
  image: 'docker.io/istio/proxyv2:1.30.3',
  args: ['istio-iptables', '-p', '15001'],
};

/** A pod as Istio's template leaves it (labels, annotations, sidecar, init container, volumes). */
function injected(
  extra: {
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    app?: Partial<V1Container>;
    env?: Record<string, string>;
  } = {},
): PodLike {
  return {
    metadata: {
      name: 'web-0',
      labels: {
        app: 'web',
        'security.istio.io/tlsMode': 'istio',
        'service.istio.io/canonical-name': 'web',
        'service.istio.io/canonical-revision': 'latest',
        ...extra.labels,
      },
      annotations: {
        'sidecar.istio.io/status': STATUS,
        'istio.io/rev': 'default',
        'kubectl.kubernetes.io/default-container': 'web',
        'kubectl.kubernetes.io/default-logs-container': 'web',
        ...extra.annotations,
      },
    },
    spec: {
      nodeSelector: { 'kubernetes.io/os': 'windows' },
      initContainers: [istioInit],
      containers: [{ name: 'web', image: 'web:1', ...extra.app }, proxy(extra.env)],
      volumes: [
        { name: 'istio-envoy', emptyDir: {} },
        { name: 'istio-token', projected: { sources: [] } },
      ],
    },
  };
}

const bare: PodLike = {
  metadata: { name: 'web-0', labels: { app: 'web' } },
  spec: { nodeSelector: { 'kubernetes.io/os': 'windows' }, containers: [{ name: 'web', image: 'web:1' }] },
};

/** managedFields as the API server records a creator that set exactly these keys. */
function createdWith(labels: string[], annotations: string[], volumes: string[] = []): V1ManagedFieldsEntry[] {
  const keys = (ks: string[]) => Object.fromEntries([['.', {}], ...ks.map((k) => [`f:${k}`, {}])]);
  const fieldsV1: Record<string, unknown> = {
    'f:metadata': {
      'f:labels': keys(labels),
      ...(annotations.length > 0 ? { 'f:annotations': keys(annotations) } : {}),
    },
  };
  if (volumes.length > 0)
    fieldsV1['f:spec'] = {
      'f:volumes': Object.fromEntries([
        ['.', {}],
        ...volumes.map((v) => [`k:${JSON.stringify({ name: v })}`, { '.': {}, 'f:name': {} }]),
      ]),
    };
  return [
    { manager: 'kube-controller-manager', operation: 'Update', apiVersion: 'v1', fieldsType: 'FieldsV1', fieldsV1 },
  ];
}

describe('uninjectIstio', () => {
  it('returns the same pod object when Istio never touched it', () => {
    const pod = deepCopy(bare);
    expect(uninjectIstio(pod).pod).toBe(pod);
  });

  it("removes what Istio's template added and nothing of the app's", () => {
    const r = uninjectIstio(injected());
    expect(r.pod).toEqual(bare);
    expect(r.removed).toEqual(['istio-proxy', 'istio-init']);
  });

  it('keeps a label or annotation whose value Istio would not have written (no managedFields)', () => {
    const pod = injected({
      labels: { 'security.istio.io/tlsMode': 'disabled', 'service.istio.io/canonical-name': 'storefront' },
      annotations: { 'kubectl.kubernetes.io/default-container': 'sidecar' },
    });
    const r = uninjectIstio(pod);
    expect(r.pod.metadata?.labels).toEqual({
      app: 'web',
      'security.istio.io/tlsMode': 'disabled',
      'service.istio.io/canonical-name': 'storefront',
    });
    expect(r.pod.metadata?.annotations).toEqual({ 'kubectl.kubernetes.io/default-container': 'sidecar' });
  });

  it("keeps the creator's own keys per managedFields, even with Istio's default values", () => {
    const pod = injected();
    pod.metadata!.managedFields = createdWith(
      ['app', 'security.istio.io/tlsMode'],
      ['kubectl.kubernetes.io/default-container'],
    );
    const r = uninjectIstio(pod);
    expect(r.pod.metadata?.labels).toEqual({ app: 'web', 'security.istio.io/tlsMode': 'istio' });
    expect(r.pod.metadata?.annotations).toEqual({ 'kubectl.kubernetes.io/default-container': 'web' });
  });

  it('with managedFields, removes what the creator did not send even when the value differs from the default', () => {
    const pod = injected({
      labels: { 'service.istio.io/canonical-revision': 'v7' },
      annotations: { 'istio.io/rev': 'asm-1-22' },
    });
    pod.metadata!.managedFields = createdWith(['app'], []);
    const r = uninjectIstio(pod);
    expect(r.pod.metadata?.labels).toEqual({ app: 'web' });
    expect(r.pod.metadata?.annotations).toBeUndefined();
  });

  it('keeps a listed volume a remaining container still mounts, and one the creator declared', () => {
    const pod = injected({ app: { volumeMounts: [{ name: 'istio-token', mountPath: '/var/run/secrets/tokens' }] } });
    expect(uninjectIstio(pod).pod.spec?.volumes?.map((v) => v.name)).toEqual(['istio-token']);
    const declared = injected();
    declared.metadata!.managedFields = createdWith(['app'], [], ['istio-envoy']);
    expect(uninjectIstio(declared).pod.spec?.volumes?.map((v) => v.name)).toEqual(['istio-envoy']);
  });

  it('restores HTTP, TCP and gRPC probes and lifecycle hooks from ISTIO_KUBE_APP_PROBERS', () => {
    const probers = {
      '/app-health/web/readyz': { httpGet: { path: '/ready', port: 8443, scheme: 'HTTPS' }, timeoutSeconds: 2 },
      '/app-health/web/livez': { tcpSocket: { port: 8080 }, timeoutSeconds: 1 },
      '/app-health/web/startupz': { grpc: { port: 9090, service: '' }, timeoutSeconds: 1 },
      '/app-lifecycle/web/prestopz': { httpGet: { path: '/drain', port: 8080 } },
    };
    const agent = (kind: string, prefix = 'app-health') => ({
      httpGet: { path: `/${prefix}/web/${kind}`, port: 15020, scheme: 'HTTP' },
    });
    const pod = injected({
      env: { ISTIO_KUBE_APP_PROBERS: JSON.stringify(probers) },
      app: {
        readinessProbe: { ...agent('readyz'), timeoutSeconds: 2, periodSeconds: 5 },
        livenessProbe: { ...agent('livez'), initialDelaySeconds: 10 },
        startupProbe: { ...agent('startupz'), failureThreshold: 30 },
        lifecycle: { preStop: agent('prestopz', 'app-lifecycle') },
      },
    });
    const r = uninjectIstio(pod);
    expect(r.pod.spec?.containers[0]).toEqual({
      name: 'web',
      image: 'web:1',
      readinessProbe: { httpGet: { path: '/ready', port: 8443, scheme: 'HTTPS' }, timeoutSeconds: 2, periodSeconds: 5 },
      livenessProbe: { tcpSocket: { port: 8080 }, initialDelaySeconds: 10 },
      startupProbe: { grpc: { port: 9090, service: '' }, failureThreshold: 30 },
      lifecycle: { preStop: { httpGet: { path: '/drain', port: 8080 } } },
    });
    expect(r.restoredProbes).toEqual(['web/readinessProbe', 'web/livenessProbe', 'web/startupProbe', 'web/preStop']);
  });

  it("leaves a probe the user pointed at 15020 themselves, or one Istio's prober list does not name", () => {
    const own = { httpGet: { path: '/app-health/web/readyz', port: 15020 } };
    const pod = injected({
      env: { ISTIO_KUBE_APP_PROBERS: JSON.stringify({ '/app-health/web/livez': { tcpSocket: { port: 1 } } }) },
      app: { readinessProbe: own },
    });
    expect(uninjectIstio(pod).pod.spec?.containers[0]?.readinessProbe).toEqual(own);
  });

  it("puts back the app's prometheus.io/* from ISTIO_PROMETHEUS_ANNOTATIONS, or removes Istio's when the app had none", () => {
    const merged = {
      'prometheus.io/port': '15020',
      'prometheus.io/path': '/stats/prometheus',
      'prometheus.io/scrape': 'true',
    };
    const withApp = injected({
      annotations: merged,
      env: { ISTIO_PROMETHEUS_ANNOTATIONS: JSON.stringify({ scrape: 'true', path: '', port: '9102' }) },
    });
    expect(uninjectIstio(withApp).pod.metadata?.annotations).toEqual({
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': '9102',
    });
    expect(uninjectIstio(injected({ annotations: merged })).pod.metadata?.annotations).toBeUndefined();
    // The creator's own spelling of the keys comes back (Istio matches them sanitized).
    const spelled = injected({
      annotations: merged,
      env: { ISTIO_PROMETHEUS_ANNOTATIONS: JSON.stringify({ scrape: 'true', path: '/m', port: '9102' }) },
    });
    spelled.metadata!.managedFields = createdWith(
      ['app'],
      ['prometheus_io/scrape', 'prometheus.io/path', 'prometheus.io/port'],
    );
    expect(uninjectIstio(spelled).pod.metadata?.annotations).toEqual({
      'prometheus_io/scrape': 'true',
      'prometheus.io/path': '/m',
      'prometheus.io/port': '9102',
    });
  });

  it("leaves prometheus annotations that do not point at Istio's agent", () => {
    const own = { 'prometheus.io/port': '9102', 'prometheus.io/path': '/stats/prometheus' };
    expect(uninjectIstio(injected({ annotations: own })).pod.metadata?.annotations).toEqual(own);
  });

  it('removes a native sidecar (istio-proxy as an init container) and keeps app init containers in order', () => {
    const pod = injected();
    const spec = pod.spec!;
    spec.containers = [{ name: 'web', image: 'web:1' }];
    spec.initContainers = [
      istioInit,
      { ...proxy(), restartPolicy: 'Always' },
      { name: 'setup', image: 's' },
      { name: 'agent', image: 'a', restartPolicy: 'Always' },
    ];
    pod.metadata!.annotations!['sidecar.istio.io/status'] = JSON.stringify({
      initContainers: ['istio-init', 'istio-proxy'],
      containers: null,
      volumes: ['istio-envoy', 'istio-token'],
      imagePullSecrets: null,
      revision: 'default',
    });
    const r = uninjectIstio(pod);
    expect(r.pod.spec?.initContainers?.map((c) => c.name)).toEqual(['setup', 'agent']);
    expect(r.removed).toEqual(['istio-init', 'istio-proxy']);
  });

  it('without a status record, recognises the rendered sidecar and init container and drops unmounted template volumes', () => {
    const pod = injected();
    delete pod.metadata!.annotations!['sidecar.istio.io/status'];
    expect(uninjectIstio(pod).pod).toEqual(bare);
    // A user container merely named istio-proxy (not running pilot-agent) is not evidence.
    const own: PodLike = {
      ...deepCopy(bare),
      spec: {
        containers: [
          { name: 'web', image: 'web:1' },
          { name: 'istio-proxy', image: 'nginx' },
        ],
      },
    };
    expect(uninjectIstio(own).pod).toBe(own);
  });

  it('removes only the pull secrets Istio lists and the creator did not declare', () => {
    const pod = injected();
    pod.spec!.imagePullSecrets = [{ name: 'regcred' }, { name: 'istio-pull' }];
    pod.metadata!.annotations!['sidecar.istio.io/status'] = JSON.stringify({
      containers: ['istio-proxy'],
      initContainers: ['istio-init'],
      volumes: [],
      imagePullSecrets: ['istio-pull', 'regcred'],
    });
    pod.metadata!.managedFields = createdWith(['app'], []);
    (pod.metadata!.managedFields[0]!.fieldsV1 as Record<string, Record<string, unknown>>)['f:spec'] = {
      'f:imagePullSecrets': { 'k:{"name":"regcred"}': {} },
    };
    expect(uninjectIstio(pod).pod.spec?.imagePullSecrets).toEqual([{ name: 'regcred' }]);
  });

  it('undoes the Multus network Istio CNI appends', () => {
    const comma = injected({ annotations: { 'k8s.v1.cni.cncf.io/networks': 'macvlan-conf,default/istio-cni' } });
    expect(uninjectIstio(comma).pod.metadata?.annotations).toEqual({ 'k8s.v1.cni.cncf.io/networks': 'macvlan-conf' });
    const json = injected({
      annotations: { 'k8s.v1.cni.cncf.io/networks': '[{"name":"istio-cni","namespace":"default"}]' },
    });
    expect(uninjectIstio(json).pod.metadata?.annotations).toBeUndefined();
  });

  it('survives foreign shapes in the status record and the proxy env without throwing', () => {
    for (const status of ['not json', '[]', '{"containers":"istio-proxy","volumes":[1,{}]}', 'null']) {
      const pod = injected({ env: { ISTIO_KUBE_APP_PROBERS: '{"x":', ISTIO_PROMETHEUS_ANNOTATIONS: '[1]' } });
      pod.metadata!.annotations!['sidecar.istio.io/status'] = status;
      expect(() => uninjectIstio(pod)).not.toThrow();
      expect(uninjectIstio(pod).pod.spec?.containers.map((c) => c.name)).toEqual(['web']);
    }
  });
});

describe('mutatePod after un-injection', () => {
  it("warns when the creator's own security.istio.io/tlsMode=istio stays (Istio would send the pod mTLS)", () => {
    const pod = injected();
    pod.metadata!.managedFields = createdWith(['app', 'security.istio.io/tlsMode'], []);
    const out = mutatePod({ pod, namespace: 'shop', ctx: staticContext() });
    if (out.action !== 'mutate') throw new Error('expected mutate');
    expect(out.pod.metadata?.labels?.['security.istio.io/tlsMode']).toBe('istio');
    expect(out.warnings.join('\n')).toMatch(
      /its own label security\.istio\.io\/tlsMode=istio makes Istio's proxies send it mTLS/,
    );
    // Istio's own label (not in managedFields) is removed, and then there is nothing to warn about.
    const istios = injected();
    istios.metadata!.managedFields = createdWith(['app'], []);
    const clean = mutatePod({ pod: istios, namespace: 'shop', ctx: staticContext() });
    if (clean.action !== 'mutate') throw new Error('expected mutate');
    expect(clean.warnings.join('\n')).not.toMatch(/tlsMode/);
  });
});
