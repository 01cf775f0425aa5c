/**
 * Every pool's upstream counters, summed over workers live and dead, for
 * /stats and the metrics: the pool's clients, each origin now in the pool,
 * and the origins removed since (one sum). Read from the workers' counter
 * files (counter-book.ts) through the slot numbers of the registry (slots.ts).
 */
import type { Logger } from 'pino';
import { slotAt, type CountPair, type UpstreamCounters } from '@flexilib/contract';
import { UpstreamCounterBook } from './counter-book.js';
import type { PoolRegistry } from './pool-registry.js';

export class UpstreamStats {
  private readonly book: UpstreamCounterBook;

  constructor(private readonly registry: PoolRegistry, runDir: string | undefined, log: Logger) {
    this.book = new UpstreamCounterBook(runDir, log);
  }

  totals(): UpstreamCounters {
    const sums = this.book.sums();
    const pair = (slot: number): CountPair => {
      const at = slotAt(slot);
      return { success: sums[at] ?? 0, failed: sums[at + 1] ?? 0 };
    };
    const out: UpstreamCounters = {};
    for (const p of this.registry.all()) {
      const origins: Record<string, CountPair> = {};
      for (const o of p.origins.values()) origins[o.url] = pair(o.slot);
      out[p.name] = { client: pair(p.slot), origins, removed: { success: 0, failed: 0 } };
    }
    for (const [slot, owner] of this.registry.slots.owners) {
      const pc = owner.removed ? out[owner.pool] : undefined;
      if (!pc) continue;
      const c = pair(slot);
      pc.removed.success += c.success;
      pc.removed.failed += c.failed;
    }
    return out;
  }

  /** A worker exited: its files are final. */
  workerExited(workerId: number): void {
    this.book.workerExited(workerId);
  }

  close(): void {
    this.book.close();
  }
}
