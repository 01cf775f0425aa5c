/**
 * The fast lane: plain requests to native, upstream and WASM routes are read
 * off the socket and answered by the worker itself, without node:http's
 * per-request objects; everything else is node:http's, which then keeps the
 * connection.
 *
 *   accept ─> fast lane ─ a whole, strict, bodyless HTTP/1.1 request
 *                │        ├─ inline native route, library loaded: direct() ─> bytes out
 *                │        └─ upstream, threaded native or WASM route: laneHandle()
 *                │           with a LaneResponse, answered now or later (a thread,
 *                │           an instance, an origin); the connection reads on but
 *                │           serves nothing more until that answer ends. The
 *                │           request object is the lane's, reused: an executor
 *                │           that keeps a request past the call copies it
 *                │           (held-request.ts, when its call has to queue).
 *                │
 *                └─ anything else: a partial or oversized head, a body, HEAD,
 *                   Connection: close, Proxy-Connection, Upgrade, Expect, no
 *                   Host or two, an unknown method, another kind of route, an
 *                   inline library not loaded yet
 *                   ─> node:http's own connection listener, given the bytes
 *                      not yet served; the connection is node's from then on
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
 * no obs-fold, origin-form targets, Content-Length 0 at most). A request it
 * does not accept is not refused here but handed to node:http (llhttp), so
 * every error answer, limit and timeout for odd requests stays node's. Answers
 * follow node:http's rules and header order (tested byte for byte against
 * node's path, --no-fast-lane), with node's own validators.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { DirectAnswer, Executor, RequestStats } from '../executor.js';
import { finishedRequest, takeObserved, type RequestRecorder, type ServerState } from './server-state.js';
import { AnswerHeadWriter, type BuiltHead } from './answer-head.js';
import { LaneResponse, type LaneOwner } from './lane-response.js';
import { RequestHeadParser, type LaneRequest } from './lane-request.js';
import { checkFinalStatus } from './final-status.js';
import { errorAnswer, sendError } from './respond.js';

const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
const EMPTY = Buffer.alloc(0);
/** Bytes a client may send ahead while an answer is awaited before the lane stops reading it. */
const PENDING_MAX = 64 * 1024;

export interface FastLaneOptions {
  maxHeaderBytes: number;
  keepAliveTimeoutMs: number;
  headersTimeoutMs: number;
}

/** node:http (20.x) keeps an idle connection this much longer than the Keep-Alive timeout it announces. */
const KEEP_ALIVE_GRACE_MS = 1000;

/** A connection the lane serves. */
class LaneConnection {
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
  constructor(
    readonly socket: Socket,
    /** Detach the lane's listeners (hand-off to node:http). */
    readonly detach: () => void,
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
    for (const c of this.conns.values()) if (c.res === null) c.socket.destroySoon();
  }

