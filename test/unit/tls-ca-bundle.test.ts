// caBundle publishing: the pure patch, the patcher's ownership guard / retries, and cluster mode
// end to end (two replicas, one Secret, one MutatingWebhookConfiguration, a full CA rotation).

import jsonpatch from 'fast-json-patch';
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { caBundlePatch, createCaBundlePatcher } from '../../src/tls/ca-bundle.js';
import { splitPemBundle, webhookIdentity } from '../../src/tls/certs.js';
import { startManagedTls } from '../../src/tls/managed-tls.js';
import type { RotationPolicy } from '../../src/tls/rotation.js';
import { secretCertStore } from '../../src/tls/secret-store.js';
import { captureLogs, FakeSecrets, FakeWebhookConfigs, makePki, webhookConfig } from './webhook-helpers.js';

const OURS = { 'app.kubernetes.io/managed-by': 'wpgw' };
const b64 = (s: string) => Buffer.from(s).toString('base64');
const noSleep = async () => {};

describe('caBundlePatch (pure)', () => {
  const bundle = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';

  it('touches nothing without one of our labels', () => {
    for (const labels of [
      {},
      { 'app.kubernetes.io/managed-by': 'Helm' },
      { 'wpgw.io/ca-bundle': 'cert-manager' },
    ] as Record<string, string>[]) {
      expect(caBundlePatch(webhookConfig('wpgw', labels, [undefined]), bundle)).toEqual({ owned: false, ops: [] });
    }
  });

  it('owns a configuration Helm installed (managed-by=Helm) that carries wpgw.io/ca-bundle=webhook', () => {
    const labels = { 'app.kubernetes.io/managed-by': 'Helm', 'wpgw.io/ca-bundle': 'webhook' };
    expect(caBundlePatch(webhookConfig('wpgw', labels, [undefined]), bundle).owned).toBe(true);
  });

  it('is empty when every caBundle already has the same bytes', () => {
    expect(caBundlePatch(webhookConfig('wpgw', OURS, [b64(bundle), b64(bundle)]), bundle)).toEqual({
      owned: true,
      ops: [],
    });
  });

  it('adds or replaces only the differing entries, each guarded by a test on its name', () => {
    const config = webhookConfig('wpgw', OURS, [b64(bundle), undefined, b64('old')]);
    const { ops } = caBundlePatch(config, bundle);
    expect(ops).toEqual([
      { op: 'test', path: '/webhooks/1/name', value: 'hook-1.wpgw.io' },
      { op: 'add', path: '/webhooks/1/clientConfig/caBundle', value: b64(bundle) },
      { op: 'test', path: '/webhooks/2/name', value: 'hook-2.wpgw.io' },
      { op: 'replace', path: '/webhooks/2/clientConfig/caBundle', value: b64(bundle) },
    ]);
    const patched = jsonpatch.applyPatch(structuredClone(config), ops, true, false).newDocument;
    expect(patched.webhooks?.map((w) => w.clientConfig.caBundle)).toEqual([b64(bundle), b64(bundle), b64(bundle)]);
    expect(caBundlePatch(patched, bundle).ops).toEqual([]);
  });
});

