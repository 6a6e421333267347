// How long to gather watch events for a namespace before reconciling it.
//
// A quiet namespace is reconciled soon after a change (the short window merges one kubectl apply
// or rollout). A namespace that keeps changing (a deploy of many workloads, pods starting one by
// one) had its namespace-wide objects (AuthorizationPolicy source IPs, NetworkPolicy ports, the
// gateway Service ports) rewritten on every short window: in `npm run bench:controller` those were
// ~11 writes each. While the last reconcile of a namespace wrote something recently, events
// wait for the longer window, so a burst costs a few writes; the first reconcile that finds
// nothing to write ends the busy period. Events that arrive while a reconcile is writing (its own
// writes' echoes, the rest of the burst) were queued with the short window; the controller moves
// them to the long one once that reconcile has written (WorkQueue.postpone): they used to cost
// each namespace-wide object one more write per burst. Like kube-controller-manager's
// --endpoint-updates-batch-period, traded against a little latency, only under churn.

export interface BatchWindowOptions {
  /** Window for a quiet namespace. */
  quietMs: number;
  /** Window while the namespace is busy. */
  busyMs: number;
  /** A namespace is busy for this long after a reconcile that wrote objects. */
  busyForMs: number;
}

export const DEFAULT_BATCH_WINDOWS: BatchWindowOptions = { quietMs: 500, busyMs: 5_000, busyForMs: 15_000 };

export class BatchWindows {
  /** Namespace -> until when it counts as busy (epoch ms). */
  readonly #busyUntil = new Map<string, number>();

  constructor(private readonly opts: BatchWindowOptions = DEFAULT_BATCH_WINDOWS) {}

  /** The batching delay for an event in `namespace` now. */
  delayFor(namespace: string, now: number = Date.now()): number {
    const until = this.#busyUntil.get(namespace);
    if (until === undefined) return this.opts.quietMs;
    if (now < until) return this.opts.busyMs;
    this.#busyUntil.delete(namespace);
    return this.opts.quietMs;
  }

  /** Record what a reconcile did: wrote something (busy) or found the namespace converged (quiet). */
  reconciled(namespace: string, wrote: boolean, now: number = Date.now()): void {
    if (wrote) this.#busyUntil.set(namespace, now + this.opts.busyForMs);
    else this.#busyUntil.delete(namespace);
  }

  forget(namespace: string): void {
    this.#busyUntil.delete(namespace);
  }
}