  private accept(socket: Socket): void {
    if (this.stopping) {
      this.nodeListener.call(this.server, socket);
      return;
    }
    const onData = (chunk: Buffer) => this.serve(conn, chunk);
    // A FIN while an answer is awaited is the client leaving, as node:http and
    // nginx take it: the origin request is aborted and logged as 499.
    const onEnd = () => {
      socket.end();
      conn.res?.clientGone();
    };
    // Idle: close it, as node:http would. Not while an answer is awaited, nor
    // with output pending (a client slow to read, which node:http does not
    // time out either). No request yet: node's 408, by the server's own handler.
    const onTimeout = () => {
      if (conn.res !== null || socket.writableLength > 0) return;
      if (conn.fresh) {
        this.server.emit('clientError', Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), socket);
        socket.destroySoon();
      } else socket.destroy();
    };
    const onError = () => socket.destroy();
    const onClose = () => {
      this.conns.delete(socket);
      conn.res?.clientGone();
    };
    const conn = new LaneConnection(socket, () => {
      socket.removeListener('data', onData);
      socket.removeListener('end', onEnd);
      socket.removeListener('timeout', onTimeout);
      socket.removeListener('error', onError);
      socket.removeListener('close', onClose);
      socket.setTimeout(0);
      this.conns.delete(socket);
    });
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('timeout', onTimeout);
    socket.on('error', onError);
    socket.on('close', onClose);
    // Until its first request a connection has node's headers timeout; then
    // (answered()) the keep-alive one, between requests (the lane answers
    // only whole requests, so a lane connection is always between requests).
    socket.setTimeout(this.opts.headersTimeoutMs);
    this.conns.set(socket, conn);
  }

  /** Give the connection to node:http, with the bytes not served yet. */
  private handOff(conn: LaneConnection, chunk: Buffer, from: number): void {
    const socket = conn.socket;
    conn.detach();
    // Paused by the lane (backpressure): node:http reads it from now on.
    if (socket.isPaused()) socket.resume();
    this.nodeListener.call(this.server, socket);
    // node:http now reads the socket itself; the bytes already read are fed to it first.
    if (from < chunk.length) socket.emit('data', from === 0 ? chunk : chunk.subarray(from));
  }

  private serve(conn: LaneConnection, chunk: Buffer): void {
    const socket = conn.socket;
    if (conn.res !== null) {
      // An answer is in progress: keep the bytes for after it, reading on
      // (to notice a client that leaves) unless it sends too much meanwhile.
      conn.pending = conn.pending === null ? chunk : Buffer.concat([conn.pending, chunk]);
      if (conn.pending.length > PENDING_MAX) socket.pause();
      return;
    }
    // Ended (graceful stop, Connection: close): nothing more is answered on it.
    if (!socket.writable) return;
    let pos = 0;
    let corked = false;
    while (pos < chunk.length) {
      const end = chunk.indexOf(HEAD_END, pos);
      if (end < 0 || end + 4 - pos > this.opts.maxHeaderBytes || !this.parser.parse(chunk, pos, end, socket)) break;
      const ex = this.state.router.match(this.req);
      if (ex === undefined) break;
      if (ex.direct !== undefined) {
        if (pos > 0 && !corked) {
          socket.cork();
          corked = true;
        }
        if (!this.answer(socket, ex)) break;
        if (conn.fresh) this.answered(conn);
        pos = end + 4;
      } else if (ex.laneHandle !== undefined) {
        pos = end + 4;
        if (corked) {
          socket.uncork();
          corked = false;
        }
        this.start(conn, ex);
        if (conn.res !== null) {
          // Answered later: what follows waits for it (settled() goes on),
          // reading on (paused only if the client sent too much ahead).
          if (pos < chunk.length) conn.pending = chunk.subarray(pos);
          if (!conn.draining && socket.isPaused() && (conn.pending === null || conn.pending.length <= PENDING_MAX)) socket.resume();
          return;
        }
      } else break;
      if (socket.destroyed || !socket.writable) {
        pos = chunk.length;
        break;
      }
    }
    if (corked) socket.uncork();
    if (pos < chunk.length) {
      this.handOff(conn, chunk, pos);
      return;
    }
    if (socket.writableNeedDrain) {
      // A client that pipelines without reading: stop reading until it catches up.
      socket.pause();
      if (!conn.draining) {
        conn.draining = true;
        socket.once('drain', () => {
          conn.draining = false;
          if (conn.res === null) socket.resume();
        });
      }
    } else if (socket.isPaused()) socket.resume();
  }

  /** A connection's first answer is out: from now on it idles with node's keep-alive timeout. */
  private answered(conn: LaneConnection): void {
    conn.fresh = false;
    const ka = this.opts.keepAliveTimeoutMs;
    conn.socket.setTimeout(ka > 0 ? ka + KEEP_ALIVE_GRACE_MS : 0);
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

  /** LaneOwner: an asynchronous answer is over; record it and serve what came meanwhile. */
  settled(res: LaneResponse, finished: boolean): void {
    const socket = res.socket;
    const conn = this.conns.get(socket);
    if (this.observed) {
      const done = this.done;
      takeObserved(done, res);
      done.status = finished ? res.statusCode : 499;
      done.finished = finished;
      done.bytes = res.bytes >= 0 ? res.bytes : res.written;
      done.arenaBytes = res.arenaBytes;
      done.alloc = res.alloc;
      this.record(done);
    }
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
      out = errorAnswer('FLX_PLUGIN_BAD_RESPONSE', why);
      meter?.error(ex, 'FLX_PLUGIN_BAD_RESPONSE');
      status = out.status;
      stats.bytes = out.body.length;
      built = this.head(status, out.reason, out.headers, false);
    }
    const head = built.text;
    const close = built.closeAfter;
    const body = out.body;
    sendDirect(socket, head, status, body);
    if (close) socket.destroySoon();
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
    return true;
  }

  /** LaneOwner: the answer's head (answer-head.ts); every answer closes its connection once stopping. */
  head(status: number, reason: string | undefined, h: string[], chunked: boolean): BuiltHead {
    return this.heads.build(status, reason, h, chunked, this.stopping);
  }
}

/** A direct answer's bytes as node:http sends them: no body for 204 and 304, whatever
 * content-length says; head and a string body in one write. */
function sendDirect(socket: Socket, head: string, status: number, body: string | Buffer): void {
  if (status === 204 || status === 304) {
    socket.write(head, 'latin1');
  } else if (typeof body === 'string') {
    socket.write(body.length === 0 ? head : head + body, 'latin1');
  } else {
    socket.cork();
    socket.write(head, 'latin1');
    socket.write(body);
    socket.uncork();
  }
}