describe('createCaBundlePatcher', () => {
  const bundle = 'PEM-A';

  it('patches our configuration once, then reports unchanged', async () => {
    const api = new FakeWebhookConfigs();
    api.put(webhookConfig('wpgw', OURS, [undefined, b64('stale')]));
    const { logger } = captureLogs();
    const patcher = createCaBundlePatcher({ api, logger, sleep: noSleep });
    expect(await patcher.ensure(bundle)).toBe('patched');
    expect(await patcher.ensure(bundle)).toBe('unchanged');
    expect(api.patches).toHaveLength(1);
    expect(api.stored.get('wpgw')?.webhooks?.map((w) => w.clientConfig.caBundle)).toEqual([b64(bundle), b64(bundle)]);
    expect(await patcher.publish(bundle)).toBe(true);
  });

  it('never touches a configuration without our label, nor any other configuration', async () => {
    const api = new FakeWebhookConfigs();
    api.put(webhookConfig('wpgw', { team: 'x' }, [b64('theirs')]));
    api.put(webhookConfig('istio-sidecar-injector', OURS, [b64('istio')]));
    const { logger, lines } = captureLogs();
    const patcher = createCaBundlePatcher({ api, logger, sleep: noSleep });
    expect(await patcher.ensure(bundle)).toBe('not-owned');
    expect(await patcher.publish(bundle)).toBe(false);
    expect(api.patches).toEqual([]);
    expect(api.stored.get('wpgw')?.webhooks?.[0]?.clientConfig.caBundle).toBe(b64('theirs'));
    expect(api.stored.get('istio-sidecar-injector')?.webhooks?.[0]?.clientConfig.caBundle).toBe(b64('istio'));
    expect(lines().some((l) => l['level'] === 'warn' && String(l['msg']).includes('lacks our label'))).toBe(true);
  });

  it('uses the configured name', async () => {
    const api = new FakeWebhookConfigs();
    api.put(webhookConfig('wpgw', OURS, [undefined]));
    api.put(webhookConfig('wpgw-canary', OURS, [undefined]));
    const { logger } = captureLogs();
    expect(await createCaBundlePatcher({ api, logger, name: 'wpgw-canary', sleep: noSleep }).ensure(bundle)).toBe(
      'patched',
    );
    expect(api.stored.get('wpgw')?.webhooks?.[0]?.clientConfig.caBundle).toBeUndefined();
    expect(await createCaBundlePatcher({ api, logger, name: 'absent', sleep: noSleep }).ensure(bundle)).toBe(
      'not-found',
    );
  });

  it('retries conflicts and server errors with growing backoff, not forbidden', async () => {
    const api = new FakeWebhookConfigs();
    api.put(webhookConfig('wpgw', OURS, [undefined]));
    const { logger } = captureLogs();
    const delays: number[] = [];
    const patcher = createCaBundlePatcher({
      api,
      logger,
      baseDelayMs: 100,
      maxDelayMs: 1_000,
      sleep: async (ms) => void delays.push(ms),
    });
    api.failPatches.push(409, 500, 422);
    expect(await patcher.ensure(bundle)).toBe('patched');
    expect(api.patches).toHaveLength(4);
    expect(delays).toHaveLength(3);
    delays.forEach((d, i) => expect(d).toBeLessThanOrEqual(100 * 2 ** i));

    api.put(webhookConfig('wpgw', OURS, [undefined]));
    api.failPatches.push(403);
    await expect(patcher.ensure(bundle)).rejects.toMatchObject({ code: 403 });

    api.failPatches.push(500, 500, 500, 500, 500);
    await expect(patcher.ensure(bundle)).rejects.toMatchObject({ code: 500 });
  });

  it('a reordered webhooks list fails the guarded patch instead of writing the wrong entry', async () => {
    const api = new FakeWebhookConfigs();
    api.put(webhookConfig('wpgw', OURS, [undefined, undefined]));
    const { logger } = captureLogs();
    // Reorder between our read and our patch, once.
    const read = api.readMutatingWebhookConfiguration.bind(api);
    let reordered = false;
    api.readMutatingWebhookConfiguration = async (p) => {
      const c = await read(p);
      if (!reordered) {
        reordered = true;
        const stored = api.stored.get('wpgw')!;
        stored.webhooks = [...(stored.webhooks ?? [])].reverse();
      }
      return c;
    };
    const patcher = createCaBundlePatcher({ api, logger, sleep: noSleep });
    expect(await patcher.ensure(bundle)).toBe('patched');
    expect(api.patches).toHaveLength(2); // first failed its test ops (422), the retry re-read
    expect(api.stored.get('wpgw')?.webhooks?.map((w) => w.clientConfig.caBundle)).toEqual([b64(bundle), b64(bundle)]);
  });
});

const MIN = 60_000;
const DAY = 24 * 60 * MIN;

/** Cluster mode: a rotation policy with days-long lifetimes, the Secret API and our webhook configuration (no caBundle yet). */
function clusterFixture() {
  const policy: RotationPolicy = {
    caValidityMs: 30 * DAY,
    leafValidityMs: 10 * DAY,
    renewFraction: 1 / 3,
    minOverlapMs: 10 * MIN,
    oldCaGraceMs: 15 * MIN,
  };
  const identity = webhookIdentity({ service: 'wpgw', namespace: 'wpgw-system' });
  const secrets = new FakeSecrets();
  const configs = new FakeWebhookConfigs();
  configs.put(webhookConfig('wpgw', OURS, [undefined]));
  return { policy, identity, secrets, configs };
}

