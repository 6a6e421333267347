// The rotation state machine: single steps, a full rotation timeline checked with real TLS
// handshakes, and a property over random reconcile schedules and publish failures.

import { X509Certificate } from 'node:crypto';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateCa, generateLeaf, splitPemBundle, webhookIdentity } from '../../src/tls/certs.js';
import {
  type CertData,
  DEFAULT_ROTATION_POLICY,
  planRotation,
  type RotationAction,
  type RotationPolicy,
  rotateOnce,
  validatePolicy,
} from '../../src/tls/rotation.js';
import { handshake } from './webhook-helpers.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const identity = webhookIdentity({ service: 'wpgw', namespace: 'wpgw-system', extraNames: ['127.0.0.1'] });
const SERVERNAME = 'wpgw.wpgw-system.svc';

/** Short lifetimes so a whole rotation fits in a few weeks of simulated time. */
const policy: RotationPolicy = {
  caValidityMs: 30 * DAY,
  leafValidityMs: 10 * DAY,
  renewFraction: 1 / 3,
  minOverlapMs: 10 * MIN,
  oldCaGraceMs: 15 * MIN,
};

/** Independent check: some CA of the bundle signed the leaf, and both are valid at `at`. */
function verifies(leafPem: string, bundlePem: string, at: Date): boolean {
  const leaf = new X509Certificate(leafPem);
  const valid = (c: X509Certificate) => c.validFromDate <= at && at < c.validToDate;
  if (!valid(leaf)) return false;
  return splitPemBundle(bundlePem)
    .map((p) => new X509Certificate(p))
    .some((ca) => ca.ca && valid(ca) && leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
}

const caCount = (d: CertData) => splitPemBundle(d['ca.crt']).length;
const leafIssuer = (d: CertData) => new X509Certificate(d['tls.crt']).issuer;
const step = (data: CertData | undefined, now: Date, bundlePublished: boolean) =>
  rotateOnce({ data, now, identity, policy, bundlePublished });

describe('policy', () => {
  it('accepts the defaults and the test policy, rejects leaves longer than the pre-rotation window', () => {
    expect(() => validatePolicy(DEFAULT_ROTATION_POLICY)).not.toThrow();
    expect(() => validatePolicy(policy)).not.toThrow();
    expect(() => validatePolicy({ ...policy, leafValidityMs: 11 * DAY })).toThrow(/leafValidityMs/);
  });
});

describe('planRotation: single steps', () => {
  const t0 = new Date('2030-01-01T00:00:00Z');
  let fresh: CertData;
  beforeAll(async () => {
    fresh = (await step(undefined, t0, false)).data;
  });

  it('creates CA + leaf from nothing, and from partial or broken data', () => {
    expect(planRotation({ data: undefined, now: t0, identity, policy, bundlePublished: false }).kind).toBe('create');
    expect(planRotation({ data: {}, now: t0, identity, policy, bundlePublished: false }).kind).toBe('create');
    expect(
      planRotation({ data: { ...fresh, 'ca.crt': 'junk' }, now: t0, identity, policy, bundlePublished: true }).kind,
    ).toBe('create');
    const otherKey = { ...fresh, 'ca.key': fresh['tls.key'] };
    expect(planRotation({ data: otherKey, now: t0, identity, policy, bundlePublished: true })).toEqual({
      kind: 'create',
      reason: 'CA key missing or not matching',
    });
  });

  it('leaves a fresh state alone', () => {
    expect(caCount(fresh)).toBe(1);
    expect(verifies(fresh['tls.crt'], fresh['ca.crt'], t0)).toBe(true);
    expect(
      planRotation({ data: fresh, now: new Date(t0.getTime() + DAY), identity, policy, bundlePublished: true }),
    ).toEqual({ kind: 'none' });
  });

  it('recreates everything once the CA expired', () => {
    const late = new Date(t0.getTime() + 31 * DAY);
    expect(planRotation({ data: fresh, now: late, identity, policy, bundlePublished: true })).toMatchObject({
      kind: 'create',
      reason: 'CA expired',
    });
  });

  it('renews the leaf (same CA) when it is due, when SANs change, or when it is broken', async () => {
    const due = new Date(t0.getTime() + 7 * DAY);
    expect(planRotation({ data: fresh, now: due, identity, policy, bundlePublished: true })).toMatchObject({
      kind: 'renew-leaf',
    });
    const renamed = { ...identity, dnsNames: ['other'] };
    expect(planRotation({ data: fresh, now: t0, identity: renamed, policy, bundlePublished: true })).toEqual({
      kind: 'renew-leaf',
      reason: 'SANs changed',
    });
    expect(
      planRotation({ data: { ...fresh, 'tls.key': fresh['ca.key'] }, now: t0, identity, policy, bundlePublished: true })
        .kind,
    ).toBe('renew-leaf');

    const foreignCa = await generateCa({ now: t0, validityMs: 30 * DAY });
    const foreignLeaf = await generateLeaf({ ca: foreignCa, identity, now: t0, validityMs: DAY });
    const foreign = { ...fresh, 'tls.crt': foreignLeaf.cert, 'tls.key': foreignLeaf.key };
    expect(planRotation({ data: foreign, now: t0, identity, policy, bundlePublished: true })).toEqual({
      kind: 'renew-leaf',
      reason: 'leaf not signed by a CA in the bundle',
    });

    const renewed = await step(fresh, due, true);
    expect(renewed.data['ca.crt']).toBe(fresh['ca.crt']);
    expect(renewed.data['tls.crt']).not.toBe(fresh['tls.crt']);
    expect(verifies(renewed.data['tls.crt'], fresh['ca.crt'], due)).toBe(true);
  });

  it('switches an overlapping leaf without publication once it is halfway through its renewal window', async () => {
    // Build an overlap: rotate at day 20.5 with a leaf renewed at day 14.
    const d14 = new Date(t0.getTime() + 14 * DAY);
    const renewed = (await step(fresh, d14, true)).data;
    const d20 = new Date(t0.getTime() + 20.5 * DAY);
    const rotated = await step(renewed, d20, true);
    expect(rotated.action.kind).toBe('rotate-ca');
    // Never published: wait while the leaf has time left...
    const d21 = new Date(t0.getTime() + 21 * DAY);
    expect(planRotation({ data: rotated.data, now: d21, identity, policy, bundlePublished: false })).toEqual({
      kind: 'none',
    });
    // ...but switch rather than let it lapse (leaf issued day 14 expires day 24; 1/6 left at ~day 22.3).
    const d23 = new Date(t0.getTime() + 23 * DAY);
    expect(planRotation({ data: rotated.data, now: d23, identity, policy, bundlePublished: false })).toEqual({
      kind: 'switch-leaf',
      reason: 'leaf close to expiry',
    });
  });

  it('drops an old CA as soon as it expired', async () => {
    const caOld = await generateCa({ now: t0, validityMs: 2 * DAY });
    const withOld = { ...fresh, 'ca.crt': fresh['ca.crt'] + caOld.cert };
    const before = new Date(t0.getTime() + 1 * DAY);
    // within validity but leaf (issued t0) is way past the grace period: dropped anyway
    expect(planRotation({ data: withOld, now: before, identity, policy, bundlePublished: true })).toEqual({
      kind: 'drop-old-cas',
      keep: 0,
    });
    const dropped = await step(withOld, new Date(t0.getTime() + 3 * DAY), true);
    expect(dropped.action).toEqual({ kind: 'drop-old-cas', keep: 0 });
    expect(dropped.data['ca.crt']).toBe(fresh['ca.crt']);
  });
});

describe('a full rotation, checked with real TLS handshakes', () => {
  // Simulated time ends just before the real now, so every certificate issued from the rotation
  // on is still valid for real OpenSSL verification.
  const realNow = Date.now();
  const t0 = new Date(realNow - 21 * DAY);
  const at = (ms: number) => new Date(t0.getTime() + ms);
  let server: TlsServer;
  let port: number;

  beforeAll(async () => {
    const pki = await step(undefined, new Date(), false);
    server = createTlsServer({ cert: pki.data['tls.crt'], key: pki.data['tls.key'], minVersion: 'TLSv1.2' }, (s) =>
      s.end(),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => {
    server.close();
  });

  /** Serve `leaf` and verify it with a client that trusts exactly `bundle`. */
  async function tlsVerifies(leaf: CertData, bundle: string): Promise<boolean> {
    server.setSecureContext({ cert: leaf['tls.crt'], key: leaf['tls.key'], minVersion: 'TLSv1.2' });
    return (await handshake(port, { ca: bundle, servername: SERVERNAME })).ok;
  }

  it('fresh → create; CA near expiry → both CAs, old leaf; publish → new leaf; later → old CA dropped', async () => {
    const states: { action: RotationAction; data: CertData; now: Date }[] = [];
    let data: CertData | undefined;
    const run = async (now: Date, published: boolean, expected: RotationAction['kind']) => {
      const r = await step(data, now, published);
      expect(r.action.kind, `at ${now.toISOString()}`).toBe(expected);
      data = r.data;
      states.push({ ...r, now });
      return r.data;
    };

    const created = await run(at(0), false, 'create');
    await run(at(1 * DAY), true, 'none');
    await run(at(7 * DAY), true, 'renew-leaf'); // leaf 1/3 left
    await run(at(14 * DAY), true, 'renew-leaf');
    const beforeRotation = data!;
    expect(beforeRotation['ca.crt']).toBe(created['ca.crt']);

    // CA has 9.5 of 30 days left (< 1/3): new CA first in the bundle, old CA kept, leaf untouched.
    const rotated = await run(at(20.5 * DAY), true, 'rotate-ca');
    expect(caCount(rotated)).toBe(2);
    expect(splitPemBundle(rotated['ca.crt'])[1]).toBe(splitPemBundle(created['ca.crt'])[0]);
    expect(rotated['tls.crt']).toBe(beforeRotation['tls.crt']);
    expect(rotated['ca.key']).not.toBe(beforeRotation['ca.key']);

    // Not published yet, then published but too recently: the leaf stays on the old CA.
    await run(at(20.5 * DAY + 1 * MIN), false, 'none');
    await run(at(20.5 * DAY + 5 * MIN), true, 'none');
    // Published and the overlap has lasted minOverlapMs: leaf now signed by the new CA.
    const switched = await run(at(20.5 * DAY + 11 * MIN), true, 'switch-leaf');
    expect(switched['ca.crt']).toBe(rotated['ca.crt']);
    expect(leafIssuer(switched)).toBe(new X509Certificate(splitPemBundle(rotated['ca.crt'])[0]!).subject);
    // Old CA stays through the grace period, then goes.
    await run(at(20.5 * DAY + 20 * MIN), true, 'none');
    const dropped = await run(at(20.5 * DAY + 30 * MIN), true, 'drop-old-cas');
    expect(caCount(dropped)).toBe(1);
    expect(dropped['ca.crt']).toBe(splitPemBundle(rotated['ca.crt'])[0]);
    expect(dropped['tls.crt']).toBe(switched['tls.crt']);
    await run(at(21 * DAY - 1 * HOUR), true, 'none');

    // Every client trusting a published bundle verifies every leaf that may be served around
    // each step: the new leaf under the old bundle (API server not yet patched) and the new
    // bundle, and the old leaf under the new bundle (replicas not yet reloaded).
    for (let i = 1; i < states.length; i++) {
      const prev = states[i - 1]!;
      const next = states[i]!;
      const t = next.now;
      expect(verifies(next.data['tls.crt'], prev.data['ca.crt'], t), `step ${i} new leaf / old bundle`).toBe(true);
      expect(verifies(next.data['tls.crt'], next.data['ca.crt'], t), `step ${i} new leaf / new bundle`).toBe(true);
      expect(verifies(prev.data['tls.crt'], next.data['ca.crt'], t), `step ${i} old leaf / new bundle`).toBe(true);
    }
    // The same, through OpenSSL, for the states whose certificates are valid in real time.
    const live = states.filter((s) => s.now.getTime() >= t0.getTime() + 14 * DAY);
    expect(live.length).toBeGreaterThanOrEqual(6);
    for (let i = 1; i < live.length; i++) {
      const prev = live[i - 1]!;
      const next = live[i]!;
      expect(await tlsVerifies(next.data, prev.data['ca.crt']), `live ${i} new leaf / old bundle`).toBe(true);
      expect(await tlsVerifies(next.data, next.data['ca.crt']), `live ${i} new leaf / new bundle`).toBe(true);
      expect(await tlsVerifies(prev.data, next.data['ca.crt']), `live ${i} old leaf / new bundle`).toBe(true);
    }
    // And the negative control: after the drop, the pre-switch leaf is no longer trusted.
    expect(await tlsVerifies(beforeRotation, dropped['ca.crt'])).toBe(false);
  });
});

describe('property: random reconcile schedules and publish outcomes', () => {
  it('never serves an unverifiable leaf and keeps the API server able to verify normal switches', async () => {
    const seen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ advanceMs: fc.integer({ min: MIN, max: DAY }), publishOk: fc.boolean() }), {
          minLength: 40,
          maxLength: 90,
        }),
        async (schedule) => {
          let now = new Date('2031-03-01T00:00:00Z');
          let data = (await step(undefined, now, false)).data;
          let apiServerBundle: string | undefined = data['ca.crt'];
          let forced = false;
          for (const { advanceMs, publishOk } of schedule) {
            now = new Date(now.getTime() + advanceMs);
            const prev = data;
            const r = await step(prev, now, apiServerBundle === prev['ca.crt']);
            data = r.data;
            seen.set(r.action.kind, (seen.get(r.action.kind) ?? 0) + 1);
            expect(r.action.kind).not.toBe('create');
            expect(caCount(data)).toBeLessThanOrEqual(2);
            expect(verifies(data['tls.crt'], data['ca.crt'], now)).toBe(true);
            expect(verifies(data['tls.crt'], prev['ca.crt'], now)).toBe(true);
            expect(verifies(prev['tls.crt'], data['ca.crt'], now)).toBe(true);
            if (r.action.kind === 'switch-leaf' && r.action.reason !== 'new CA published') forced = true;
            // The API server (trusting the last bundle it was given) can verify the served leaf,
            // unless publishing failed for so long that a forced switch happened.
            if (!forced) expect(verifies(data['tls.crt'], apiServerBundle, now)).toBe(true);
            if (publishOk) apiServerBundle = data['ca.crt'];
          }
        },
      ),
      { numRuns: 15 },
    );
    // The schedules are long enough to go through whole rotations.
    for (const kind of ['renew-leaf', 'rotate-ca', 'switch-leaf', 'drop-old-cas', 'none'])
      expect(seen.get(kind) ?? 0).toBeGreaterThan(0);
  }, 120_000);
});
