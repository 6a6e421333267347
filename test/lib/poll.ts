// Waiting on conditions, for the e2e and data-path suites and the benchmarks (never fixed sleeps
// in place of a condition): one polling loop with a deadline.

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Calls `fn` every `everyMs` until it returns something other than undefined or false, and
 * resolves to that. A throw counts as "not yet"; the last one is named in the timeout error.
 */
export async function eventually<T>(
  what: string,
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 60_000,
  everyMs = 300,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    await sleep(everyMs);
  }
  throw new Error(
    `timed out after ${timeoutMs / 1000}s waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`,
  );
}

/** eventually(), resolving to the milliseconds it took (what the benchmarks report). */
export async function elapsedUntil(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  everyMs = 1000,
): Promise<number> {
  const t0 = Date.now();
  await eventually(what, check, timeoutMs, everyMs);
  return Date.now() - t0;
}
