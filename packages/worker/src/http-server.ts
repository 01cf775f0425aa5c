/**
 * The worker's HTTP server: node:http with keep-alive and deliberate limits,
 * dispatching each request to the router's executor.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
// The module binding, not the global: node's global `performance` is a lazy
// accessor, a getter call on every use.
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { AccessLogger, AccessRecord, LoggedRequest } from './access-log.js';
import type { Executor, RequestStats } from './executor.js';
import { FastLane } from './fast-lane.js';
import type { RequestMeter } from './metrics/request-meter.js';
import type { WorkerOptions } from './options.js';
import { sendError } from './respond.js';
import type { Router } from './router.js';
import { WriteStallWatch } from './write-stall.js';

export interface ServerState {
  router: Router;
  /** Counts requests for /metrics; null when metrics are off. Swapped with the router on a config switch. */
  meter: RequestMeter | null;
}

/** Stats of unobserved requests: executors write them, nobody reads them. */
const UNOBSERVED: RequestStats = { preAlloc: 0, alloc: 0, bytes: -1 };

/** A response that holds its request's observation state (it is the request's RequestStats). */
interface ObservedResponse extends ServerResponse, RequestStats {
  startMs: number;
  ttfbMs: number;
  executor: Executor | undefined;
  meter: RequestMeter | null;
}

/**
 * Records a finished request in the metrics and the access log; node:http's
 * responses and the fast lane's answers alike. `ttfbMs` is 0 when unknown;
 * `fast` when the fast lane answered.
 */
export type RequestRecorder = (
  req: LoggedRequest,
  ex: Executor | undefined,
  meter: RequestMeter | null,
  status: number,
  finished: boolean,
  bytes: number,
  preAlloc: number,
  alloc: number,
  startMs: number,
  ttfbMs: number,
  fast: boolean,
) => void;

export function requestRecorder(access: AccessLogger | null): RequestRecorder {
  // One record, refilled for each request: the logger uses it synchronously.
  const rec: AccessRecord = { req: null as unknown as LoggedRequest, status: 0, bytes: 0, ttfbMs: 0, ttlbMs: 0, preAlloc: 0, alloc: 0, route: '-' };
  return (req, ex, meter, status, finished, bytes, preAlloc, alloc, startMs, ttfbMs, fast) => {
    const end = performance.now();
    if (meter) meter.record(ex, status, end - startMs, bytes, alloc, finished, fast);
    if (access) {
      rec.req = req;
      rec.status = status;
      rec.bytes = bytes;
      rec.ttfbMs = (ttfbMs || end) - startMs;
      rec.ttlbMs = end - startMs;
      rec.preAlloc = preAlloc;
      rec.alloc = alloc;
      rec.route = ex ? ex.route.key : '-';
      access(rec);
      rec.req = null as unknown as LoggedRequest;
    }
  };
}

/**
 * The ServerResponse class of an observed server: node:http makes one per
 * request, with the fields initialised in the constructor (one hidden class),
 * and its 'close' records the request in the metrics and the access log.
 */
function observedResponseClass(record: RequestRecorder): typeof http.ServerResponse {
  function recordResponse(res: ObservedResponse): void {
    const len = res.bytes >= 0 ? res.bytes : res.getHeader('content-length');
    const bytes = typeof len === 'number' ? len : Number(len ?? 0);
    const finished = res.writableFinished;
    // nginx's 499: the client closed the connection before the response was complete
    const status = finished ? res.statusCode : 499;
    record(res.req, res.executor, res.meter, status, finished, bytes, res.preAlloc, res.alloc, res.startMs, res.ttfbMs, false);
  }
  return class extends http.ServerResponse implements RequestStats {
    preAlloc = 0;
    alloc = 0;
    bytes = -1;
    startMs = 0;
    ttfbMs = 0;
    executor: Executor | undefined = undefined;
    meter: RequestMeter | null = null;
    private recorded = false;

    // Fixed arity: a rest parameter would make an array on every emit, and a
    // response emits several events per request. node emits a response's
    // events with at most one argument ('error', 'pipe', 'unpipe'); up to
    // three are passed on, each call with the count it was given.
    override emit(event: string | symbol, a?: unknown, b?: unknown, c?: unknown): boolean {
      // node emits 'close' once; the guard keeps a second one from counting twice.
      if (event === 'close' && !this.recorded) {
        this.recorded = true;
        recordResponse(this as unknown as ObservedResponse);
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

/** The worker's server, and the fast lane in front of it (null when turned off). */
export interface WorkerServer {
  server: http.Server;
  lane: FastLane | null;
}

export function createHttpServer(opts: WorkerOptions, state: ServerState, log: Logger, access: AccessLogger | null): WorkerServer {
  // Observed requests (access log or metrics on) are recorded when their
  // response emits 'close' ('close' rather than 'finish', so a response the
  // client walked away from is counted too and leaves the in-flight gauge).
  // The response object itself carries the request's state and reports its
  // own 'close': no closure, stats object or listener per request.
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
    ServerResponse: Response,
  });

  const onRequest = observed
    ? (req: IncomingMessage, res: ServerResponse) => {
        const o = res as ObservedResponse;
        o.startMs = performance.now();
        const ex = state.router.match(req);
        o.executor = ex;
        const meter = state.meter;
        o.meter = meter;
        if (meter) meter.begin();
        dispatch(ex, req, res, o);
        if (res.headersSent) o.ttfbMs = performance.now();
      }
    : (req: IncomingMessage, res: ServerResponse) => {
        dispatch(state.router.match(req), req, res, UNOBSERVED);
      };

  function dispatch(ex: ReturnType<Router['match']>, req: IncomingMessage, res: ServerResponse, stats: RequestStats): void {
    if (!ex) {
      sendError(res, 404, `no route matches ${req.url}`);
      return;
    }
    try {
      ex.handle(req, res, stats);
    } catch (err) {
      log.error({ route: ex.route.key, err: (err as Error).message, stack: (err as Error).stack }, 'executor threw');
      sendError(res, 500, 'Internal Server Error');
    }
  }

  server.on('request', onRequest);
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const reason = status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request';
    socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain\r\nconnection: close\r\ncontent-length: ${reason.length + 1}\r\n\r\n${reason}\n`);
  });
  const lane = opts.fastLane ? FastLane.install(server, opts, state, record, observed, log) : null;
  // After the lane: it takes over node:http's one connection listener.
  new WriteStallWatch(opts.sendTimeoutMs, (socket, stalledMs) => {
    log.warn({ code: 'FLX_SEND_TIMEOUT', remote: socket.remoteAddress, pending: socket.writableLength, stalledMs }, `client stopped reading for ${stalledMs} ms (--send-timeout ${opts.sendTimeoutMs}); connection closed`);
  }).install(server);
  return { server, lane };
}
