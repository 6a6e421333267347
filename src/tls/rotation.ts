// The certificate rotation state machine, as pure planning plus a generation step.
//
// Stored data (Secret keys, or files in dev mode):
//   ca.crt  bundle clients trust: the newest CA first, optionally the previous CA after it
//   ca.key  key of the newest CA (the one new leaves are signed with)
//   tls.crt / tls.key  the serving leaf
//
// Rotation keeps every client that trusts the *published* bundle able to verify every leaf that
// may be served (cert-manager#2478, kubewarden adm-controller#818):
//   1. the newest CA has < 1/3 of its life left → new CA; bundle = [new, old]; leaf unchanged
//   2. once that bundle is published (caBundle patched) and has been out for minOverlapMs
//      → new leaf signed by the new CA
//   3. oldCaGraceMs after the leaf switched (or once the old CA expired) → bundle = [new]
// Each call performs at most one step, so every intermediate state is written (and published)
// before the next one is planned.

import { X509Certificate } from 'node:crypto';
import {
  type CertIdentity,
  type CertKeyPem,
  coversExactly,
  generateCa,
  generateLeaf,
  isExpired,
  isIssuedBy,
  issuedAt,
  joinPemBundle,
  keyMatches,
  lifetimeLeft,
  splitPemBundle,
} from './certs.js';

export const CERT_KEYS = ['ca.crt', 'ca.key', 'tls.crt', 'tls.key'] as const;
export type CertKey = (typeof CERT_KEYS)[number];
export type CertData = Record<CertKey, string>;

const DAY_MS = 24 * 60 * 60_000;

export interface RotationPolicy {
  caValidityMs: number;
  leafValidityMs: number;
  /** Renew a certificate once less than this fraction of its lifetime is left (cert-manager: 1/3). */
  renewFraction: number;
  /** Minimum time a new CA sits in the bundle before leaves switch to it (replicas re-read and publish). */
  minOverlapMs: number;
  /** How long the previous CA stays in the bundle after the leaf switched (slow replicas still serve the old leaf). */
  oldCaGraceMs: number;
}

export const DEFAULT_ROTATION_POLICY: RotationPolicy = {
  caValidityMs: 365 * DAY_MS,
  leafValidityMs: 30 * DAY_MS,
  renewFraction: 1 / 3,
  minOverlapMs: 10 * 60_000,
  oldCaGraceMs: 15 * 60_000,
};

/**
 * Throws for policies that break the overlap guarantees. A leaf must fit in the part of a CA's life
 * before rotation (else it is cut short by the CA's expiry and may lapse during an overlap), and the
 * overlap plus grace must be short next to the time left after rotation.
 */
export function validatePolicy(p: RotationPolicy): void {
  if (!(p.renewFraction > 0 && p.renewFraction < 1)) throw new Error('renewFraction must be between 0 and 1');
  if (p.leafValidityMs > p.caValidityMs * p.renewFraction) {
    throw new Error('leafValidityMs must not exceed caValidityMs * renewFraction');
  }
  if (p.minOverlapMs + p.oldCaGraceMs >= (p.leafValidityMs * p.renewFraction) / 2) {
    throw new Error('minOverlapMs + oldCaGraceMs must be well below the leaf renewal window');
  }
}

export type RotationAction =
  | { kind: 'none' }
  | { kind: 'create'; reason: string }
  | { kind: 'rotate-ca' }
  | { kind: 'switch-leaf'; reason: string }
  | { kind: 'renew-leaf'; reason: string }
  | { kind: 'drop-old-cas'; keep: number };

export interface PlanInput {
  /** Current stored data; missing or partial when nothing valid exists yet. */
  data: Partial<CertData> | undefined;
  now: Date;
  identity: CertIdentity;
  policy?: RotationPolicy;
  /** Whether the bundle in `data` is known to be trusted by the API server (caBundle patched). */
  bundlePublished: boolean;
}

