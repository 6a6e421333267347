// Where the CA + leaf live (a Secret in cluster mode, a directory in dev mode) and the
// read → plan → write loop over it. Writes are optimistic: a lost race re-reads and re-plans,
// so concurrently starting replicas converge on whichever write won.

import type { CertIdentity } from './certs.js';
import {
  type CertData,
  type CertGenerator,
  type RotationAction,
  type RotationPolicy,
  planRotation,
  applyRotation,
} from './rotation.js';

export interface StoredCerts {
  data: Partial<CertData>;
  /** Opaque version for optimistic concurrency (resourceVersion, content hash). */
  version: string;
}

export interface CertStore {
  /** Human-readable location for logs, e.g. "secret wpgw-system/wpgw-webhook-tls". */
  readonly description: string;
  read(): Promise<StoredCerts | undefined>;
  /** false: it already exists (someone else created it first). */
  create(data: CertData): Promise<boolean>;
  /** false: `version` is no longer current. */
  update(data: CertData, version: string): Promise<boolean>;
}

export interface ReconcileOptions {
  now: Date;
  identity: CertIdentity;
  policy?: RotationPolicy;
  /** Whether the given CA bundle is known to be trusted by the API server. */
  isPublished: (bundlePem: string) => boolean;
  generator?: CertGenerator;
  /** Conflicts tolerated before giving up for this round. */
  maxAttempts?: number;
}

export interface ReconcileResult {
  data: CertData;
  action: RotationAction;
}

export async function reconcileCertStore(store: CertStore, opts: ReconcileOptions): Promise<ReconcileResult> {
  const maxAttempts = opts.maxAttempts ?? 5;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const stored = await store.read();
    const input = {
      data: stored?.data,
      now: opts.now,
      identity: opts.identity,
      ...(opts.policy ? { policy: opts.policy } : {}),
    };
    const action = planRotation({ ...input, bundlePublished: opts.isPublished(stored?.data['ca.crt'] ?? '') });
    const data = await applyRotation(action, input, opts.generator);
    if (action.kind === 'none' && stored) return { data, action };
    const written = stored ? await store.update(data, stored.version) : await store.create(data);
    if (written) return { data, action };
    // Lost a race: drop our freshly generated material and plan again from what won.
  }
  throw new Error(`${store.description}: gave up after ${maxAttempts} write conflicts`);
}
