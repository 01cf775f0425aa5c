/**
 * One origin server as a worker uses it: its clients (keep-alive HTTP/1.1
 * connections, reused across requests), its health as the supervisor last
 * reported it, this worker's own ejection after a passive failure, and
 * counters.
 *
 * Two clients: the lean one (origin-client.ts) for http:// origins and
 * requests without a body or with a whole one, the common case; an undici
 * Pool, made on first use, for streamed request bodies and https:// origins.
 */
import type { Pool } from 'undici';
// undici is loaded (undici.ts) by the first request that needs it, not by the
// first origin: it costs a worker 11-16 MiB of RSS.
import { undici } from '../undici.js';
import type { UpstreamSettings } from '@flexilib/contract';
import { AnswerMemo } from './answer-memo.js';
import { OriginClient } from './origin-client.js';

export class Origin {
  /** The lean client; null for an https:// origin. */
  readonly client: OriginClient | null;
  private pool: Pool | undefined;
  /** The supervisor's verdict. */
  healthy = true;
  /** The supervisor's epoch for this origin (see OriginState.epoch). */
  epoch = 0;
  /** Epoch at which this worker ejected the origin after a connection failure; -1 when not ejected. */
  ejectedAt = -1;
  /** Its last answer head as relayed, reused while answers repeat it (lean client only). */
  readonly answers = new AnswerMemo();
  /** Requests dispatched and not yet finished (least-conn balances on it). */
  inflight = 0;
  /** Removed from its pool: no new requests; the dispatcher closes once in-flight ones finish. */
  removed = false;
  /** @param slot this origin's counters in the upstream counter file (the supervisor's number). */
  constructor(readonly url: string, private readonly settings: UpstreamSettings, public slot: number) {
    const u = new URL(url);
    this.client =
      u.protocol === 'http:'
        ? new OriginClient(u.host, u.hostname.replace(/^\[(.*)\]$/, '$1'), Number(u.port || 80), settings.maxConnections, {
            connect: settings.connectTimeoutMs,
            headers: settings.headerTimeoutMs,
            body: settings.idleTimeoutMs,
          })
        : null;
  }

  /** The undici Pool, made when first needed: its own connections, on the same settings. */
  get dispatcher(): Pool {
    const s = this.settings;
    return (this.pool ??= new (undici().Pool)(this.url, {
      connections: s.maxConnections || null,
      connect: { timeout: s.connectTimeoutMs },
      headersTimeout: s.headerTimeoutMs,
      bodyTimeout: s.idleTimeoutMs,
      // Connections idle longer than this are closed; origins' Keep-Alive hints may shorten it.
      keepAliveTimeout: 4_000,
      pipelining: 1,
    }));
  }

  get ejected(): boolean {
    return this.ejectedAt >= 0;
  }

  /** Stop taking requests; requests in flight (and queued) still complete before the connections close. */
  retire(): void {
    this.removed = true;
    this.client?.close();
    this.pool?.close().catch(() => {});
  }
}
