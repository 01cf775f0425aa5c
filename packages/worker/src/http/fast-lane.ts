/**
 * The fast lane: plain requests to native, upstream and WASM routes are read
 * off the socket and answered by the worker itself, without node:http's
 * per-request objects; everything else is node:http's, which then keeps the
 * connection.
 *
 *   accept ─> fast lane ─ a whole, strict HTTP/1.1 request, no body or a
 *                │        Content-Length one within the route's limit and
 *                │        LANE_BODY_MAX (read whole first, however it is split:
 *                │        a request that takes several reads is gathered into
 *                │        one buffer of its size)
 *                │        ├─ inline native route, library loaded: direct() ─> bytes out
 *                │        │  (a large plugin answer straight from native memory)
 *                │        └─ upstream, threaded native or WASM route: laneHandle()
 *                │           with a LaneResponse, answered now or later (a thread,
 *                │           an instance, an origin); the connection reads on but
 *                │           serves nothing more until that answer ends. The
 *                │           request object is the lane's, reused: an executor
 *                │           that keeps a request past the call copies it
 *                │           (held-request.ts, when its call has to queue).
 *                │
 *                └─ anything else: a partial or oversized head, a chunked or
 *                   larger body, HEAD, Connection: close, Proxy-Connection,
 *                   Upgrade, Expect, no Host or two, an unknown method,
 *                   another kind of route, an inline library not loaded yet
 *                   ─> node:http's own connection listener, given the bytes
 *                      not yet served; the connection is node's from then on
 *
 * Reads: every lane connection reads into one buffer shared by all of them
 * (socket-reads.ts: no 'data' events, no allocation per read), so nothing
 * keeps a view of a read past serve(): bytes kept for later (a request's
 * reads so far, bytes after a request whose answer is awaited, the bytes
 * handed to node:http) are copied where they are kept, and executors that
 * answer later copy what they keep of the request (held-request.ts, the
 * upstream's body). A whole request in one read, answered at once, copies
 * nothing. Where node lacks what that relies on, the lane reads 'data'.
 *
 * Why: node:http's request and response objects (two streams, their events
 * and ticks, header validation per write) cost about 50k instructions a
 * request, which no work of flexilib's own could win back: a native route
 * stayed near 0.75× a bare node:http server answering the same bytes. A
 * threaded route on the lane costs its event loop about 51k instructions a
 * request, plugin call, metrics and access log included (callgrind), against
 * 53k for a bare node:http server's whole request.
 *
 * What keeps it safe: the lane accepts only what it recognises whole, a subset
 * of RFC 9112 (token header names, field values without CTLs, CRLF line ends,
 * no obs-fold, origin-form targets, one Content-Length of digits and no
 * Transfer-Encoding). A request it does not accept is not refused here but
 * handed to node:http (llhttp), so every error answer, limit and timeout for
 * odd requests stays node's. The lane applies node's headers, keep-alive and
 * request timeouts to its own connections, kept by one sweep per worker
 * (inactivity-sweep.ts). Answers follow node:http's rules and header
 * order (tested byte for byte against node's path, --no-fast-lane), with
 * node's own validators. While a body arrives the lane keeps node's request
 * timeout, and a client that leaves mid-body gets what node:http gives it (a
 * 400 after a FIN, a 408 after the timeout) and is logged as node logs it (499).
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { DirectAnswer, Executor, HeldBody, RequestStats } from '../executor.js';
import { finishedRequest, takeObserved, type RequestRecorder, type ServerState } from './server-state.js';
import { AnswerHeadWriter, type BuiltHead } from './answer-head.js';
import { LaneResponse, type LaneOwner } from './lane-response.js';
import { RequestHeadParser, type LaneRequest } from './lane-request.js';
import { HEAD_END } from './field-bytes.js';
import { checkFinalStatus } from './final-status.js';
import { errorAnswer, sendError } from './respond.js';
import { releaseHeld } from './response-rules.js';
import { SharedReads } from './socket-reads.js';
import { InactivitySweep, setLimit, type Timed } from './inactivity-sweep.js';

const EMPTY: Buffer = Buffer.alloc(0);
/** Bytes a client may send ahead while an answer is awaited before the lane stops reading it. */
const PENDING_MAX = 64 * 1024;
/**
 * The largest body the lane buffers (a connection holds at most this much
 * while its body arrives); a larger one is node:http's to stream, where an
 * executor reads it as it comes.
 */
