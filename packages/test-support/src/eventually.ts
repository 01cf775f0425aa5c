/** Waiting without fixed sleeps: poll a condition until it holds or a deadline passes. */

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Call `fn` every 25 ms until it returns something other than undefined (its
 * value is returned); a throw counts as "not yet" and is quoted if time runs out.
 *
 * @example
 * const line = await eventually('two access lines', () => (f.lines.length >= 2 ? f.lines : undefined));
 */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(25);
  }
}

/**
 * `eventually` for a yes/no condition: poll `cond` until it returns true
 * (false, like a throw, means "not yet").
 *
 * @example
 * await until('b to get traffic', () => b.hits > 0, 1000);
 */
export async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  await eventually(what, async () => ((await cond()) ? true : undefined), timeoutMs);
}
