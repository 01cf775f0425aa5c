/**
 * The fast lane: plain requests to inline native routes and upstream routes
 * are read off the socket and answered by the worker itself, without
 * node:http's per-request objects; everything else is node:http's, which then
 * keeps the connection.
 *
 *   accept ─> fast lane ─ a whole, strict, bodyless HTTP/1.1 request
 *                │        ├─ inline native route, library loaded: direct() ─> bytes out
 *                │        └─ upstream route: laneHandle() with a LaneResponse;
 *                │           the connection reads nothing more until it ends
 *                │
 *                └─ anything else: a partial or oversized head, a body, HEAD,
 *                   Connection: close, Proxy-Connection, Upgrade, Expect, no
 *                   Host or two, an unknown method, another kind of route, a
 *                   library not loaded yet
 *                   ─> node:http's own connection listener, given the bytes
 *                      not yet served; the connection is node's from then on
 *
 * Why: node:http's request and response objects (two streams, their events
 * and ticks, header validation per write) cost about 50k instructions a
 * request, which no work of flexilib's own could win back: a native route
 * stayed near 0.75× a bare node:http server answering the same bytes.
 *
 * What keeps it safe: the lane accepts only what it recognises whole, a subset
 * of RFC 9112 (token header names, field values without CTLs, CRLF line ends,
 * no obs-fold, origin-form targets, Content-Length 0 at most). A request it
 * does not accept is not refused here but handed to node:http (llhttp), so
 * every error answer, limit and timeout for odd requests stays node's. Answers
 * follow node:http's rules and header order (tested byte for byte against
 * node's path, --no-fast-lane), with node's own validators.
 */