describe('cluster mode: two replicas, one Secret, one webhook configuration', () => {
  it('publishes the bundle, rotates the CA with overlap and only then switches the leaf', async () => {
    const { policy, identity, secrets, configs } = clusterFixture();
    const { logger } = captureLogs();
    let clock = new Date('2030-01-01T00:00:00Z');
    const replica = () =>
      startManagedTls({
        store: secretCertStore(secrets, { namespace: 'wpgw-system', name: 'wpgw-webhook-tls' }),
        identity,
        logger,
        policy,
        now: () => clock,
        intervalMs: 3_600_000,
        publishBundle: (b) => createCaBundlePatcher({ api: configs, logger, sleep: noSleep }).publish(b),
      });
    const apiServerBundle = () =>
      Buffer.from(configs.stored.get('wpgw')?.webhooks?.[0]?.clientConfig.caBundle ?? '', 'base64').toString();
    const trusts = (leafPem: string) =>
      splitPemBundle(apiServerBundle()).some((ca) => {
        const leaf = new X509Certificate(leafPem);
        const c = new X509Certificate(ca);
        return leaf.checkIssued(c) && leaf.verify(c.publicKey);
      });

    const a = await replica();
    const b = await replica();
    try {
      expect(secrets.calls.create).toBe(1);
      expect(b.current()).toEqual(a.current());
      expect(apiServerBundle()).toBe(a.caBundle());
      expect(trusts(a.current().cert)).toBe(true);
      const leaf0 = a.current().cert;

      const advance = async (ms: number) => {
        clock = new Date(clock.getTime() + ms);
        await a.reconcile();
        await b.reconcile();
        // Whatever either replica serves, the API server can verify.
        expect(trusts(a.current().cert)).toBe(true);
        expect(trusts(b.current().cert)).toBe(true);
      };

      await advance(7 * DAY); // leaf renewal
      expect(a.current().cert).not.toBe(leaf0);
      await advance(7 * DAY);
      await advance(6.5 * DAY); // day 20.5: CA rotation
      expect(splitPemBundle(apiServerBundle())).toHaveLength(2);
      const leafBeforeSwitch = a.current().cert;
      await advance(5 * MIN); // published, but the overlap is too young
      expect(a.current().cert).toBe(leafBeforeSwitch);
      await advance(6 * MIN); // switch
      expect(a.current().cert).not.toBe(leafBeforeSwitch);
      expect(b.current().cert).toBe(a.current().cert);
      await advance(20 * MIN); // old CA dropped from the Secret and the configuration
      expect(splitPemBundle(apiServerBundle())).toHaveLength(1);
      expect(a.caBundle()).toBe(apiServerBundle());
      expect(configs.patches.every((p) => p.name === 'wpgw')).toBe(true);
    } finally {
      a.close();
      b.close();
    }
  });

  it('does not switch the leaf while the bundle cannot be published', async () => {
    const { policy, identity, secrets, configs } = clusterFixture();
    const { logger, lines } = captureLogs();
    let clock = new Date('2030-01-01T00:00:00Z');
    const tls = await startManagedTls({
      store: secretCertStore(secrets, { namespace: 'wpgw-system', name: 'wpgw-webhook-tls' }),
      identity,
      logger,
      policy,
      now: () => clock,
      intervalMs: 3_600_000,
      publishBundle: (b) => createCaBundlePatcher({ api: configs, logger, sleep: noSleep, attempts: 1 }).publish(b),
    });
    try {
      expect(tls.bundlePublished()).toBe(true);
      clock = new Date(clock.getTime() + 14 * DAY);
      await tls.reconcile();
      clock = new Date(clock.getTime() + 6.5 * DAY);
      // From now on every patch fails.
      configs.failPatches.push(...Array<number>(100).fill(503));
      await tls.reconcile(); // rotated, publish failed (logged)
      expect(tls.bundlePublished()).toBe(false);
      expect(lines().some((l) => l['msg'] === 'publishing the CA bundle failed; retrying next round')).toBe(true);
      const leaf = tls.current().cert;
      expect(splitPemBundle(tls.caBundle())).toHaveLength(2);
      for (const ms of [11 * MIN, 1 * DAY]) {
        clock = new Date(clock.getTime() + ms);
        await tls.reconcile();
        expect(tls.current().cert).toBe(leaf);
      }
      // Publishing works again: the next rounds publish, then switch.
      configs.failPatches.length = 0;
      await tls.reconcile();
      expect(tls.bundlePublished()).toBe(true);
      await tls.reconcile();
      expect(tls.current().cert).not.toBe(leaf);
    } finally {
      tls.close();
    }
  });
});

it('cluster mode starts serving even when the webhook configuration is missing', async () => {
  const secrets = new FakeSecrets();
  const configs = new FakeWebhookConfigs();
  const { logger, lines } = captureLogs();
  const tls = await startManagedTls({
    store: secretCertStore(secrets, { namespace: 'wpgw-system', name: 'wpgw-webhook-tls' }),
    identity: webhookIdentity({ service: 'wpgw', namespace: 'wpgw-system' }),
    logger,
    publishBundle: (b) => createCaBundlePatcher({ api: configs, logger, sleep: noSleep }).publish(b),
  });
  try {
    expect(tls.current().cert).toContain('BEGIN CERTIFICATE');
    expect(tls.bundlePublished()).toBe(false);
    expect(lines().some((l) => String(l['msg']).includes('webhook configuration not found'))).toBe(true);
    configs.put(webhookConfig('wpgw', OURS, [undefined]));
    await tls.reconcile();
    expect(tls.bundlePublished()).toBe(true);
  } finally {
    tls.close();
  }
});

it('makePki helper yields a usable pair (sanity for the other tests)', async () => {
  const pki = await makePki();
  expect(new X509Certificate(pki.leaf.cert).checkIssued(new X509Certificate(pki.ca.cert))).toBe(true);
});
