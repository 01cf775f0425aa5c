/**
 * The worker's upstream pools, by name. They outlive routers: a config reload
 * builds new executors over the same pools, so keep-alive connections and
 * counters carry over. The supervisor's `upstream-state` messages feed
 * apply(); counters go back in `upstream-stats` once a second when they moved.
 */
import type { FromWorker } from '../protocol.js';
import type { Origin } from './origin.js';
import { UpstreamPool } from './pool.js';
import type { UpstreamCounters, UpstreamState } from './upstream-state.js';

/** How often a worker reports its counters (only when they changed). */
export const STATS_INTERVAL_MS = 1000;

export class UpstreamRegistry {
  private readonly pools = new Map<string, UpstreamPool>();
  private timer: NodeJS.Timeout | undefined;
  private lastSent = '';

  /** @param send the IPC channel to the supervisor; absent outside a cluster worker. */
  constructor(state: UpstreamState | undefined, private readonly send?: (msg: FromWorker) => void) {
    if (state) this.apply(state);
  }

  /** The pool of that name, created empty (answering 503) until the supervisor's state names it. */
  pool(name: string): UpstreamPool {
    let p = this.pools.get(name);
    if (!p) this.pools.set(name, (p = new UpstreamPool(name)));
    return p;
  }

  apply(state: UpstreamState): void {
    const named = new Set<string>();
    for (const ps of state.pools) {
      named.add(ps.name);
      this.pool(ps.name).apply(ps);
    }
    // A pool the config no longer has: empty it (a route still naming it answers 503).
    for (const [name, p] of this.pools) if (!named.has(name) && p.known) p.apply({ name, settings: p.settings, origins: [] });
  }

  /** A connection to `origin` failed while proxying: eject it here and tell the supervisor (once per ejection). */
  passiveFailure(pool: UpstreamPool, origin: Origin, code: string, message: string): void {
    if (pool.eject(origin)) this.send?.({ type: 'upstream-failure', pool: pool.name, origin: origin.url, epoch: origin.ejectedAt, code, message });
  }

  counters(): UpstreamCounters {
    const out: UpstreamCounters = {};
    for (const [name, p] of this.pools) out[name] = p.counters();
    return out;
  }

  /** Report counters every STATS_INTERVAL_MS while they change. The timer never keeps the process alive. */
  startStats(): void {
    if (!this.send || this.timer) return;
    this.timer = setInterval(() => this.flushStats(), STATS_INTERVAL_MS).unref();
  }

  flushStats(): void {
    if (!this.send || this.pools.size === 0) return;
    const counters = this.counters();
    const text = JSON.stringify(counters);
    if (text === this.lastSent) return;
    this.lastSent = text;
    this.send({ type: 'upstream-stats', counters });
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    for (const p of this.pools.values()) p.close();
  }
}
