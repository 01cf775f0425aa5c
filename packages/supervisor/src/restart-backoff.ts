/**
 * How soon a dead worker is replaced. The first death is replaced at once;
 * deaths that follow each other (a crash loop: every request to a bad route
 * kills a worker) wait twice as long each time, up to a cap, so the loop cannot
 * spin the CPU on forks. A quiet spell without deaths resets the streak.
 *
 *   streak:  1    2      3      4      5   ...   n
 *   delay:   0  100ms  200ms  400ms  800ms ... min(5 s, 100ms * 2^(n-2))
 */
export interface BackoffOptions {
  /** Delay of the second death in a streak. */
  baseMs: number;
  capMs: number;
  /** Time without a death after which the streak starts over. */
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 100, capMs: 5000, resetAfterMs: 10_000 };

export class RestartBackoff {
  private streak = 0;
  private lastDeath = -Infinity;

  constructor(private readonly opts: BackoffOptions = DEFAULT_BACKOFF) {}

  /** Record a death at `now` (ms) and return the delay before its replacement. */
  next(now: number): number {
    if (now - this.lastDeath > this.opts.resetAfterMs) this.streak = 0;
    this.lastDeath = now;
    this.streak++;
    if (this.streak === 1) return 0;
    return Math.min(this.opts.capMs, this.opts.baseMs * 2 ** (this.streak - 2));
  }
}
