/**
 * One origin server as a worker uses it: an undici Pool (keep-alive HTTP/1.1
 * connections, reused across requests), its health as the supervisor last
 * reported it, this worker's own ejection after a passive failure, and
 * counters.
 */
import type { Pool } from 'undici';
import { undici } from '../undici.js';
import type { UpstreamSettings } from '@flexilib/contract';

export class Origin {
  readonly dispatcher: Pool;
  /** The supervisor's verdict. */
  healthy = true;
  /** The supervisor's epoch for this origin (see OriginState.epoch). */
  epoch = 0;
  /** Epoch at which this worker ejected the origin after a connection failure; -1 when not ejected. */
  ejectedAt = -1;
  /** Requests dispatched and not yet finished (least-conn balances on it). */
  inflight = 0;
  /** Removed from its pool: no new requests; the dispatcher closes once in-flight ones finish. */
  removed = false;
  /** @param slot this origin's counters in the upstream counter file (the supervisor's number). */
  constructor(readonly url: string, settings: UpstreamSettings, public slot: number) {
    this.dispatcher = new (undici().Pool)(url, {
      connections: settings.maxConnections || null,
      connect: { timeout: settings.connectTimeoutMs },
      headersTimeout: settings.headerTimeoutMs,
      bodyTimeout: settings.idleTimeoutMs,
      // Connections idle longer than this are closed; origins' Keep-Alive hints may shorten it.
      keepAliveTimeout: 4_000,
      pipelining: 1,
    });
  }

  get ejected(): boolean {
    return this.ejectedAt >= 0;
  }

  /** Stop taking requests; requests in flight (and queued) still complete before the connections close. */
  retire(): void {
    this.removed = true;
    this.dispatcher.close().catch(() => {});
  }
}
