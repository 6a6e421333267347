// The controller resolves the external names its gateways would otherwise resolve themselves, so
// the pure core can check the answers and pin the ServiceEntries to them (core/desired/pinning.ts).
// The system resolver (getaddrinfo: resolv.conf, search domains) is what Envoy's STRICT_DNS
// clusters use in a gateway pod too. Answers are kept for `ttlMs`; a failed lookup keeps the last
// good answer (a DNS hiccup must not take a working destination away); `refresh()` re-resolves
// every name in use and reports the namespaces whose names changed.
import { lookup as dnsLookup, Resolver } from 'node:dns/promises';
import { withTimeout } from '../cluster/timeout.js';
import type { Resolution } from '../core/desired/pinning.js';

export type LookupFn = (host: string) => Promise<string[]>;

export interface ExternalResolverOptions {
  lookup?: LookupFn;
  /** How long an answer is reused before a reconcile looks it up again (default 30 s). */
  ttlMs?: number;
  /** A lookup that takes longer than this fails (default 5 s). */
  timeoutMs?: number;
  now?: () => number;
}

interface Entry {
  addresses: string[];
  error?: string;
  at: number;
}

export const systemLookup: LookupFn = async (host) =>
  (await dnsLookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** A and AAAA from one DNS server ("ip" or "ip:port"), for a controller that does not share the gateways' resolver. */
export function serverLookup(server: string): LookupFn {
  const resolver = new Resolver({ timeout: 2000, tries: 2 });
  resolver.setServers([server]);
  return async (host) => {
    const [v4, v6] = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
    const addresses = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    if (addresses.length === 0 && v4.status === 'rejected') throw v4.reason;
    return addresses;
  };
}

export class ExternalResolver {
  private readonly answers = new Map<string, Entry>();
  private readonly inUse = new Map<string, Set<string>>();
  private readonly lookup: LookupFn;
  private readonly now: () => number;

  constructor(private readonly o: ExternalResolverOptions = {}) {
    this.lookup = o.lookup ?? systemLookup;
    this.now = o.now ?? Date.now;
  }

  /** The namespace now uses exactly these hosts; their (possibly cached) resolutions. */
  async resolve(namespace: string, hosts: readonly string[]): Promise<Record<string, Resolution>> {
    this.inUse.set(namespace, new Set(hosts));
    const out: Record<string, Resolution> = {};
    await Promise.all(
      hosts.map(async (h) => {
        const cached = this.answers.get(h);
        const e = cached && this.now() - cached.at < (this.o.ttlMs ?? 30_000) ? cached : await this.lookupOne(h);
        out[h] = { addresses: e.addresses, ...(e.error ? { error: e.error } : {}) };
      }),
    );
    return out;
  }

  forget(namespace: string): void {
    this.inUse.delete(namespace);
    const used = new Set([...this.inUse.values()].flatMap((s) => [...s]));
    for (const h of this.answers.keys()) if (!used.has(h)) this.answers.delete(h);
  }

  /** Re-resolves every host in use; the namespaces whose hosts' answers changed (to reconcile). */
  async refresh(): Promise<string[]> {
    const hosts = new Set([...this.inUse.values()].flatMap((s) => [...s]));
    const changed = new Set<string>();
    await Promise.all(
      [...hosts].map(async (h) => {
        const before = this.answers.get(h);
        const after = await this.lookupOne(h);
        if (!before || key(before) !== key(after)) changed.add(h);
      }),
    );
    return [...this.inUse.entries()]
      .filter(([, hs]) => [...hs].some((h) => changed.has(h)))
      .map(([ns]) => ns)
      .sort();
  }

  private async lookupOne(host: string): Promise<Entry> {
    const previous = this.answers.get(host);
    let entry: Entry;
    try {
      const ms = this.o.timeoutMs ?? 5000;
      const timedOut = () => Object.assign(new Error(`no answer within ${ms} ms`), { code: 'ETIMEOUT' });
      const addresses = [...new Set(await withTimeout(this.lookup(host), ms, timedOut))].sort();
      entry = { addresses, at: this.now() };
    } catch (err) {
      const error = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      // Keep serving the last good answer; the error is still reported once nothing is left.
      entry =
        previous && previous.addresses.length > 0
          ? { ...previous, at: this.now() }
          : { addresses: [], error, at: this.now() };
    }
    this.answers.set(host, entry);
    return entry;
  }
}

function key(e: Entry): string {
  return `${e.addresses.join(',')}|${e.error ?? ''}`;
}
