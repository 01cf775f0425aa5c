/**
 * Choosing an origin for a request, per worker and without coordination:
 *
 *   round-robin  each origin in turn
 *   least-conn   the origin with the fewest requests in flight from this
 *                worker; ties go round-robin, so an idle pool still spreads
 *
 * Candidates are the pool's precomputed list of usable origins; `exclude`
 * holds origins a retried request already failed on.
 */
import type { Balance } from '@flexilib/contract';
import type { Origin } from './origin.js';

export interface Balancer {
  pick(candidates: readonly Origin[], exclude?: readonly Origin[]): Origin | undefined;
}

/** Workers start their rotation at different places, so that few requests still spread. */
const randomStart = () => Math.floor(Math.random() * 1024);

class RoundRobin implements Balancer {
  private next = randomStart();
  pick(candidates: readonly Origin[], exclude?: readonly Origin[]): Origin | undefined {
    const n = candidates.length;
    if (n === 0) return undefined;
    const start = this.next++ % n;
    if (this.next >= 0x40000000) this.next = 0;
    if (exclude === undefined) return candidates[start];
    for (let i = 0; i < n; i++) {
      const o = candidates[(start + i) % n];
      if (!exclude.includes(o)) return o;
    }
    return undefined;
  }
}

class LeastConn implements Balancer {
  private next = randomStart();
  pick(candidates: readonly Origin[], exclude?: readonly Origin[]): Origin | undefined {
    const n = candidates.length;
    if (n === 0) return undefined;
    const start = this.next++ % n;
    if (this.next >= 0x40000000) this.next = 0;
    let best: Origin | undefined;
    for (let i = 0; i < n; i++) {
      const o = candidates[(start + i) % n];
      if (exclude !== undefined && exclude.includes(o)) continue;
      if (best === undefined || o.inflight < best.inflight) best = o;
    }
    return best;
  }
}

export function createBalancer(kind: Balance): Balancer {
  return kind === 'least-conn' ? new LeastConn() : new RoundRobin();
}
