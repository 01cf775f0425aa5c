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
import type { UpstreamCounterFile } from './counter-file.js';
import { UNASSIGNED_SLOT } from '@flexilib/contract';
import type { PoolState } from '@flexilib/contract';

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
  /** The client counters' slot in the counter file, once the supervisor's state names the pool. */
  private slot = UNASSIGNED_SLOT;

  constructor(readonly name: string, private readonly counters: UpstreamCounterFile) {}

  /** A client request answered with an origin's response. */
  clientOk(): void {
    this.counters.ok(this.slot);
  }

  /** A client request answered with the proxy's own error, or cut. */
  clientFailed(): void {
    this.counters.fail(this.slot);
  }

  originOk(o: Origin): void {
    this.counters.ok(o.slot);
  }

  originFailed(o: Origin): void {
    this.counters.fail(o.slot);
  }

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
    this.slot = state.slot;
    this.known = true;
    const next = new Map<string, Origin>();
    for (const s of state.origins) {
      let o = rebuild ? undefined : this.origins.get(s.url);
      if (!o) o = new Origin(s.url, state.settings, s.slot);
      o.slot = s.slot;
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

  close(): void {
    for (const o of this.origins.values()) o.retire();
    this.origins.clear();
    this.recompute();
  }
}