export const LANE_BODY_MAX = 256 * 1024;

export interface FastLaneOptions {
  maxHeaderBytes: number;
  keepAliveTimeoutMs: number;
  headersTimeoutMs: number;
  /** node:http's limit on a whole request, body included (0: none). */
  requestTimeoutMs: number;
  /** --max-body: the body limit of routes without their own. */
  maxBodyBytes: number;
}

/** node:http's error for a request past its time (its server answers 408). */
const REQUEST_TIMEOUT = () => Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' });

/** node:http (20.x) keeps an idle connection this much longer than the Keep-Alive timeout it announces. */
const KEEP_ALIVE_GRACE_MS = 1000;

/** A connection the lane serves; its timeouts are the lane's sweep's (inactivity-sweep.ts), not a socket timer. */
class LaneConnection implements Timed {
  limit = 0;
  since = -1;
  ticks = 0;
  seen = 0;
  /** The asynchronous answer in progress; nothing more is read until it ends. */
  res: LaneResponse | null = null;
  /** Bytes read while an answer was in progress, served after it. */
  pending: Buffer | null = null;
  /** The answer is being started (its executor call has not returned yet). */
  starting = false;
  /** Waiting for 'drain' with reading paused. */
  draining = false;
  /** No request answered yet: the idle timeout is node's headers timeout, not the keep-alive one. */
  fresh = true;
  /**
   * A request whose body is still arriving: one buffer of its whole size
   * (head and body), filled as its reads come (they are the shared buffer's).
   */
  partial: Buffer | null = null;
  /** Bytes of the request read so far, and its whole size. */
  filled = 0;
  size = 0;
  /** When the partial request's head was read (performance.now()): node's request timeout counts from it. */
  partialSince = 0;
  constructor(
    readonly socket: Socket,
    /** Detach the lane's listeners (hand-off to node:http). */
    readonly detach: () => void,
    /** Its inactivity limit ran out (the sweep's call). */
    readonly timedOut: () => void,
  ) {}
}

export class FastLane implements LaneOwner {
  private readonly conns = new Map<Socket, LaneConnection>();
  private readonly parser = new RequestHeadParser();
  /** The parser's request object: the one every lane request is read into. */
  private readonly req: LaneRequest = this.parser.req;
  private readonly heads: AnswerHeadWriter;
  private readonly stats: RequestStats = { arenaBytes: 0, alloc: 0, bytes: -1 };
  /** Refilled for each answer recorded (the recorder reads it synchronously). */
  private readonly done = finishedRequest(true);
  private readonly observed: boolean;
  private stopping = false;
  /** Reads into one shared buffer (null: this node lacks it; 'data' events). */
  private readonly reads = SharedReads.shared();
  /** How the first connection was read is logged once (debug; the tests look for it). */
  private readsLogged = false;
  /** Every lane connection's timeouts: node's headers, keep-alive and request timeouts. */
  private readonly sweep = new InactivitySweep<LaneConnection>(
    () => this.conns.values(),
    (conn) => conn.timedOut(),
  );
  private constructor(
    private readonly server: Server,
    private readonly nodeListener: (socket: Socket) => void,
    private readonly opts: FastLaneOptions,
    private readonly state: ServerState,
    private readonly record: RequestRecorder,
    observed: boolean,
    private readonly log: Logger,
  ) {
    this.heads = new AnswerHeadWriter(opts.keepAliveTimeoutMs);
    this.observed = observed;
  }