/** Decide the single next step. Pure: depends only on its input. */
export function planRotation(input: PlanInput): RotationAction {
  const policy = input.policy ?? DEFAULT_ROTATION_POLICY;
  const { now, data } = input;
  const cas = parseBundle(data?.['ca.crt']);
  const newest = cas?.[0];
  if (!cas || !newest) return { kind: 'create', reason: 'no readable CA bundle' };
  if (!newest.ca) return { kind: 'create', reason: 'first bundle entry is not a CA' };
  if (!data?.['ca.key'] || !keyMatches(newest, data['ca.key']))
    return { kind: 'create', reason: 'CA key missing or not matching' };
  if (isExpired(newest, now)) return { kind: 'create', reason: 'CA expired' };

  const leaf = parseCert(data['tls.crt']);
  if (!leaf || !data['tls.key'] || !keyMatches(leaf, data['tls.key'])) {
    return { kind: 'renew-leaf', reason: 'leaf missing or not matching its key' };
  }
  const signer = cas.findIndex((ca) => isIssuedBy(leaf, ca));
  if (signer < 0) return { kind: 'renew-leaf', reason: 'leaf not signed by a CA in the bundle' };

  const leafLeft = lifetimeLeft(leaf, now);
  const leafStale = !coversExactly(leaf, input.identity);
  const leafDue = leafLeft < policy.renewFraction || leafStale;

  if (signer > 0) {
    // Overlap: the bundle holds a newer CA than the leaf's. Switch when published, or when the
    // leaf is halfway through its renewal window (publishing is failing; waiting longer risks expiry).
    if (leafLeft < policy.renewFraction / 2) return { kind: 'switch-leaf', reason: 'leaf close to expiry' };
    if (input.bundlePublished && now.getTime() >= issuedAt(newest) + policy.minOverlapMs) {
      return { kind: 'switch-leaf', reason: 'new CA published' };
    }
    return { kind: 'none' };
  }

  if (lifetimeLeft(newest, now) < policy.renewFraction) return { kind: 'rotate-ca' };
  if (leafDue) return { kind: 'renew-leaf', reason: leafStale ? 'SANs changed' : 'leaf due for renewal' };

  const olds = cas.slice(1);
  const keep = olds.filter((ca) => keepOldCa(ca, leaf, now, policy));
  if (keep.length < olds.length) return { kind: 'drop-old-cas', keep: keep.length };
  return { kind: 'none' };
}

/** Certificate generation, injectable so tests can count or fake it. */
export interface CertGenerator {
  ca(now: Date, validityMs: number): Promise<CertKeyPem>;
  leaf(ca: CertKeyPem, identity: CertIdentity, now: Date, validityMs: number): Promise<CertKeyPem>;
}

export const defaultGenerator: CertGenerator = {
  ca: (now, validityMs) => generateCa({ now, validityMs }),
  leaf: (ca, identity, now, validityMs) => generateLeaf({ ca, identity, now, validityMs }),
};

/** Produce the data after `action`. Only 'none' returns the input unchanged. */
export async function applyRotation(
  action: RotationAction,
  input: Omit<PlanInput, 'bundlePublished'>,
  gen: CertGenerator = defaultGenerator,
): Promise<CertData> {
  const policy = input.policy ?? DEFAULT_ROTATION_POLICY;
  const { now, identity } = input;
  const data = input.data ?? {};
  const caPems = splitPemBundle(data['ca.crt'] ?? '');
  const current = (): CertData => ({
    'ca.crt': data['ca.crt'] ?? '',
    'ca.key': data['ca.key'] ?? '',
    'tls.crt': data['tls.crt'] ?? '',
    'tls.key': data['tls.key'] ?? '',
  });
  const newLeaf = async (ca: CertKeyPem): Promise<CertData> => {
    const leaf = await gen.leaf(ca, identity, now, policy.leafValidityMs);
    return { ...current(), 'tls.crt': leaf.cert, 'tls.key': leaf.key };
  };

  switch (action.kind) {
    case 'none':
      return current();
    case 'create': {
      const ca = await gen.ca(now, policy.caValidityMs);
      const leaf = await gen.leaf(ca, identity, now, policy.leafValidityMs);
      return { 'ca.crt': joinPemBundle([ca.cert]), 'ca.key': ca.key, 'tls.crt': leaf.cert, 'tls.key': leaf.key };
    }
    case 'rotate-ca': {
      const ca = await gen.ca(now, policy.caValidityMs);
      // Keep only the CA that signed the serving leaf next to the new one.
      return { ...current(), 'ca.crt': joinPemBundle([ca.cert, ...caPems.slice(0, 1)]), 'ca.key': ca.key };
    }
    case 'switch-leaf':
    case 'renew-leaf':
      return newLeaf({ cert: caPems[0] ?? '', key: data['ca.key'] ?? '' });
    case 'drop-old-cas': {
      const [newest, ...olds] = caPems;
      const leaf = new X509Certificate(data['tls.crt'] ?? '');
      const keep = olds.filter((pem) => keepOldCa(new X509Certificate(pem), leaf, now, policy));
      return { ...current(), 'ca.crt': joinPemBundle([newest ?? '', ...keep]) };
    }
  }
}

/** Plan and apply one step. */
export async function rotateOnce(
  input: PlanInput,
  gen?: CertGenerator,
): Promise<{ action: RotationAction; data: CertData }> {
  const action = planRotation(input);
  return { action, data: await applyRotation(action, input, gen) };
}

/** An older CA stays while unexpired and within the grace period after the leaf moved off it. */
function keepOldCa(ca: X509Certificate, leaf: X509Certificate, now: Date, policy: RotationPolicy): boolean {
  return !isExpired(ca, now) && now.getTime() < issuedAt(leaf) + policy.oldCaGraceMs;
}

function parseBundle(bundle: string | undefined): X509Certificate[] | undefined {
  if (!bundle) return undefined;
  try {
    return splitPemBundle(bundle).map((pem) => new X509Certificate(pem));
  } catch {
    return undefined;
  }
}

function parseCert(pem: string | undefined): X509Certificate | undefined {
  if (!pem) return undefined;
  try {
    return new X509Certificate(pem);
  } catch {
    return undefined;
  }
}