import { STATUS_CODES, validateHeaderName, validateHeaderValue, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { DirectAnswer, Executor, RequestStats } from '../executor.js';
import { finishedRequest, takeObserved, type RequestRecorder, type ServerState } from './server-state.js';
import { Latin1Cache } from './latin1-cache.js';
import { LaneResponse, type BuiltHead, type LaneOwner } from './lane-response.js';
import { sameLower } from './raw-headers.js';
import { checkFinalStatus } from './final-status.js';
import { countErrorAnswer, errorAnswer, sendError } from './respond.js';

/** More headers than this go to node:http (which keeps up to 2000). */
const MAX_LANE_HEADERS = 100;

/** Bytes allowed in a header name (RFC 9110 tchar). */
const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TOKEN[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TOKEN[c] = 1;
for (let c = 65; c <= 90; c++) TOKEN[c] = TOKEN[c + 32] = 1;
/** Bytes allowed in a field value: HTAB, visible ASCII, SP, obs-text. */
const VALUE = new Uint8Array(256);
VALUE[9] = 1;
for (let c = 32; c <= 255; c++) if (c !== 127) VALUE[c] = 1;
/** Bytes allowed in a request target (visible ASCII). */
const TARGET = new Uint8Array(256);
for (let c = 33; c <= 126; c++) TARGET[c] = 1;

/** Methods the lane serves (each followed by SP); any other is node:http's to judge. */
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'].map((m) => ({ name: m, bytes: Buffer.from(`${m} `, 'latin1') }));
const VERSION = Buffer.from(' HTTP/1.1\r\n', 'latin1');
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
const EMPTY = Buffer.alloc(0);
/** Bytes a client may send ahead while an answer is awaited before the lane stops reading it. */
const PENDING_MAX = 64 * 1024;

/** The request the lane hands the router and executors: reused, valid during one call. */
interface LaneRequest {
  method: string;
  url: string;
  rawHeaders: string[];
  httpVersionMajor: number;
  httpVersionMinor: number;
  httpVersion: string;
  socket: Socket;
}

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
  private readonly strings = new Latin1Cache();
  private readonly req: LaneRequest = { method: '', url: '', rawHeaders: [], httpVersionMajor: 1, httpVersionMinor: 1, httpVersion: '1.1', socket: null as unknown as Socket };
  private readonly stats: RequestStats = { arenaBytes: 0, alloc: 0, bytes: -1 };
  /** Refilled for each answer recorded (the recorder reads it synchronously). */
  private readonly done = finishedRequest(true);
  private readonly keepAliveLine: string;
  private readonly observed: boolean;
  private stopping = false;
  /** What head() returns: refilled by each call, read by its caller straight away. */
  private readonly built: { text: string; closeAfter: boolean } = { text: '', closeAfter: false };
  /** Header names, and values, that passed node's validators (a plugin's strings repeat). */
  private readonly validNames = new Set<string>();
  private readonly validValues = new Set<string>();

  private constructor(
    private readonly server: Server,
    private readonly nodeListener: (socket: Socket) => void,
    private readonly opts: FastLaneOptions,
    private readonly state: ServerState,
    private readonly record: RequestRecorder,
    observed: boolean,
    private readonly log: Logger,
  ) {
    const seconds = Math.floor(opts.keepAliveTimeoutMs / 1000);
    // node:http's own: Connection: keep-alive, and Keep-Alive when it has an idle timeout.
    this.keepAliveLine = opts.keepAliveTimeoutMs > 0 ? `Connection: keep-alive\r\nKeep-Alive: timeout=${seconds}\r\n` : 'Connection: keep-alive\r\n';
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
      if (end < 0 || end + 4 - pos > this.opts.maxHeaderBytes || !this.parse(chunk, pos, end, socket)) break;
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

  /** Start an asynchronous answer (an upstream route). */
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
      done.arenaBytes = 0;
      done.alloc = 0;
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
      countErrorAnswer(meter, ex, out.headers);
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
      countErrorAnswer(meter, ex, out.headers);
      status = out.status;
      stats.bytes = out.body.length;
      built = this.head(status, out.reason, out.headers, false);
    }
    const head = built.text;
    const close = built.closeAfter;
    const body = out.body;
    if (status === 204 || status === 304) {
      // node:http sends no body with these, whatever content-length says.
      socket.write(head, 'latin1');
    } else if (typeof body === 'string') {
      socket.write(body.length === 0 ? head : head + body, 'latin1');
    } else {
      socket.cork();
      socket.write(head, 'latin1');
      socket.write(body);
      socket.uncork();
    }
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

  /**
   * LaneOwner: the status line and headers by node:http's rules, in its order
   * (the answer's headers, Date, Connection and Keep-Alive, Transfer-Encoding);
   * throws node's error for what node would refuse. The result is valid until the next call.
   */
  head(status: number, reason: string | undefined, h: string[], chunked: boolean): BuiltHead {
    if (!(status >= 100 && status <= 999) || status !== Math.floor(status)) {
      throw Object.assign(new RangeError(`Invalid status code: ${status}`), { code: 'ERR_HTTP_INVALID_STATUS_CODE' });
    }
    if (reason === undefined) reason = STATUS_CODES[status] ?? 'unknown';
    else this.check('statusMessage', reason, false);
    let head = `HTTP/1.1 ${status} ${reason}\r\n`;
    let date = false;
    let connection = false;
    let keepAlive = false;
    let close = this.stopping;
    for (let i = 0; i < h.length; i += 2) {
      const name = h[i];
      const value = h[i + 1];
      this.check(name, value, true);
      head += `${name}: ${value}\r\n`;
      const n = name.length;
      if (n === 4 && sameLower(name, 'date')) date = true;
      else if (n === 10) {
        if (sameLower(name, 'connection')) {
          connection = true;
          if (/(?:^|\W)close(?:$|\W)/i.test(value)) close = true;
        } else if (sameLower(name, 'keep-alive')) keepAlive = true;
      }
    }
    if (!date) head += `Date: ${utcDate()}\r\n`;
    if (!connection) head += close ? 'Connection: close\r\n' : keepAlive ? 'Connection: keep-alive\r\n' : this.keepAliveLine;
    const built = this.built;
    built.text = chunked ? `${head}Transfer-Encoding: chunked\r\n\r\n` : `${head}\r\n`;
    built.closeAfter = close;
    return built;
  }

  /** node:http's header validation, remembered for strings seen valid before. */
  private check(name: string, value: string, isHeader: boolean): void {
    if (isHeader && !this.validNames.has(name)) {
      validateHeaderName(name);
      remember(this.validNames, name);
    }
    if (!this.validValues.has(value)) {
      validateHeaderValue(isHeader ? name : 'statusMessage', value);
      remember(this.validValues, value);
    }
  }

  /**
   * Parse the head in chunk[pos, end + 4) into this.req. False for anything
   * outside the lane's strict subset (node:http will judge it).
   */
  private parse(buf: Buffer, pos: number, end: number, socket: Socket): boolean {
    const req = this.req;
    const strings = this.strings;
    let method: string | undefined;
    for (let m = 0; m < METHODS.length && method === undefined; m++) {
      const bytes = METHODS[m].bytes;
      let i = 0;
      while (i < bytes.length && buf[pos + i] === bytes[i]) i++;
      if (i === bytes.length) method = METHODS[m].name;
    }
    if (method === undefined) return false;
    const t = pos + method.length + 1;
    if (buf[t] !== 47 /* / */) return false;
    let i = t + 1;
    while (TARGET[buf[i]] === 1) i++;
    for (let k = 0; k < VERSION.length; k++) if (buf[i + k] !== VERSION[k]) return false;
    req.method = method;
    req.url = strings.decode(buf, t, i - t);
    req.socket = socket;

    const raw = req.rawHeaders;
    let n = 0;
    let host = false;
    let length = false;
    let p = i + VERSION.length;
    const stop = end + 2;
    while (p < stop) {
      let k = p;
      while (TOKEN[buf[k]] === 1) k++;
      const nameLen = k - p;
      if (nameLen === 0 || buf[k] !== 58 /* : */ || n >= MAX_LANE_HEADERS * 2) return false;
      let v = k + 1;
      while (buf[v] === 32 || buf[v] === 9) v++;
      let e = v;
      while (VALUE[buf[e]] === 1) e++;
      if (buf[e] !== 13 || buf[e + 1] !== 10) return false;
      let ve = e;
      while (ve > v && (buf[ve - 1] === 32 || buf[ve - 1] === 9)) ve--;
      switch (nameLen) {
        case 4:
          if (lowerIs(buf, p, 'host')) {
            // A second Host is node:http's path's to refuse (http-server.ts).
            if (host) return false;
            host = true;
          }
          break;
        case 6:
          if (lowerIs(buf, p, 'expect')) return false;
          break;
        case 7:
          if (lowerIs(buf, p, 'upgrade')) return false;
          break;
        case 10:
          // Only an explicit keep-alive stays: close (and anything else) is node's to honour.
          if (lowerIs(buf, p, 'connection') && !(ve - v === 10 && lowerIs(buf, v, 'keep-alive'))) return false;
          break;
        case 14:
          // Once, exactly 0, padded by spaces only: llhttp refuses a repeat or a tab.
          if (lowerIs(buf, p, 'content-length')) {
            if (length || ve - v !== 1 || buf[v] !== 48 /* 0 */ || hasTab(buf, k + 1, e)) return false;
            length = true;
          }
          break;
        case 16:
          // llhttp reads Proxy-Connection as Connection (close, upgrade): node's to honour.
          if (lowerIs(buf, p, 'proxy-connection')) return false;
          break;
        case 17:
          if (lowerIs(buf, p, 'transfer-encoding')) return false;
          break;
      }
      raw[n++] = strings.decode(buf, p, nameLen);
      raw[n++] = strings.decode(buf, v, ve - v);
      p = e + 2;
    }
    if (!host) return false;
    raw.length = n;
    return true;
  }
}

function hasTab(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] === 9) return true;
  return false;
}

function remember(set: Set<string>, s: string): void {
  if (set.size >= 4096) set.clear();
  set.add(s);
}

/** buf[at, at + lower.length) equals `lower` (lower-case ASCII letters and '-') ignoring case. */
function lowerIs(buf: Buffer, at: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) if ((buf[at + i] | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

// node:http's Date header: the time formatted once a second.
let dateCache: string | undefined;
function utcDate(): string {
  if (dateCache === undefined) {
    const d = new Date();
    dateCache = d.toUTCString();
    setTimeout(() => (dateCache = undefined), 1000 - d.getMilliseconds()).unref();
  }
  return dateCache;
}
