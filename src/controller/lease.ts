// Leader election on a coordination.k8s.io/v1 Lease, client-go style: renew every ~2 s, a lease
// not renewed for its duration (15 s) may be taken over, and a leader that cannot renew within
// the renew deadline stops writing at once, before anyone else can take over.
import type { Logger } from 'pino';
import { pino } from 'pino';
import { errorMessage, errorStatus, type KubeRest } from '../cluster/client.js';
import { kindInfo, objectPath, collectionPath } from '../cluster/kinds.js';
import { timeOf } from '../cluster/objects.js';
import { LEASE_TIMINGS } from '../defaults.js';

export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface LeaseObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
  spec?: LeaseSpec;
}

export type LeaseDecision =
  | { action: 'create' }
  | { action: 'renew' }
  | { action: 'acquire' }
  | { action: 'wait'; holder: string; until: number };

export interface LeaseDecisionInput {
  lease: LeaseSpec | undefined;
  identity: string;
  now: number;
  /** Local time at which this exact record (holder + renewTime) was first seen. */
  observedAt?: number;
  /** Used when the lease does not say. */
  defaultDurationMs?: number;
}

/**
 * What to do with the lease now. A foreign lease expires `duration` after we first saw its current
 * record (local clock, immune to skew), or — so a crashed leader does not block a fresh replica —
 * when its own renewTime is more than two durations old.
 */
export function decideLease(input: LeaseDecisionInput): LeaseDecision {
  const { lease, identity, now } = input;
  if (!lease) return { action: 'create' };
  const holder = lease.holderIdentity ?? '';
  if (holder === identity) return { action: 'renew' };
  if (holder === '') return { action: 'acquire' };
  const durationMs = (lease.leaseDurationSeconds ?? 0) * 1000 || (input.defaultDurationMs ?? LEASE_TIMINGS.durationMs);
  const renewed = timeOf(lease.renewTime);
  const localExpiry = (input.observedAt ?? renewed ?? now) + durationMs;
  const serverExpiry = renewed !== undefined ? renewed + 2 * durationMs : Number.POSITIVE_INFINITY;
  const until = Math.min(localExpiry, serverExpiry);
  if (now >= until) return { action: 'acquire' };
  return { action: 'wait', holder, until };
}

/** metav1.MicroTime wants exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export interface LeaderElectorOptions {
  namespace: string;
  name?: string;
  identity: string;
  leaseDurationMs?: number;
  renewIntervalMs?: number;
  /** A leader that has not renewed for this long steps down (must be < lease duration). */
  renewDeadlineMs?: number;
  logger?: Logger;
  onStartedLeading?: () => void;
  onStoppedLeading?: () => void;
  now?: () => number;
}

export class LeaderElector {
  private readonly path: string;
  private readonly name: string;
  private readonly durationMs: number;
  private readonly renewIntervalMs: number;
  private readonly renewDeadlineMs: number;
  private readonly log: Logger;
  private readonly now: () => number;
  private leading = false;
  private lastRenew = 0;
  private observed: { key: string; at: number } | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running = false;
  private ticking: Promise<void> | undefined;
  private currentHolder = '';
  transitions = 0;

  constructor(
    private readonly rest: KubeRest,
    private readonly opts: LeaderElectorOptions,
  ) {
    this.name = opts.name ?? 'wpgw-controller';
    this.path = objectPath(kindInfo('coordination.k8s.io/v1', 'Lease'), opts.namespace, this.name);
    this.durationMs = opts.leaseDurationMs ?? LEASE_TIMINGS.durationMs;
    this.renewIntervalMs = opts.renewIntervalMs ?? LEASE_TIMINGS.renewIntervalMs;
    // Must be shorter than the lease: we stop writing before anyone else may take over.
    this.renewDeadlineMs = Math.min(
      opts.renewDeadlineMs ?? LEASE_TIMINGS.renewDeadlineMs,
      Math.floor((this.durationMs * 2) / 3),
    );
    this.log = (opts.logger ?? pino({ level: 'silent' })).child({
      lease: `${opts.namespace}/${this.name}`,
      identity: opts.identity,
    });
    this.now = opts.now ?? Date.now;
  }