  /**
   * Put the lane in front of node:http's connection listener. null (and a
   * warning: the server runs as with --no-fast-lane) if node:http's server
   * is not as expected, rather than a worker that cannot start.
   */
  static install(server: Server, opts: FastLaneOptions, state: ServerState, record: RequestRecorder, observed: boolean, log: Logger): FastLane | null {
    const listeners = server.listeners('connection') as Array<(socket: Socket) => void>;
    if (listeners.length !== 1) {
      log.warn({ listeners: listeners.length }, "fast lane off: node:http's server does not have the one connection listener it expects");
      return null;
    }
    const lane = new FastLane(server, listeners[0], opts, state, record, observed, log);
    server.removeListener('connection', listeners[0]);
    server.on('connection', (socket: Socket) => lane.accept(socket));
    return lane;
  }

  /** Graceful stop: idle connections close now; every answer from now on closes its connection. */
  stop(): void {
    this.stopping = true;
    // A body still arriving is a request in progress: answered (and closed) once whole.
    for (const c of this.conns.values()) if (c.res === null && c.partial === null) c.socket.destroySoon();
  }

  private accept(socket: Socket): void {
    if (this.stopping) {
      this.nodeListener.call(this.server, socket);
      return;
    }
    const reads = this.reads;
    const onData = (chunk: Buffer) => this.serve(conn, chunk);
    // A FIN while an answer is awaited is the client leaving, as node:http and
    // nginx take it: the origin request is aborted and logged as 499. Mid-body,
    // node:http's parser refuses the cut request (400).
    const onEnd = () => {
      if (conn.partial !== null) {
        this.bodyAbandoned(conn, Object.assign(new Error('Parse Error: Invalid EOF state'), { code: 'HPE_INVALID_EOF_STATE' }));
        return;
      }
      socket.end();
      conn.res?.clientGone();
    };
    // Idle: close it, as node:http would. Not while an answer is awaited, nor
    // with output pending (a client slow to read, which node:http does not
    // time out either). No request yet: node's 408, by the server's own handler.
    const onTimeout = () => {
      // A body stalled for the whole request timeout: node's 408.
      if (conn.partial !== null) {
        this.bodyAbandoned(conn, REQUEST_TIMEOUT());
        return;
      }
      if (conn.res !== null || socket.writableLength > 0) return;
      if (conn.fresh) {
        this.server.emit('clientError', REQUEST_TIMEOUT(), socket);
        socket.destroySoon();
      } else socket.destroy();
    };
    const onError = () => socket.destroy();
    const onClose = () => {
      this.conns.delete(socket);
      if (conn.partial !== null) this.bodyAbandoned(conn, null);
      conn.res?.clientGone();
    };
    const conn = new LaneConnection(
      socket,
      () => {
        socket.removeListener('data', onData);
        socket.removeListener('end', onEnd);
        socket.removeListener('error', onError);
        socket.removeListener('close', onClose);
        // Out of the lane's map, so out of its timeout sweep too.
        this.conns.delete(socket);
      },
      onTimeout,
    );
    const shared = reads !== null && reads.attach(socket, (n) => this.serve(conn, reads.view(n)));
    if (!shared) socket.on('data', onData);
    if (!this.readsLogged) {
      this.readsLogged = true;
      this.log.debug({ reads: shared ? 'shared-buffer' : 'data-events' }, 'fast lane: how connections are read');
    }
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
    // Until its first request a connection has node's headers timeout; then
    // (answered()) the keep-alive one, between requests (the lane answers
    // only whole requests, so a lane connection is between requests unless a
    // body is arriving: node's request timeout then, see awaitBody()).
    setLimit(conn, this.opts.headersTimeoutMs);
    this.conns.set(socket, conn);
    this.sweep.start();
  }

  /** Give the connection to node:http, with the bytes not served yet: chunk from `from`, then `rest`. */
  private handOff(conn: LaneConnection, chunk: Buffer, from: number, rest: Buffer): void {
    const socket = conn.socket;
    conn.detach();
    // Its reads become ordinary stream data (private copies) should node:http
    // ever read it through the stream rather than its parser.
    this.reads?.toStream(socket);
    // Paused by the lane (backpressure): node:http reads it from now on.
    if (socket.isPaused()) socket.resume();
    this.nodeListener.call(this.server, socket);
    // node:http now reads the socket itself; the bytes already read are fed to
    // it first, in one piece (its parser may pause the socket after a chunk,
    // and must not be given a second one then), a copy of its own.
    const left = from === 0 ? chunk : chunk.subarray(from);
    socket.emit('data', Buffer.concat([left, rest]));
  }

