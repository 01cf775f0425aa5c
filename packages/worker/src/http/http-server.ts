/**
 * The worker's HTTP server: node:http with keep-alive and deliberate limits,
 * dispatching each request to the router's executor.
 */
import http, { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
// The module binding, not the global: node's global `performance` is a lazy
// accessor, a getter call on every use.
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { AccessLogger, AccessRecord } from '../observe/access-log.js';
import type { Executor, RequestStats } from '../executor.js';
import { FastLane } from './fast-lane.js';
import type { RequestMeter } from '../observe/metrics/request-meter.js';
import { ERROR_HEADER, statusOf, type WorkerOptions } from '@flexilib/contract';
import { rawHeaderCount } from './raw-headers.js';
import { sendError } from './respond.js';
import type { Router } from '../routing/router.js';
import { finishedRequest, NO_REQUEST, takeObserved, type RequestRecorder, type ServerState } from './server-state.js';
import { MemoryReturn } from '../memory-return.js';
import { WriteStallWatch } from './write-stall.js';

export type { RequestRecorder, ServerState } from './server-state.js';

/** Marks a socket whose queued answers include one that closes it (answered before it is attached). */
const CLOSING = Symbol('flexilib.closing');
type ServerSocket = Socket & { _httpMessage?: (ServerResponse & { _last?: boolean }) | null; [CLOSING]?: true };

/** Stats of unobserved requests: executors write them, nobody reads them. */
const UNOBSERVED: RequestStats = { arenaBytes: 0, alloc: 0, bytes: -1 };

/** A response that holds its request's observation state (it is the request's RequestStats). */
interface ObservedResponse extends ServerResponse, RequestStats {
  startMs: number;
  ttfbMs: number;
  executor: Executor | undefined;
  meter: RequestMeter | null;
}

export function requestRecorder(access: AccessLogger | null): RequestRecorder {
  // One record, refilled for each request: the logger uses it synchronously.
  const rec: AccessRecord = { req: NO_REQUEST, status: 0, bytes: 0, ttfbMs: 0, ttlbMs: 0, arenaBytes: 0, alloc: 0, route: '-' };
  return (done) => {
    const end = performance.now();
    const ex = done.executor;
    if (done.meter) done.meter.record(ex, done.status, end - done.startMs, done.bytes, done.alloc, done.finished, done.fast);
    if (access) {
      rec.req = done.req;
      rec.status = done.status;
      rec.bytes = done.bytes;
      rec.ttfbMs = (done.ttfbMs || end) - done.startMs;
      rec.ttlbMs = end - done.startMs;
      rec.arenaBytes = done.arenaBytes;
      rec.alloc = done.alloc;
      rec.route = ex ? ex.route.key : '-';
      access(rec);
      rec.req = NO_REQUEST;
    }
    done.req = NO_REQUEST;
    done.executor = undefined;
    done.meter = null;
  };
}

/**
 * The ServerResponse class of an observed server: node:http makes one per
 * request, with the fields initialised in the constructor (one hidden class),
 * and its end() (or its 'close', when it never ends on a live connection)
 * records the request in the metrics and the access log.
 */
function observedResponseClass(record: RequestRecorder): typeof http.ServerResponse {
  const done = finishedRequest(false);
  function recordResponse(res: ObservedResponse, finished: boolean): void {
    const len = res.bytes >= 0 ? res.bytes : res.getHeader('content-length');
    takeObserved(done, res);
    // nginx's 499: the client closed the connection before the response was complete (ended)
    done.status = finished ? res.statusCode : 499;
    done.finished = finished;
    done.bytes = typeof len === 'number' ? len : Number(len ?? 0);
    done.arenaBytes = res.arenaBytes;
    done.alloc = res.alloc;
    record(done);
  }
  return class extends http.ServerResponse implements RequestStats {
    arenaBytes = 0;
    alloc = 0;
    bytes = -1;
    startMs = 0;
    ttfbMs = 0;
    executor: Executor | undefined = undefined;
    meter: RequestMeter | null = null;
    private recorded = false;

    /**
     * The answer is complete: recorded now, before its last bytes leave (they
     * go out inside super.end()). A worker killed right after its client read
     * the answer has counted it; recorded on 'close' instead, a SIGKILL between
     * the write and that event lost the count. Not while the answer waits its
     * turn behind another on the connection: then when it is attached.
     */
    override end(a?: unknown, b?: unknown, c?: unknown): this {
      if (!this.recorded && this.socket !== null && !this.socket.destroyed && !this.writableEnded) {
        this.recorded = true;
        recordResponse(this as unknown as ObservedResponse, true);
      }
      // Pass on what was given: end()'s arguments are optional and positional.
      switch (arguments.length) {
        case 0:
          return super.end();
        case 1:
          return super.end(a as string);
        case 2:
          return super.end(a as string, b as BufferEncoding);
        default:
          return super.end(a as string, b as BufferEncoding, c as () => void);
      }
    }

    /** A queued answer gets the connection: an ended one is flushed in there, so it is recorded first. */
    override assignSocket(socket: Socket): void {
      if (!this.recorded && this.writableEnded && !socket.destroyed) {
        this.recorded = true;
        recordResponse(this as unknown as ObservedResponse, true);
      }
      super.assignSocket(socket);
    }

    // Fixed arity: a rest parameter would make an array on every emit, and a
    // response emits several events per request. node emits a response's
    // events with at most one argument ('error', 'pipe', 'unpipe'); up to
    // three are passed on, each call with the count it was given.
    override emit(event: string | symbol, a?: unknown, b?: unknown, c?: unknown): boolean {
      // node emits 'close' once; the guard keeps a second one from counting twice.
      if (event === 'close' && !this.recorded) {
        this.recorded = true;
        recordResponse(this as unknown as ObservedResponse, this.writableFinished);
      }
      switch (arguments.length) {
        case 0:
        case 1:
          return super.emit(event);
        case 2:
          return super.emit(event, a);
        case 3:
          return super.emit(event, a, b);
        default:
          return super.emit(event, a, b, c);
      }
    }
  } as unknown as typeof http.ServerResponse;
}

/**
 * The error answer to a bad request that followed good ones on the same
 * connection: written after the answers still owed to them (node:http's
 * response on the socket, and each queued one it attaches after), never into
 * the middle of one. An answer cut short takes the connection with it; an
 * empty `answer` just ends the connection after them.
 */
function answerAfterPending(socket: Socket, answer: string): void {
  // node:http's own link from a socket to the response writing on it.
  const current = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  // Not `current.writableFinished`: that is true as soon as its bytes reach the
  // kernel, before its 'finish' — and only on 'finish' does node:http attach the
  // next queued answer (e.g. an HTTP/1.0 request's, pipelined behind it). Ending
  // the socket then would drop those answers; while `current` is attached, wait.
  if (current == null) {
    socket.end(answer);
    return;
  }
  if (!current.req.complete) {
    // The error is in the request being answered (its body): that answer
    // will never be whole. The 400 if it has not begun, else a cut.
    if (current.headersSent) socket.destroy();
    else socket.end(answer);
    return;
  }
  const next = () => {
    current.removeListener('finish', next);
    current.removeListener('close', next);
    if (socket.destroyed || !socket.writable) return;
    answerAfterPending(socket, answer);
  };
  // 'finish' comes after node:http's own, which attaches the next queued response.
  current.on('finish', next);
  current.on('close', next);
}

/** node:http's refusals of what llhttp could not parse or wait for, as whole answers (the connection closes). */
const CLIENT_ERROR_ANSWER = Object.fromEntries(
  (['FLX_BAD_REQUEST', 'FLX_REQUEST_TIMEOUT', 'FLX_HEADERS_TOO_LARGE'] as const).map((code) => {
    const status = statusOf(code);
    const reason = STATUS_CODES[status]!;
    return [code, `HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain\r\nconnection: close\r\n${ERROR_HEADER}: ${code}\r\ncontent-length: ${reason.length + 1}\r\n\r\n${reason}\n`];
  }),
) as Record<'FLX_BAD_REQUEST' | 'FLX_REQUEST_TIMEOUT' | 'FLX_HEADERS_TOO_LARGE', string>;

/** The worker's server, and the fast lane in front of it (null when turned off). */
export interface WorkerServer {
  server: http.Server;
  lane: FastLane | null;
}

export function createHttpServer(opts: WorkerOptions, state: ServerState, log: Logger, access: AccessLogger | null): WorkerServer {
  // Observed requests (access log or metrics on) are recorded as their
  // answer's last bytes are handed to the socket (end()), or when the response
  // emits 'close' if it never got that far ('close' rather than 'finish', so
  // a response the client walked away from is counted too, as aborted, and
  // leaves the in-flight gauge). The response object itself carries the
  // request's state: no closure, stats object or listener per request.
  const observed = access !== null || state.meter !== null;
  const record = requestRecorder(access);
  const Response = observed ? observedResponseClass(record) : http.ServerResponse;
  const server = http.createServer({
    maxHeaderSize: opts.maxHeaderBytes,
    keepAliveTimeout: opts.keepAliveTimeoutMs,
    headersTimeout: opts.headersTimeoutMs,
    requestTimeout: opts.requestTimeoutMs,
    // How often node checks those two timeouts (default 30 s would let a slow
    // client hold a connection far past its deadline).
    connectionsCheckingInterval: Math.min(1000, Math.max(100, opts.headersTimeoutMs / 4)),
    noDelay: true,
    // refused() below answers a missing Host (400 FLX_BAD_REQUEST), where a request pipelined after it can see it.
    requireHostHeader: false,
    ServerResponse: Response,
  });

  const onRequest = observed
    ? (req: IncomingMessage, res: ServerResponse) => {
        if (afterLastAnswer(req, res)) return;
        const o = res as ObservedResponse;
        o.startMs = performance.now();
        const meter = state.meter;
        o.meter = meter;
        if (meter) meter.begin();
        if (refused(req, res)) return;
        const ex = state.router.match(req);
        o.executor = ex;
        dispatch(ex, req, res, o);
        if (res.headersSent) o.ttfbMs = performance.now();
      }
    : (req: IncomingMessage, res: ServerResponse) => {
        if (afterLastAnswer(req, res)) return;
        if (refused(req, res)) return;
        dispatch(state.router.match(req), req, res, UNOBSERVED);
      };

  /**
   * A request read after one whose answer closes the connection (ours below
   * for a missing Host or two, a 413): node:http would never send its answer,
   * so it is not run at all — no plugin call or origin request the client
   * cannot see the answer to. The closing answer may be the one writing
   * (`current`) or one queued behind it (CLOSING: node:http keeps its queue
   * private). (A client's own Connection: close stops llhttp itself:
   * HPE_CLOSED_CONNECTION below.)
   */
  function afterLastAnswer(req: IncomingMessage, res: ServerResponse): boolean {
    const socket = req.socket as ServerSocket;
    const current = socket._httpMessage;
    if (socket[CLOSING] !== true && socket.writable && (current == null || current === res || (current._last !== true && current.shouldKeepAlive))) return false;
    req.resume();
    return true;
  }

  /**
   * What RFC 9112 §3.2 refuses: more than one Host (llhttp lets it through;
   * node keeps the first, a plugin or an origin may read another), or none in
   * HTTP/1.1 (node's own check, turned off above). 400 FLX_BAD_REQUEST, and
   * the connection closes. (The fast lane hands such
   * requests to node:http.)
   */
  function refused(req: IncomingMessage, res: ServerResponse): boolean {
    const hosts = rawHeaderCount(req.rawHeaders, 'host');
    if (hosts === 1 || (hosts === 0 && (req.httpVersionMajor !== 1 || req.httpVersionMinor !== 1))) return false;
    (req.socket as ServerSocket)[CLOSING] = true;
    res.shouldKeepAlive = false;
    sendError(res, 'FLX_BAD_REQUEST', hosts === 0 ? 'no Host header (HTTP/1.1 needs one)' : 'more than one Host header', { connection: 'close' });
    req.resume();
    return true;
  }

  function dispatch(ex: ReturnType<Router['match']>, req: IncomingMessage, res: ServerResponse, stats: RequestStats): void {
    if (!ex) {
      sendError(res, 'FLX_NO_ROUTE', `no route matches ${req.url}`);
      return;
    }
    try {
      ex.handle(req, res, stats);
    } catch (err) {
      log.error({ route: ex.route.key, err: (err as Error).message, stack: (err as Error).stack }, 'executor threw');
      sendError(res, 'FLX_INTERNAL', 'Internal Server Error');
    }
  }

  server.on('request', onRequest);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    // Bytes after a request that closes the connection: its answer is the last
    // (announced with Connection: close); nothing may follow it.
    if (err.code === 'HPE_CLOSED_CONNECTION') {
      answerAfterPending(socket, '');
      return;
    }
    const code = err.code === 'HPE_HEADER_OVERFLOW' ? 'FLX_HEADERS_TOO_LARGE' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'FLX_REQUEST_TIMEOUT' : 'FLX_BAD_REQUEST';
    answerAfterPending(socket, CLIENT_ERROR_ANSWER[code]);
  });
  const lane = opts.fastLane ? FastLane.install(server, opts, state, record, observed, log) : null;
  // After the lane: it takes over node:http's one connection listener.
  new WriteStallWatch(opts.sendTimeoutMs, new MemoryReturn(log), (socket, stalledMs) => {
    log.warn({ code: 'FLX_SEND_TIMEOUT', remote: socket.remoteAddress, pending: socket.writableLength, stalledMs }, `client stopped reading for ${stalledMs} ms (--send-timeout ${opts.sendTimeoutMs}); connection closed`);
  }).install(server);
  return { server, lane };
}
