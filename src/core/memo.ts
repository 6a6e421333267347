// A small least-recently-used memo for pure computations keyed by a string.
//
// Pods come in replica sets: every replica of a Deployment carries the same wpgw.io/outbound text
// in the same namespace, so the webhook parses and expands the same annotation again and again.
// Results are immutable (callers copy what they hand out), so sharing them is safe; the bound keeps
// a stream of distinct pods from growing memory.
export class BoundedMemo<V> {
  /** Each entry carries when it was last used; a hit only bumps that, it does not touch the Map. */
  readonly #entries = new Map<string, { value: V; used: number }>();
  #clock = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new Error(`memo capacity must be a positive integer, got ${capacity}`);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The value for `key`, computing (and remembering) it on a miss. A throwing compute caches nothing. */
  get(key: string, compute: () => V): V {
    const hit = this.#entries.get(key);
    if (hit) {
      hit.used = ++this.#clock;
      return hit.value;
    }
    const value = compute();
    if (this.#entries.size >= this.capacity) this.#evictLeastRecent();
    this.#entries.set(key, { value, used: ++this.#clock });
    return value;
  }

  // A scan on a miss (which just paid for a computation) keeps hits, the common case, at one lookup;
  // re-inserting on every hit to keep the Map in use order cost a delete and a set per admission.
  #evictLeastRecent(): void {
    let oldest: string | undefined;
    let oldestUsed = Infinity;
    for (const [key, entry] of this.#entries) {
      if (entry.used < oldestUsed) {
        oldest = key;
        oldestUsed = entry.used;
      }
    }
    if (oldest !== undefined) this.#entries.delete(oldest);
  }
}