  private serve(conn: LaneConnection, chunk: Buffer): void {
    const socket = conn.socket;
    // Activity, for the timeout sweep: every read, and the end of an answer
    // (settled() serves on), so a connection idles from its last answer.
    conn.ticks++;
    if (conn.res !== null) {
      // An answer is in progress: keep the bytes (a copy) for after it, reading
      // on (to notice a client that leaves) unless it sends too much meanwhile.
      conn.pending = conn.pending === null ? Buffer.from(chunk) : Buffer.concat([conn.pending, chunk]);
      if (conn.pending.length > PENDING_MAX) socket.pause();
      return;
    }
    // Ended (graceful stop, Connection: close): nothing more is answered on it.
    if (!socket.writable) return;
    /** Bytes after a request whose body just completed: served after it. */
    let rest: Buffer = EMPTY;
    if (conn.partial !== null) {
      const n = Math.min(conn.size - conn.filled, chunk.length);
      chunk.copy(conn.partial, conn.filled, 0, n);
      conn.filled += n;
      if (conn.filled < conn.size) {
        // A client trickling its body still has node:http's deadline for the whole request.
        const limit = this.opts.requestTimeoutMs;
        if (limit > 0 && performance.now() - conn.partialSince > limit) this.bodyAbandoned(conn, REQUEST_TIMEOUT());
        return;
      }
      if (n < chunk.length) rest = chunk.subarray(n);
      // The request, whole: parsed (and routed) again from its first byte.
      chunk = conn.partial;
      conn.partial = null;
      this.idle(conn);
    }
    const req = this.req;
    let pos = 0;
    let corked = false;
    while (pos < chunk.length) {
      const end = chunk.indexOf(HEAD_END, pos);
      if (end < 0 || end + 4 - pos > this.opts.maxHeaderBytes || !this.parser.parse(chunk, pos, end, socket)) break;
      const ex = this.state.router.match(req);
      if (ex === undefined || (ex.direct === undefined && ex.laneHandle === undefined)) break;
      const length = this.parser.bodyLength;
      const next = end + 4 + length;
      if (length > 0) {
        // Over the route's limit (node:http's 413) or the lane's: node's to read.
        if (length > LANE_BODY_MAX || length > (ex.route.options.maxBodyBytes ?? this.opts.maxBodyBytes)) break;
        if (next > chunk.length) {
          this.awaitBody(conn, chunk, pos, next - pos);
          pos = chunk.length;
          break;
        }
        req.body = chunk.subarray(end + 4, next);
      }
      if (ex.direct !== undefined) {
        if (pos > 0 && !corked) {
          socket.cork();
          corked = true;
        }
        const answered = this.answer(socket, ex);
        req.body = undefined;
        if (!answered) break;
        if (conn.fresh) this.answered(conn);
        pos = next;
      } else {
        pos = next;
        if (corked) {
          socket.uncork();
          corked = false;
        }
        this.start(conn, ex);
        req.body = undefined;
        if (conn.res !== null) {
          // Answered later: what follows (a copy) waits for it (settled() goes
          // on), reading on (paused only if the client sent too much ahead).
          if (pos < chunk.length) conn.pending = Buffer.concat([chunk.subarray(pos), rest]);
          else if (rest.length > 0) conn.pending = Buffer.from(rest);
          if (!conn.draining && socket.isPaused() && (conn.pending === null || conn.pending.length <= PENDING_MAX)) socket.resume();
          return;
        }
      }
      if (socket.destroyed || !socket.writable) {
        pos = chunk.length;
        rest = EMPTY;
        break;
      }
    }
    if (corked) socket.uncork();
    if (pos < chunk.length) {
      this.handOff(conn, chunk, pos, rest);
      return;
    }
    // What followed a body that completed (pipelined requests): served as any chunk is.
    if (rest.length > 0) {
      this.serve(conn, rest);
      return;
    }
    if (socket.writableNeedDrain) {
      // A client that pipelines without reading: stop reading until it catches up.
      socket.pause();
      if (!conn.draining) {
        conn.draining = true;
        socket.once('drain', () => {
          conn.draining = false;
          conn.ticks++;
          if (conn.res === null) socket.resume();
        });
      }
    } else if (socket.isPaused()) socket.resume();
  }

