// Cluster mode storage: replicas sharing one Secret. The CoreV1Api is replaced by an in-memory
// stand-in with the API server's semantics that matter here (404, 409 on create, resourceVersion
// preconditions on replace), raising client-node's real ApiException.

import { X509Certificate } from 'node:crypto';
import { ApiException, type V1Secret } from '@kubernetes/client-node';
import { FakeSecrets } from './webhook-helpers.js';
import { describe, expect, it } from 'vitest';
import { reconcileCertStore } from '../../src/tls/cert-store.js';
import { webhookIdentity } from '../../src/tls/certs.js';
import type { RotationPolicy } from '../../src/tls/rotation.js';
import { secretCertStore } from '../../src/tls/secret-store.js';

const MIN = 60_000;
const DAY = 24 * 60 * MIN;
const identity = webhookIdentity({ service: 'wpgw', namespace: 'wpgw-system' });
const ref = { namespace: 'wpgw-system', name: 'wpgw-webhook-tls' };
const policy: RotationPolicy = {
  caValidityMs: 30 * DAY,
  leafValidityMs: 10 * DAY,
  renewFraction: 1 / 3,
  minOverlapMs: 10 * MIN,
  oldCaGraceMs: 15 * MIN,
};

const decoded = (s: V1Secret | undefined, key: string) => Buffer.from(s?.data?.[key] ?? '', 'base64').toString('utf8');

describe('secretCertStore', () => {
  it('first replica creates the Secret with all four keys; the next one reads it', async () => {
    const api = new FakeSecrets();
    const now = new Date('2030-05-01T00:00:00Z');
    const a = await reconcileCertStore(secretCertStore(api, ref), { now, identity, policy, isPublished: () => true });
    expect(a.action.kind).toBe('create');
    const secret = api.stored.get('wpgw-system/wpgw-webhook-tls');
    expect(secret?.type).toBe('kubernetes.io/tls');
    expect(secret?.metadata?.labels).toEqual({ 'app.kubernetes.io/managed-by': 'wpgw' });
    expect(Object.keys(secret?.data ?? {}).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    expect(decoded(secret, 'tls.crt')).toBe(a.data['tls.crt']);

    const b = await reconcileCertStore(secretCertStore(api, ref), { now, identity, policy, isPublished: () => true });
    expect(b.action.kind).toBe('none');
    expect(b.data).toEqual(a.data);
    expect(api.calls.create).toBe(1);
  });

  it('replicas starting at the same time converge on one Secret (409 on create → re-read)', async () => {
    const api = new FakeSecrets();
    const now = new Date('2030-05-01T00:00:00Z');
    const results = await Promise.all(
      [1, 2, 3].map(() =>
        reconcileCertStore(secretCertStore(api, ref), { now, identity, policy, isPublished: () => true }),
      ),
    );
    expect(api.calls.create).toBe(3);
    expect(api.calls.create409).toBe(2);
    expect(results.filter((r) => r.action.kind === 'create')).toHaveLength(1);
    const stored = api.stored.get('wpgw-system/wpgw-webhook-tls');
    for (const r of results) {
      expect(r.data['tls.crt']).toBe(decoded(stored, 'tls.crt'));
      expect(r.data['ca.crt']).toBe(decoded(stored, 'ca.crt'));
    }
  });

  it('concurrent rotations: one replace wins, the loser re-plans from the winner', async () => {
    const api = new FakeSecrets();
    const t0 = new Date('2030-05-01T00:00:00Z');
    await reconcileCertStore(secretCertStore(api, ref), { now: t0, identity, policy, isPublished: () => true });
    const d14 = new Date(t0.getTime() + 14 * DAY); // a running replica renewed the leaf meanwhile
    expect(
      (await reconcileCertStore(secretCertStore(api, ref), { now: d14, identity, policy, isPublished: () => true }))
        .action.kind,
    ).toBe('renew-leaf');
    const due = new Date(t0.getTime() + 20.5 * DAY); // CA < 1/3 left
    const [a, b] = await Promise.all(
      [1, 2].map(() =>
        reconcileCertStore(secretCertStore(api, ref), { now: due, identity, policy, isPublished: () => false }),
      ),
    );
    expect(api.calls.replace409).toBe(1);
    expect([a!.action.kind, b!.action.kind].sort()).toEqual(['none', 'rotate-ca']);
    expect(a!.data).toEqual(b!.data);
    expect(decoded(api.stored.get('wpgw-system/wpgw-webhook-tls'), 'ca.crt')).toBe(a!.data['ca.crt']);
  });

  it('keeps metadata, type and keys it does not own when updating', async () => {
    const api = new FakeSecrets();
    const t0 = new Date('2030-05-01T00:00:00Z');
    await reconcileCertStore(secretCertStore(api, ref), { now: t0, identity, policy, isPublished: () => true });
    const s = api.stored.get('wpgw-system/wpgw-webhook-tls')!;
    s.metadata!.annotations = { 'helm.sh/resource-policy': 'keep' };
    s.data!['extra'] = Buffer.from('mine').toString('base64');

    const renamed = { ...identity, dnsNames: [...identity.dnsNames, 'wpgw.example'] };
    const r = await reconcileCertStore(secretCertStore(api, ref), {
      now: t0,
      identity: renamed,
      policy,
      isPublished: () => true,
    });
    expect(r.action.kind).toBe('renew-leaf');
    const after = api.stored.get('wpgw-system/wpgw-webhook-tls')!;
    expect(after.metadata?.annotations).toEqual({ 'helm.sh/resource-policy': 'keep' });
    expect(after.metadata?.labels).toEqual({ 'app.kubernetes.io/managed-by': 'wpgw' });
    expect(after.type).toBe('kubernetes.io/tls');
    expect(decoded(after, 'extra')).toBe('mine');
    expect(new X509Certificate(decoded(after, 'tls.crt')).checkHost('wpgw.example')).toBe('wpgw.example');
  });

  it('fills a pre-created empty Secret (e.g. from a chart) instead of creating one', async () => {
    const api = new FakeSecrets();
    await api.createNamespacedSecret({
      namespace: ref.namespace,
      body: { metadata: { name: ref.name }, type: 'Opaque' },
    });
    const r = await reconcileCertStore(secretCertStore(api, ref), {
      now: new Date(),
      identity,
      policy,
      isPublished: () => true,
    });
    expect(r.action.kind).toBe('create');
    expect(api.calls.create).toBe(1);
    expect(api.calls.replace).toBe(1);
    expect(api.stored.get('wpgw-system/wpgw-webhook-tls')?.type).toBe('Opaque');
  });

  it('surfaces errors other than 404/409', async () => {
    const api = new FakeSecrets();
    api.readNamespacedSecret = async () => {
      throw new ApiException(403, 'forbidden', {}, {});
    };
    await expect(
      reconcileCertStore(secretCertStore(api, ref), { now: new Date(), identity, policy, isPublished: () => true }),
    ).rejects.toMatchObject({ code: 403 });
  });
});
