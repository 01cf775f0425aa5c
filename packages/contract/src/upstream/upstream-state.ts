/**
 * What crosses the supervisor<->worker boundary about upstream pools (see
 * protocol.ts). The supervisor owns membership and health; every worker holds
 * a copy and balances over it. Only changes cross, never per-request data.
 */
import type { UpstreamSettings } from './upstream-config.js';

/** One origin of a pool as the supervisor sees it. */
export interface OriginState {
  /** Canonical origin, scheme://host:port (parseOrigin). */
  url: string;
  /** False once `fall` consecutive failures marked it down; true again after `rise` successful checks. */
  healthy: boolean;
  /**
   * Bumped when a health check succeeds after a worker reported a passive
   * failure, or when the origin comes back up. A worker that ejected the origin
   * at an older epoch sends it traffic again.
   */
  epoch: number;
  /** This origin's counters in the workers' upstream counter files (counter-layout.ts). */
  slot: number;
}

export interface PoolState {
  name: string;
  settings: UpstreamSettings;
  /** The pool's client counters in the workers' upstream counter files. */
  slot: number;
  origins: OriginState[];
}

/** Every pool, membership and health: the whole picture, sent on each change (it is small). */
export interface UpstreamState {
  pools: PoolState[];
}

export interface CountPair {
  success: number;
  failed: number;
}

/**
 * A pool's counters summed over workers (the supervisor's view of the counter
 * files). `client`: requests answered with an origin's response (success) or
 * with the proxy's own 5xx or a cut connection (failed). `origins`: attempts
 * per origin now in the pool that completed a response (success) or failed:
 * connection error, timeout, or the connection lost mid-response.
 * `removed`: the attempts of origins since removed from the pool.
 */
export interface PoolCounters {
  client: CountPair;
  origins: Record<string, CountPair>;
  removed: CountPair;
}

export type UpstreamCounters = Record<string, PoolCounters>;

export const EMPTY_UPSTREAM_STATE: UpstreamState = { pools: [] };
