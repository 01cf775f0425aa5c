/**
 * Upstream counters summed over workers. Each worker reports its cumulative
 * counters (at most once a second, when they moved); a worker that exits
 * leaves its last report to the retired sum, so totals never go down.
 */
import type { CountPair, UpstreamCounters } from '@flexilib/contract';

function addPair(into: CountPair, c: CountPair): void {
  into.success += c.success;
  into.failed += c.failed;
}

function addCounters(into: UpstreamCounters, c: UpstreamCounters): void {
  for (const [pool, pc] of Object.entries(c)) {
    const t = (into[pool] ??= { client: { success: 0, failed: 0 }, origins: {} });
    addPair(t.client, pc.client);
    for (const [url, oc] of Object.entries(pc.origins)) addPair((t.origins[url] ??= { success: 0, failed: 0 }), oc);
  }
}

export class StatsBook {
  private readonly live = new Map<number, UpstreamCounters>();
  private readonly retired: UpstreamCounters = {};

  update(workerId: number, counters: UpstreamCounters): void {
    this.live.set(workerId, counters);
  }

  workerExited(workerId: number): void {
    const last = this.live.get(workerId);
    if (last) addCounters(this.retired, last);
    this.live.delete(workerId);
  }

  totals(): UpstreamCounters {
    const out: UpstreamCounters = {};
    addCounters(out, this.retired);
    for (const c of this.live.values()) addCounters(out, c);
    return out;
  }
}
