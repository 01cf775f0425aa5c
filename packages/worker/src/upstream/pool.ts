/**
 * A worker's copy of one upstream pool: its origins (each with its undici
 * connection pool), the balancer, and what is usable right now.
 *
 * Usable = healthy (the supervisor's verdict) and not ejected by this worker.
 * If every healthy origin is ejected, they are tried anyway rather than
 * failing: an ejection is a local hint, the supervisor's verdict is the rule.
 * Only a pool with no healthy origin at all answers 503.
 */
import { createBalancer, type Balancer } from './balancer.js';
import { Origin } from './origin.js';
import { DEFAULT_UPSTREAM_SETTINGS, type UpstreamSettings } from '@flexilib/contract';
import type { CountPair, PoolCounters, PoolState } from '@flexilib/contract';

/** Settings baked into the connection pools; a change to one of them needs new ones. */
function dispatcherKey(s: UpstreamSettings): string {
  return `${s.connectTimeoutMs}/${s.headerTimeoutMs}/${s.idleTimeoutMs}/${s.maxConnections}`;
}

export class UpstreamPool {
  settings: UpstreamSettings = DEFAULT_UPSTREAM_SETTINGS;
  /** False until the supervisor's state names this pool (a route may be built before it arrives). */
  known = false;
  private origins = new Map<string, Origin>();
  private usable: Origin[] = [];
  private fallback: Origin[] = [];
  private balancer: Balancer = createBalancer('round-robin');
  readonly client: CountPair = { success: 0, failed: 0 };
  /** Per origin URL, cumulative across removals and re-additions. */
  private readonly counts = new Map<string, CountPair>();

  constructor(readonly name: string) {}

  /** An origin for a new request, or undefined when the pool has no healthy origin left to try. */
  pick(exclude?: readonly Origin[]): Origin | undefined {
    if (this.usable.length > 0) {
      const o = this.balancer.pick(this.usable, exclude);
      if (o !== undefined) return o;
    }
    return this.fallback.length > 0 ? this.balancer.pick(this.fallback, exclude) : undefined;
  }

  /** Origins the supervisor lists, and how many of them are healthy (for error messages). */
  census(): { total: number; healthy: number } {
    let healthy = 0;
    for (const o of this.origins.values()) if (o.healthy) healthy++;
    return { total: this.origins.size, healthy };
  }

  /** This worker saw a connection failure: send the origin no new requests until the supervisor clears it. */
  eject(origin: Origin): boolean {
    if (origin.ejected || origin.removed) return false;
    origin.ejectedAt = origin.epoch;
    this.recompute();
    return true;
  }

  /** Take the supervisor's view of this pool. Removed origins finish their requests in flight. */
  apply(state: PoolState): void {
    const rebuild = this.known && dispatcherKey(state.settings) !== dispatcherKey(this.settings);
    if (!this.known || state.settings.balance !== this.settings.balance) this.balancer = createBalancer(state.settings.balance);
    this.settings = state.settings;
    this.known = true;
    const next = new Map<string, Origin>();
    for (const s of state.origins) {
      let o = rebuild ? undefined : this.origins.get(s.url);
      if (!o) {
        let counts = this.counts.get(s.url);
        if (!counts) this.counts.set(s.url, (counts = { success: 0, failed: 0 }));
        o = new Origin(s.url, state.settings, counts);
      }
      o.healthy = s.healthy;
      if (s.epoch > o.ejectedAt) o.ejectedAt = -1;
      o.epoch = s.epoch;
      next.set(s.url, o);
    }
    for (const [url, o] of this.origins) if (next.get(url) !== o) o.retire();
    this.origins = next;
    this.recompute();
  }

  private recompute(): void {
    const usable: Origin[] = [];
    const fallback: Origin[] = [];
    for (const o of this.origins.values()) {
      if (!o.healthy) continue;
      (o.ejected ? fallback : usable).push(o);
    }
    this.usable = usable;
    this.fallback = fallback;
  }

  counters(): PoolCounters {
    const origins: Record<string, CountPair> = {};
    for (const [url, c] of this.counts) origins[url] = { success: c.success, failed: c.failed };
    return { client: { success: this.client.success, failed: this.client.failed }, origins };
  }

  close(): void {
    for (const o of this.origins.values()) o.retire();
    this.origins.clear();
    this.recompute();
  }
}