  /**
   * A request the lane takes whose body goes on past this chunk: gathered,
   * head and body, into one buffer of its size as its reads come (serve()).
   * Until it is whole, node:http's request timeout applies, not the idle one.
   */
  private awaitBody(conn: LaneConnection, chunk: Buffer, from: number, size: number): void {
    const partial = Buffer.allocUnsafe(size);
    chunk.copy(partial, 0, from);
    conn.partial = partial;
    conn.filled = chunk.length - from;
    conn.size = size;
    conn.partialSince = performance.now();
    setLimit(conn, this.opts.requestTimeoutMs);
  }

  /**
   * A body that will not complete: the client left (err null), sent a FIN
   * (node's parser error) or ran out of time (node's request timeout). As on
   * node:http's path, the request is logged as 499 and, if the client can
   * still read, node's server answers the error (http-server.ts, 'clientError').
   */
  private bodyAbandoned(conn: LaneConnection, err: Error | null): void {
    const first = conn.partial!;
    conn.partial = null;
    if (this.observed) this.recordAbandoned(conn, first);
    if (err === null) return;
    const socket = conn.socket;
    this.server.emit('clientError', err, socket);
    socket.destroySoon();
  }

  /** Record the 499 of a request whose body never completed: its head is parsed again from its first read. */
  private recordAbandoned(conn: LaneConnection, first: Buffer): void {
    const end = first.indexOf(HEAD_END);
    if (!this.parser.parse(first, 0, end, conn.socket)) return;
    const req = this.req;
    const meter = this.state.meter;
    if (meter) meter.begin();
    const done = this.done;
    done.req = req;
    done.executor = this.state.router.match(req);
    done.meter = meter;
    done.status = 499;
    done.finished = false;
    done.bytes = 0;
    done.arenaBytes = 0;
    done.alloc = 0;
    done.startMs = conn.partialSince;
    done.ttfbMs = 0;
    this.record(done);
  }

  /** Between requests: node's headers timeout until the first answer, then its keep-alive one. */
  private idle(conn: LaneConnection): void {
    const ka = this.opts.keepAliveTimeoutMs;
    setLimit(conn, conn.fresh ? this.opts.headersTimeoutMs : ka > 0 ? ka + KEEP_ALIVE_GRACE_MS : 0);
  }

  /** A connection's first answer is out: from now on it idles with node's keep-alive timeout. */
  private answered(conn: LaneConnection): void {
    conn.fresh = false;
    this.idle(conn);
  }

  /** Start an asynchronous answer (upstream, threaded native, WASM). */
  private start(conn: LaneConnection, ex: Executor): void {
    const req = this.req;
    const res = new LaneResponse(this, conn.socket, ex, { socket: conn.socket, method: req.method, url: req.url, httpVersion: '1.1' });
    res.meter = this.observed ? this.state.meter : null;
    if (this.observed) res.startMs = performance.now();
    if (res.meter) res.meter.begin();
    conn.res = res;
    conn.starting = true;
    try {
      ex.laneHandle!(req, res, res);
    } catch (err) {
      this.log.error({ route: ex.route.key, err: (err as Error).message, stack: (err as Error).stack }, 'executor threw');
      if (res.headersSent) res.destroy();
      else if (!res.settled) sendError(res, 'FLX_INTERNAL', 'Internal Server Error');
    }
    conn.starting = false;
  }

  /** LaneOwner: an asynchronous answer is complete (before its last bytes leave) or cut off; record it. */
  recordAnswer(res: LaneResponse, finished: boolean): void {
    if (!this.observed) return;
    const done = this.done;
    takeObserved(done, res);
    done.status = finished ? res.statusCode : 499;
    done.finished = finished;
    done.bytes = res.bytes >= 0 ? res.bytes : res.written;
    done.arenaBytes = res.arenaBytes;
    done.alloc = res.alloc;
    this.record(done);
  }

