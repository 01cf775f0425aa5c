/**
 * The lean client of one http:// origin: keep-alive connections
 * (origin-connection.ts), one request at a time on each, reused most recent
 * first, at most `max_connections` of them (requests beyond wait in order).
 * It carries requests without a body or with a whole one (the fast lane's);
 * streamed bodies and https:// origins stay undici's (origin.ts).
 *
 * Why not undici for these (a well-kept library, and still the fallback):
 * counted with callgrind (bench --instructions flexilib-upstream, one worker,
 * 8,000 requests of warm-up), a proxied GET cost the worker's main thread
 * 132k instructions through undici and costs 78.5k through this client
 * (the bare node:http server answering by itself: 53k). Switching client
 * took 46k: undici's JavaScript (13.6k), its WebAssembly llhttp (8.1k) and
 * 22k more in V8's builtins (36.6k against 14.3k: the megamorphic property
 * loads of its handler shapes, typed-array views over its parser's memory);
 * the parser consuming the socket's reads in C++ took 6k more. Loading it also cost every worker ~25 MiB of peak RSS (108-111 MiB
 * against 81 MiB now, under wrk -c32, two workers). Here a request is one
 * latin1 write of a head built once, and the answer is parsed by the llhttp
 * node:http itself uses, in C++, which hands the headers over as strings.
 *
 * Round 2 (issue #20) took the whole proxied GET from 71.7k to 50.0k
 * instructions (below the bare node:http server's 51-53k): one write per
 * answer, no re-validation of what llhttp accepted, answer heads from memory
 * (answer-memo.ts, answer-head.ts), fewer parser callbacks. The floor, a raw
 * `net` proxy with no HTTP parsing, costs 26.7k and about 12.5 µs of CPU a
 * request: most of what remains is two sockets' reads and writes (see
 * docs/upstreams.md, "What a proxied request costs").
 *
 * Round 5 reads answers into the worker's shared read buffer and parses
 * their heads in JavaScript (origin-connection.ts, answer-head-parser.ts):
 * 16-32 % less user CPU per proxied request than llhttp consuming the
 * socket, though callgrind counts a few more instructions (docs/upstreams.md).
 *
 * Idle connections close after IDLE_SECONDS (or a second less than the
 * origin's Keep-Alive timeout), swept once a second, so that the origin never
 * closes one under a request; when it does anyway, a GET or HEAD is sent again
 * on a new connection (origin-connection.ts).
 */
import { InactivitySweep, SWEEP_MS } from '../http/inactivity-sweep.js';
import { failure, OriginConnection, type ConnectionOwner, type Exchange } from './origin-connection.js';

export interface OriginTimeouts {
  connect: number;
  headers: number;
  body: number;
}

/**
 * How often a client's connections are looked at for their timeouts: a fifth
 * of the shortest (a timeout fires at most 40 % late), between 10 ms and the
 * fast lane's SWEEP_MS (the defaults, seconds long, are looked at every 250 ms).
 */
export function sweepEvery(timeouts: OriginTimeouts): number {
  let shortest = Infinity;
  for (const ms of [timeouts.connect, timeouts.headers, timeouts.body]) if (ms > 0 && ms < shortest) shortest = ms;
  return Math.max(10, Math.min(SWEEP_MS, Math.floor(shortest / 5)));
}

export class OriginClient implements ConnectionOwner {
  private readonly idle: OriginConnection[] = [];
  /** Every connection open or opening, for the timeout sweep. */
  private readonly conns = new Set<OriginConnection>();
  private readonly timers: InactivitySweep<OriginConnection>;
  private readonly waiting: Exchange[] = [];
  /** Connections open or opening. */
  private count = 0;
  private closing = false;
  /** Seconds since the sweep started: idle connections are timed on it, without reading a clock per request. */
  private clock = 0;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    /** The Host header a request without one gets (host:port, as in the origin's URL). */
    readonly hostHeader: string,
    private readonly host: string,
    private readonly port: number,
    /** 0: no limit. */
    private readonly max: number,
    readonly timeouts: OriginTimeouts,
  ) {
    this.timers = new InactivitySweep(() => this.conns, (conn) => conn.timedOut(), sweepEvery(timeouts));
  }

  /** Send a request on an idle connection, a new one, or (at the limit) the first that frees. */
  dispatch(ex: Exchange): void {
    if (this.closing) {
      ex.onError(failure('UND_ERR_CLOSED', 'The client is closed'));
      return;
    }
    const conn = this.idle.pop();
    if (conn !== undefined) conn.send(ex);
    else if (this.max === 0 || this.count < this.max) this.open(ex);
    else this.waiting.push(ex);
  }

  retry(ex: Exchange): void {
    if (this.max === 0 || this.count < this.max) this.open(ex);
    else this.waiting.unshift(ex);
  }

  release(conn: OriginConnection): void {
    const next = this.waiting.shift();
    if (next !== undefined) conn.send(next);
    else if (this.closing) conn.destroy();
    else {
      conn.idleSince = this.clock;
      this.idle.push(conn);
    }
  }

  closed(conn: OriginConnection): void {
    this.count--;
    this.conns.delete(conn);
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    // A place freed: the next waiting request gets a connection of its own.
    const next = this.waiting.shift();
    if (next !== undefined) this.open(next);
    else if (this.count === 0 && this.sweeper !== undefined) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
      this.timers.stop();
    }
  }

  /** No new requests; the ones in flight and waiting finish first, then every connection closes. */
  close(): void {
    this.closing = true;
    for (const conn of this.idle.splice(0)) conn.destroy();
  }

  private open(first: Exchange): void {
    this.count++;
    this.conns.add(new OriginConnection(this, this.host, this.port, first));
    this.sweeper ??= setInterval(() => this.sweep(), 1000).unref();
    this.timers.start();
  }

  private sweep(): void {
    const now = ++this.clock;
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const conn = this.idle[i];
      if (now - conn.idleSince >= conn.idleSeconds) {
        this.idle.splice(i, 1);
        conn.destroy();
      }
    }
  }
}
