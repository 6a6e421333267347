// Exponential backoff with a cap and optional jitter (jitter spreads restarts of many watches).

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** 0..1: the delay is multiplied by a random factor in [1 - jitter, 1]. */
  jitter?: number;
  random?: () => number;
}

export class Backoff {
  private attempt = 0;

  constructor(private readonly opts: BackoffOptions) {}

  /** Delay before the next attempt; each call doubles it up to the cap. */
  next(): number {
    const base = backoffDelay(this.attempt, this.opts.initialMs, this.opts.maxMs);
    this.attempt = Math.min(this.attempt + 1, 52);
    const jitter = this.opts.jitter ?? 0;
    const r = (this.opts.random ?? Math.random)();
    return Math.round(base * (1 - jitter * r));
  }

  reset(): void {
    this.attempt = 0;
  }

  get failures(): number {
    return this.attempt;
  }
}

/** The delay after `failures` failures: initialMs doubled per failure, capped at maxMs (no jitter). */
export function backoffDelay(failures: number, initialMs: number, maxMs: number): number {
  return Math.min(maxMs, initialMs * 2 ** Math.min(failures, 52));
}