  /** LaneOwner: an asynchronous answer is over (recorded); serve what came meanwhile. */
  settled(res: LaneResponse, finished: boolean): void {
    const socket = res.socket;
    const conn = this.conns.get(socket);
    if (conn === undefined || conn.res !== res) return;
    conn.res = null;
    if (!finished) return;
    if (res.closeAfter || this.stopping) {
      socket.destroySoon();
      return;
    }
    if (conn.fresh) this.answered(conn);
    // Still inside serve(): it goes on by itself.
    if (conn.starting) return;
    const next = conn.pending;
    conn.pending = null;
    this.serve(conn, next ?? EMPTY);
  }

  /** Call the executor and write its answer; false when it declined (node:http serves the request). */
  private answer(socket: Socket, ex: Executor): boolean {
    const req = this.req;
    const meter = this.observed ? this.state.meter : null;
    const start = this.observed ? performance.now() : 0;
    const stats = this.stats;
    stats.arenaBytes = 0;
    stats.alloc = 0;
    stats.bytes = -1;
    let out: DirectAnswer | null;
    try {
      out = ex.direct!(req, stats);
    } catch (err) {
      this.log.error({ route: ex.route.key, err: (err as Error).message, stack: (err as Error).stack }, 'executor threw');
      out = errorAnswer('FLX_INTERNAL', 'Internal Server Error');
      meter?.error(ex, 'FLX_INTERNAL');
    }
    if (out === null) return false;
    if (meter) meter.begin();
    let status = out.status;
    let built: BuiltHead;
    try {
      checkFinalStatus(status);
      built = this.head(status, out.reason, out.headers, false);
    } catch (err) {
      const why = ex.refused ? ex.refused(err as Error) : `route "${ex.route.key}" produced an invalid response: ${(err as Error).message}`;
      releaseHeld(out.body);
      out = errorAnswer('FLX_PLUGIN_BAD_RESPONSE', why);
      meter?.error(ex, 'FLX_PLUGIN_BAD_RESPONSE');
      status = out.status;
      stats.bytes = out.body.length;
      built = this.head(status, out.reason, out.headers, false);
    }
    const head = built.text;
    const close = built.closeAfter;
    const body = out.body;
    // Recorded before the bytes leave: a worker killed right after its client
    // read the answer has counted it (the metrics file outlives the process).
    if (this.observed) {
      const done = this.done;
      done.req = req;
      done.executor = ex;
      done.meter = meter;
      done.status = status;
      done.finished = true;
      done.bytes = stats.bytes >= 0 ? stats.bytes : body.length;
      done.arenaBytes = stats.arenaBytes;
      done.alloc = stats.alloc;
      done.startMs = start;
      done.ttfbMs = 0;
      this.record(done);
    }
    sendDirect(socket, head, status, body);
    if (close) socket.destroySoon();
    return true;
  }

  /** LaneOwner: the answer's head (answer-head.ts); every answer closes its connection once stopping. */
  head(status: number, reason: string | undefined, h: string[], chunked: boolean, parsed = false): BuiltHead {
    return this.heads.build(status, reason, h, chunked, this.stopping, parsed);
  }
}

/** A direct answer's bytes as node:http sends them: no body for 204 and 304, whatever
 * content-length says; head and a string body in one write; a body held in native
 * memory written from there. */
function sendDirect(socket: Socket, head: string, status: number, body: string | Buffer | HeldBody): void {
  if (status === 204 || status === 304) {
    socket.write(head, 'latin1');
    releaseHeld(body);
  } else if (typeof body === 'string') {
    socket.write(body.length === 0 ? head : head + body, 'latin1');
  } else if (body instanceof Uint8Array) {
    socket.cork();
    socket.write(head, 'latin1');
    socket.write(body);
    socket.uncork();
  } else body.sendAfter(socket, head);
}
