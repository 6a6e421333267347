// Decides whether a server-side apply would change anything, so a converged resync makes no writes.
// Live objects carry server defaults (protocol: TCP, clusterIPs, ...), so the test is "desired is a
// subset of live", plus a check that we do not still own fields we stopped wanting (SSA would
// remove those, a subset test alone would never notice).

/** Recursive subset: every field set in `desired` is present and equal in `live`. */
export function isSubset(desired: unknown, live: unknown, path: readonly string[] = []): boolean {
  if (desired === undefined) return true;
  if (desired === null) return live === undefined || live === null;
  if (Array.isArray(desired)) {
    // The API server omits empty lists.
    if (desired.length === 0) return live === undefined || live === null || (Array.isArray(live) && live.length === 0);
    if (!Array.isArray(live) || live.length !== desired.length) return false;
    return desired.every((d, i) => isSubset(d, live[i], path));
  }
  if (typeof desired === 'object') {
    const entries = Object.entries(desired as Record<string, unknown>);
    // The API server omits empty maps (annotations: {}), so they match absence.
    if (live === undefined || live === null) return entries.every(([, v]) => isEmptyish(v));
    if (typeof live !== 'object' || Array.isArray(live)) return false;
    const l = live as Record<string, unknown>;
    return entries.every(([k, v]) => isSubset(v, l[k], [...path, k]));
  }
  if (desired === live) return true;
  // Quantities are canonicalized by the API server ("0.1" -> "100m"); compare by value there.
  if (path.includes('resources') && (typeof desired === 'string' || typeof desired === 'number')) {
    const a = parseQuantity(desired);
    const b = typeof live === 'string' || typeof live === 'number' ? parseQuantity(live) : undefined;
    return a !== undefined && b !== undefined && Math.abs(a - b) <= Math.abs(a) * 1e-12;
  }
  return false;
}

function isEmptyish(v: unknown): boolean {
  if (v === undefined || v === null) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.values(v as Record<string, unknown>).every(isEmptyish);
  return false;
}

const SUFFIX: Record<string, number> = {
  '': 1,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** A Kubernetes resource.Quantity as a number, or undefined if it is not one. */
export function parseQuantity(q: string | number): number | undefined {
  if (typeof q === 'number') return q;
  const m = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$/.exec(q.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  if (m[2]) return n * 10 ** Number(m[2].slice(1));
  return n * (SUFFIX[m[3] ?? ''] ?? 1);
}

interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  fieldsV1?: unknown;
}

/**
 * True when `manager`'s applied field set (metadata.managedFields) names a map key that `desired`
 * no longer has: applying would remove it. List items (k:/v:/i: keys) are left to isSubset's
 * length check.
 */
export function ownsFieldsBeyond(desired: unknown, live: unknown, manager: string): boolean {
  const mf = (live as { metadata?: { managedFields?: ManagedFieldsEntry[] } } | undefined)?.metadata?.managedFields;
  if (!mf) return false;
  for (const e of mf) {
    if (e.manager === manager && e.operation === 'Apply' && extraOwned(e.fieldsV1, desired)) return true;
  }
  return false;
}

function extraOwned(fields: unknown, desired: unknown): boolean {
  if (!fields || typeof fields !== 'object') return false;
  if (!desired || typeof desired !== 'object' || Array.isArray(desired)) return false;
  const d = desired as Record<string, unknown>;
  for (const [key, sub] of Object.entries(fields as Record<string, unknown>)) {
    if (!key.startsWith('f:')) continue;
    const name = key.slice(2);
    // apiVersion/kind are implied by every apply.
    if (name === 'apiVersion' || name === 'kind') continue;
    if (!(name in d) || d[name] === undefined) return true;
    if (extraOwned(sub, d[name])) return true;
  }
  return false;
}

/** Whether applying `desired` could change `live` (or create it). */
export function needsApply(desired: unknown, live: unknown, manager: string): boolean {
  if (live === undefined) return true;
  return !isSubset(desired, live) || ownsFieldsBeyond(desired, live, manager);
}