  /** Leading, and the last renewal is recent enough that nobody else can have taken over. */
  isLeader(): boolean {
    return this.leading && this.now() - this.lastRenew < this.renewDeadlineMs;
  }

  holder(): string {
    return this.currentHolder;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /** Stop and, if leading, release the lease so a successor need not wait for it to expire. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
    if (this.leading) {
      await this.release().catch((err: unknown) =>
        this.log.warn({ err: errorMessage(err) }, 'releasing the lease failed'),
      );
      this.stepDown('stopped');
    }
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.ticking = this.tick().finally(() => {
        this.ticking = undefined;
        this.schedule(this.renewIntervalMs);
      });
    }, ms);
    this.timer.unref?.();
  }

  /** One round of the election; exposed for tests. */
  async tick(): Promise<void> {
    try {
      await this.tryAcquireOrRenew();
    } catch (err) {
      this.log.warn({ err: errorMessage(err), code: errorStatus(err) }, 'lease round failed');
    }
    if (this.leading && !this.isLeader()) this.stepDown(`no renewal for ${this.renewDeadlineMs} ms`);
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const now = this.now();
    let lease: LeaseObject | undefined;
    try {
      lease = await this.rest.request<LeaseObject>('GET', this.path);
    } catch (err) {
      if (errorStatus(err) !== 404) throw err;
    }
    const spec = lease?.spec;
    this.currentHolder = spec?.holderIdentity ?? '';
    const key = `${spec?.holderIdentity ?? ''}|${spec?.renewTime ?? ''}`;
    if (this.observed?.key !== key) this.observed = { key, at: now };
    const d = decideLease({
      lease: spec,
      identity: this.opts.identity,
      now,
      observedAt: this.observed.at,
      defaultDurationMs: this.durationMs,
    });
    if (d.action === 'wait') {
      if (this.leading) this.stepDown(`lease is held by ${d.holder}`);
      return;
    }
    const nowTime = microTime(now);
    const durationSeconds = Math.ceil(this.durationMs / 1000);
    try {
      if (d.action === 'create') {
        await this.rest.request(
          'POST',
          collectionPath(kindInfo('coordination.k8s.io/v1', 'Lease'), this.opts.namespace),
          {
            body: {
              apiVersion: 'coordination.k8s.io/v1',
              kind: 'Lease',
              metadata: { name: this.name, namespace: this.opts.namespace },
              spec: {
                holderIdentity: this.opts.identity,
                leaseDurationSeconds: durationSeconds,
                acquireTime: nowTime,
                renewTime: nowTime,
                leaseTransitions: 0,
              },
            },
          },
        );
      } else {
        const next: LeaseSpec =
          d.action === 'renew'
            ? { ...spec, leaseDurationSeconds: durationSeconds, renewTime: nowTime }
            : {
                ...spec,
                holderIdentity: this.opts.identity,
                leaseDurationSeconds: durationSeconds,
                acquireTime: nowTime,
                renewTime: nowTime,
                leaseTransitions: (spec?.leaseTransitions ?? 0) + 1,
              };
        // resourceVersion makes this a compare-and-swap: a concurrent winner makes us get 409.
        await this.rest.request('PUT', this.path, { body: { ...lease, spec: next } });
      }
    } catch (err) {
      if (errorStatus(err) === 409) {
        this.log.debug('lost a lease update race');
        return;
      }
      throw err;
    }
    this.lastRenew = now;
    this.currentHolder = this.opts.identity;
    if (!this.leading) {
      this.leading = true;
      this.transitions++;
      this.log.info({ action: d.action }, 'became leader');
      this.opts.onStartedLeading?.();
    }
  }

  private async release(): Promise<void> {
    const lease = await this.rest.request<LeaseObject>('GET', this.path);
    if (lease.spec?.holderIdentity !== this.opts.identity) return;
    const now = microTime(this.now());
    await this.rest.request('PUT', this.path, {
      body: { ...lease, spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1, renewTime: now } },
    });
  }

  private stepDown(why: string): void {
    if (!this.leading) return;
    this.leading = false;
    this.log.warn({ why }, 'stopped leading');
    this.opts.onStoppedLeading?.();
  }
}
