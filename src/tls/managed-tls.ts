// A TlsSource backed by a CertStore (Secret or directory) that it also keeps rotated: every
// interval it reconciles the store (create / rotate, see rotation.ts), serves the stored leaf and
// publishes the stored CA bundle (e.g. the caBundle patcher). A failed round keeps serving what
// it has and tries again next round.

import type { Logger } from 'pino';
import type { CertIdentity } from './certs.js';
import { type CertStore, reconcileCertStore } from './cert-store.js';
import { type CertGenerator, type RotationPolicy, validatePolicy } from './rotation.js';
import { type TlsMaterial, type TlsSource, TlsListeners, validateTlsMaterial } from './tls.js';

export interface ManagedTlsOptions {
  store: CertStore;
  identity: CertIdentity;
  logger: Logger;
  policy?: RotationPolicy;
  /** Reconcile period; other replicas pick up a rotation within one period. */
  intervalMs?: number;
  /**
   * Makes the API server trust a bundle; resolves true once it does. Without it the bundle counts
   * as published as soon as it is stored (caBundle managed elsewhere, e.g. cert-manager cainjector,
   * or dev mode); the policy's minOverlapMs still delays leaf switches.
   */
  publishBundle?: (bundlePem: string) => Promise<boolean>;
  now?: () => Date;
  generator?: CertGenerator;
}

export interface ManagedTls extends TlsSource {
  /** The CA bundle (PEM) clients should trust right now. */
  caBundle(): string;
  /** Whether the API server is known to trust the current bundle (always true without publishBundle). */
  bundlePublished(): boolean;
  /** Run one round now (the timer does the same). Rejects if the store could not be reconciled. */
  reconcile(): Promise<void>;
}

/** Runs the first round (throws if it fails: nothing to serve), then one per interval. */
export async function startManagedTls(opts: ManagedTlsOptions): Promise<ManagedTls> {
  if (opts.policy) validatePolicy(opts.policy);
  const log = opts.logger.child({ component: 'tls-managed', store: opts.store.description });
  const now = opts.now ?? (() => new Date());
  const listeners = new TlsListeners();
  let current: TlsMaterial | undefined;
  let bundle = '';
  let publishedBundle: string | undefined;
  let inFlight: Promise<void> | undefined;

  const round = async (): Promise<void> => {
    const { data, action } = await reconcileCertStore(opts.store, {
      now: now(),
      identity: opts.identity,
      ...(opts.policy ? { policy: opts.policy } : {}),
      ...(opts.generator ? { generator: opts.generator } : {}),
      isPublished: (b) => (opts.publishBundle ? publishedBundle === b : true),
    });
    if (action.kind !== 'none') log.info({ action }, 'webhook certificates updated');

    const next = { cert: data['tls.crt'], key: data['tls.key'] };
    if (!current || current.cert !== next.cert || current.key !== next.key) {
      validateTlsMaterial(next);
      const first = !current;
      current = next;
      if (!first) {
        log.info('serving certificate changed');
        listeners.emit(next);
      }
    }
    bundle = data['ca.crt'];

    if (opts.publishBundle) {
      // Every round, not only on change: this also repairs drift (e.g. a Helm upgrade resetting caBundle).
      // A failure is logged, not thrown: the certificate is fine to serve, and the leaf will not
      // switch CAs until a later round publishes.
      publishedBundle = undefined;
      try {
        if (await opts.publishBundle(bundle)) publishedBundle = bundle;
      } catch (err) {
        log.error({ err }, 'publishing the CA bundle failed; retrying next round');
      }
    }
  };

  const reconcile = (): Promise<void> => {
    inFlight ??= round().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };

  await reconcile();
  const timer = setInterval(() => {
    reconcile().catch((err: unknown) =>
      log.error({ err }, 'certificate reconcile failed; keeping the current certificate'),
    );
  }, opts.intervalMs ?? 60_000);
  timer.unref();

  return {
    current: () => {
      if (!current) throw new Error('no certificate loaded');
      return current;
    },
    caBundle: () => bundle,
    bundlePublished: () => (opts.publishBundle ? publishedBundle === bundle : true),
    onChange: (l) => listeners.add(l),
    reconcile,
    close() {
      clearInterval(timer);
      listeners.clear();
    },
  };
}
