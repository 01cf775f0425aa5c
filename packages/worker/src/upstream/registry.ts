/**
 * The worker's upstream pools, by name. They outlive routers: a config reload
 * builds new executors over the same pools, so keep-alive connections and
 * counters carry over. The supervisor's `upstream-state` messages feed
 * apply(); counters go to the shared counter file (counter-layout.ts), which
 * the supervisor reads.
 */
import type { FromWorker } from '@flexilib/contract';
import { UpstreamCounterFile } from './counter-file.js';
import { UNASSIGNED_SLOT } from '@flexilib/contract';
import type { Origin } from './origin.js';
import { UpstreamPool } from './pool.js';
import type { UpstreamState } from '@flexilib/contract';

export class UpstreamRegistry {
  private readonly pools = new Map<string, UpstreamPool>();

  /**
   * @param send the IPC channel to the supervisor; absent outside a cluster worker.
   * @param counters the shared counter file (default: counts kept in this process).
   */
  constructor(state: UpstreamState | undefined, private readonly send?: (msg: FromWorker) => void, readonly counters = new UpstreamCounterFile(undefined, 0)) {
    if (state) this.apply(state);
  }

  /** The pool of that name, created empty (answering 503) until the supervisor's state names it. */
  pool(name: string): UpstreamPool {
    let p = this.pools.get(name);
    if (!p) this.pools.set(name, (p = new UpstreamPool(name, this.counters)));
    return p;
  }

  apply(state: UpstreamState): void {
    let maxSlot = 0;
    for (const ps of state.pools) {
      maxSlot = Math.max(maxSlot, ps.slot);
      for (const o of ps.origins) maxSlot = Math.max(maxSlot, o.slot);
    }
    this.counters.ensure(maxSlot);
    const named = new Set<string>();
    for (const ps of state.pools) {
      named.add(ps.name);
      this.pool(ps.name).apply(ps);
    }
    // A pool the config no longer has: empty it (a route still naming it answers 503).
    for (const [name, p] of this.pools) if (!named.has(name) && p.known) p.apply({ name, settings: p.settings, slot: UNASSIGNED_SLOT, origins: [] });
  }

  /** A connection to `origin` failed while proxying: eject it here and tell the supervisor (once per ejection). */
  passiveFailure(pool: UpstreamPool, origin: Origin, code: string, message: string): void {
    if (pool.eject(origin)) this.send?.({ type: 'upstream-failure', pool: pool.name, origin: origin.url, epoch: origin.ejectedAt, code, message });
  }

  close(): void {
    for (const p of this.pools.values()) p.close();
  }
}
