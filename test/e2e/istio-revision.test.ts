// A revisioned Istio with no default tag (the AKS add-on's shape): istiod's real sidecar injector
// (test/istio/start.sh with ISTIO_INJECTOR=1) registered with the API server by revision only.
// The controller from the global setup must give the gateway pods `istio.io/rev` from the
// namespace annotation, and the injector must then replace their `image: auto`; a namespace
// without the annotation shows the registration really is revision-only (its gateway stays on
// `auto`, as on AKS before this setting existed).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apply, env, eventually, kubectl, list } from './helpers.js';
import { ISTIO_DIR, readJson, run } from './istio-helpers.js';

const REVISION = 'asm-1-30';
const ON = 'e2e-rev-on';
const OFF = 'e2e-rev-off';
const MWC = `istio-revision-${REVISION}-e2e`;

let harnessState: string;
let istioEnv: Record<string, string>;

/**
 * Istio's per-revision injector webhooks, as the istio-discovery chart renders them for
 * `revision: asm-1-30` (manifests/charts/istio-control/istio-discovery/templates/mutatingwebhook.yaml):
 * "rev.namespace" and "rev.object". No "namespace."/"object." entries: there is no default revision or tag.
 */
function revisionWebhooks(url: string, caBundle: string): Record<string, unknown> {
  const core = {
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    failurePolicy: 'Fail',
    reinvocationPolicy: 'Never',
    clientConfig: { url, caBundle },
    rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
  };
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: MWC, labels: { 'istio.io/rev': REVISION } },
    webhooks: [
      {
        name: `rev.namespace.sidecar-injector.istio.io`,
        ...core,
        namespaceSelector: {
          matchExpressions: [
            { key: 'istio.io/rev', operator: 'In', values: [REVISION] },
            { key: 'istio-injection', operator: 'DoesNotExist' },
          ],
        },
        objectSelector: {
          matchExpressions: [{ key: 'sidecar.istio.io/inject', operator: 'NotIn', values: ['false'] }],
        },
      },
      {
        name: `rev.object.sidecar-injector.istio.io`,
        ...core,
        namespaceSelector: {
          matchExpressions: [
            { key: 'istio.io/rev', operator: 'DoesNotExist' },
            { key: 'istio-injection', operator: 'DoesNotExist' },
          ],
        },
        objectSelector: {
          matchExpressions: [
            { key: 'sidecar.istio.io/inject', operator: 'NotIn', values: ['false'] },
            { key: 'istio.io/rev', operator: 'In', values: [REVISION] },
          ],
        },
      },
    ],
  };
}

function namespace(name: string, annotations: Record<string, string>): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels: { 'wpgw.io/inject': 'enabled' }, annotations },
  };
}

/** The gateway Deployment's 2 pods (the controller's default replicas), once the ReplicaSet made them. */
function gatewayPods(ns: string): Promise<any[]> {
  return eventually(
    `2 gateway pods in ${ns}`,
    () => {
      const pods = list<any>(['pods', '-n', ns, '-l', `wpgw.io/gateway=${ns}`]);
      return pods.length === 2 ? pods : undefined;
    },
    120_000,
  );
}
const proxyImage = (pod: any): string | undefined =>
  pod.spec.containers.find((c: any) => c.name === 'istio-proxy')?.image;

beforeAll(async () => {
  harnessState = path.dirname(env().kubeconfig);
  // .ci/run builds first; cached here (seconds).
  run('bash', [path.join(ISTIO_DIR, 'build.sh')], { timeoutMs: 45 * 60_000 });
  run('bash', [path.join(ISTIO_DIR, 'start.sh'), harnessState], { env: { ISTIO_INJECTOR: '1' } });
  istioEnv = readJson(path.join(harnessState, 'istio-env.json'));
  expect(istioEnv.ISTIO_INJECTOR).toBe('enabled');
  const ca = readFileSync(istioEnv.ISTIO_WEBHOOK_CA!).toString('base64');
  apply([revisionWebhooks(istioEnv.ISTIO_INJECT_URL!, ca)]);
  apply([namespace(ON, { 'wpgw.io/istio-revision': REVISION }), namespace(OFF, {})]);
}, 50 * 60_000);

afterAll(() => {
  kubectl(['delete', 'mutatingwebhookconfiguration', MWC, '--ignore-not-found']);
  kubectl(['delete', 'namespace', ON, OFF, '--ignore-not-found', '--wait=false']);
  if (harnessState) run('bash', [path.join(ISTIO_DIR, 'stop.sh'), harnessState]);
});

describe('Istio revisions: an injector registered by revision only', () => {
  it('injects the gateway of a namespace annotated wpgw.io/istio-revision', async () => {
    for (const pod of await gatewayPods(ON)) {
      // The gateway template's proxy image, not the placeholder the Deployment carries.
      expect(proxyImage(pod), pod.metadata.name).toMatch(/proxyv2/);
      expect(pod.metadata.annotations?.['sidecar.istio.io/status'], pod.metadata.name).toBeDefined();
      expect(pod.spec.containers.find((c: any) => c.name === 'istio-proxy').args).toContain('router');
      expect(pod.metadata.labels['istio.io/rev']).toBe(REVISION);
    }
  });

  it('leaves a namespace without it on image "auto" (no default revision is registered)', async () => {
    for (const pod of await gatewayPods(OFF)) {
      expect(pod.metadata.labels).not.toHaveProperty('istio.io/rev');
      expect(pod.metadata.annotations?.['sidecar.istio.io/status']).toBeUndefined();
      expect(proxyImage(pod)).toBe('auto');
    }
  });
});
