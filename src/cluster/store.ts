// Objects indexed by namespace then name, so per-namespace reads cost O(objects in that namespace).

export interface ObjectMetaLike {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: unknown;
  creationTimestamp?: unknown;
}

export interface KubeObjectLike {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMetaLike;
}

export class NamespacedStore<T extends KubeObjectLike> {
  private readonly byNs = new Map<string, Map<string, T>>();
  private count = 0;

  get(namespace: string | undefined, name: string): T | undefined {
    return this.byNs.get(namespace ?? '')?.get(name);
  }

  /** Objects of one namespace ("" for cluster-scoped). */
  list(namespace: string): T[] {
    const m = this.byNs.get(namespace);
    return m ? [...m.values()] : [];
  }

  all(): T[] {
    const out: T[] = [];
    for (const m of this.byNs.values()) out.push(...m.values());
    return out;
  }

  hasNamespace(namespace: string): boolean {
    return this.byNs.has(namespace);
  }

  namespaces(): string[] {
    return [...this.byNs.keys()];
  }

  get size(): number {
    return this.count;
  }

  /** Returns the previous object, if any. */
  set(obj: T): T | undefined {
    const ns = obj.metadata?.namespace ?? '';
    const name = obj.metadata?.name ?? '';
    let m = this.byNs.get(ns);
    if (!m) {
      m = new Map();
      this.byNs.set(ns, m);
    }
    const old = m.get(name);
    m.set(name, obj);
    if (!old) this.count++;
    return old;
  }

  delete(namespace: string | undefined, name: string): T | undefined {
    const ns = namespace ?? '';
    const m = this.byNs.get(ns);
    const old = m?.get(name);
    if (m && old) {
      m.delete(name);
      this.count--;
      if (m.size === 0) this.byNs.delete(ns);
    }
    return old;
  }
}
