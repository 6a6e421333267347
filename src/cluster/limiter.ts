// A queue with at most `max` tasks in flight, in arrival order: for bursts of API calls that each
// hold buffers (opting in 50 namespaces at once starts a backfill list per scoped kind for each).

export class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new Error(`Limiter: max must be a positive integer, got ${max}`);
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    // A finished task hands its slot straight to the next waiter, so a newcomer cannot slip in
    // between and exceed max.
    if (this.active >= this.max) await new Promise<void>((resume) => this.waiting.push(resume));
    else this.active++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }

  /** Tasks running and waiting (for tests and metrics). */
  get load(): { active: number; waiting: number } {
    return { active: this.active, waiting: this.waiting.length };
  }
}
