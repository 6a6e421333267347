// A small least-recently-used memo for pure computations keyed by a string.
//
// Pods come in replica sets: every replica of a Deployment carries the same wpgw.io/outbound text
// in the same namespace, so the webhook parses and expands the same annotation again and again.
// Results are immutable (callers copy what they hand out), so sharing them is safe; the bound keeps
// a stream of distinct pods from growing memory.
export class BoundedMemo<V> {
  readonly #entries = new Map<string, V>();

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
    if (hit !== undefined || this.#entries.has(key)) {
      // Re-insert: Map iteration order is insertion order, so the first key is the least recently used.
      this.#entries.delete(key);
      this.#entries.set(key, hit as V);
      return hit as V;
    }
    const value = compute();
    if (this.#entries.size >= this.capacity) this.#entries.delete(this.#entries.keys().next().value as string);
    this.#entries.set(key, value);
    return value;
  }
}
