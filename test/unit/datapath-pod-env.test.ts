// The data-path pod runner resolves container env as kubelet does (test/datapath/pod-env.ts):
// Istio's injected istio-proxy container depends on fieldRef, resourceFieldRef and $(VAR).
import { describe, expect, it } from 'vitest';
import { expandVars, quantity, resolveEnv } from '../datapath/pod-env.js';

const pod = {
  metadata: { name: 'wpgw-abc', namespace: 'shop', uid: 'u-1', labels: { app: 'wpgw' }, annotations: { 'a/b': 'c' } },
  spec: { nodeName: 'linux-1', serviceAccountName: 'wpgw', containers: [] },
  status: { podIP: '10.244.0.3', hostIP: '127.0.100.1' },
};

describe('container env as kubelet resolves it', () => {
  it('fieldRef, $(VAR) in later values, secretKeyRef', async () => {
    const env = await resolveEnv(
      pod,
      {
        name: 'istio-proxy',
        env: [
          { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
          { name: 'INSTANCE_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          { name: 'SA', valueFrom: { fieldRef: { fieldPath: 'spec.serviceAccountName' } } },
          { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
          { name: 'DOMAIN', value: '$(POD_NAMESPACE).svc.cluster.local' },
          { name: 'UNKNOWN', value: '$(NOPE)' },
          { name: 'KEY', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } },
        ],
      },
      async (name, key) => `${name}/${key}`,
    );
    expect(env).toEqual({
      POD_NAMESPACE: 'shop',
      INSTANCE_IP: '10.244.0.3',
      SA: 'wpgw',
      APP: 'wpgw',
      DOMAIN: 'shop.svc.cluster.local',
      UNKNOWN: '$(NOPE)',
      KEY: 's/k',
    });
  });

  it('resourceFieldRef: limits in divisor units, rounded up; no limit means the node allocatable', async () => {
    const env = await resolveEnv(
      pod,
      {
        name: 'c',
        resources: { limits: { memory: '1Gi', cpu: '1500m' } },
        env: [
          { name: 'GOMEMLIMIT', valueFrom: { resourceFieldRef: { resource: 'limits.memory' } } },
          { name: 'CPU', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } },
          { name: 'MEM_MI', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } } },
        ],
      },
      async () => '',
    );
    expect(env).toEqual({ GOMEMLIMIT: String(1024 ** 3), CPU: '2', MEM_MI: '1024' });
    const none = await resolveEnv(
      pod,
      { name: 'c', env: [{ name: 'CPU', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } }] },
      async () => '',
    );
    expect(none.CPU).toBe('32');
  });

  it('quantities and $(VAR) expansion', () => {
    expect(quantity('500m')).toBe(0.5);
    expect(quantity('128Mi')).toBe(128 * 1024 ** 2);
    expect(quantity('2')).toBe(2);
    expect(() => quantity('1Zi')).toThrow(/unsupported/);
    expect(expandVars('--domain $(POD_NAMESPACE).svc', { POD_NAMESPACE: 'shop' })).toBe('--domain shop.svc');
  });
});
