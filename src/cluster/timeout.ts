// Bounding a wait: one definition of the timer race (the start-up check, DNS lookups, a scoped
// kind's turn at start-up), whose timer never outlives the promise it bounds.

/** `p`, or a rejection with `error()` if it has not settled within `ms`. */
export function withTimeout<T>(
  p: Promise<T>,
  ms: number,
  error: () => Error = () => new Error(`no answer within ${ms} ms`),
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(error()), ms);
    // The bounded work keeps the process alive if anything does; a pending timeout must not.
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves once `p` settles or `ms` have passed, whichever is first; never rejects. */
export async function waitAtMost(p: Promise<unknown>, ms: number): Promise<void> {
  await withTimeout(p, ms).catch(() => undefined);
}
