/**
 * The worker's HTTP server: node:http with keep-alive and deliberate limits,
 * dispatching each request to the router's executor.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { AccessLogger } from './access-log.js';
import type { RequestStats } from './executor.js';
import type { RequestMeter } from './metrics/request-meter.js';
import type { WorkerOptions } from './options.js';
import { sendError } from './respond.js';
import type { Router } from './router.js';

export interface ServerState {
  router: Router;
  /** Counts requests for /metrics; null when metrics are off. Swapped with the router on a config switch. */
  meter: RequestMeter | null;
}

export function createHttpServer(opts: WorkerOptions, state: ServerState, log: Logger, access: AccessLogger | null): http.Server {
  const server = http.createServer({
    maxHeaderSize: opts.maxHeaderBytes,
    keepAliveTimeout: opts.keepAliveTimeoutMs,
    headersTimeout: opts.headersTimeoutMs,
    requestTimeout: opts.requestTimeoutMs,
    // How often node checks those two timeouts (default 30 s would let a slow
    // client hold a connection far past its deadline).
    connectionsCheckingInterval: Math.min(1000, Math.max(100, opts.headersTimeoutMs / 4)),
    noDelay: true,
  });

  // Observed requests (access log or metrics on) get one 'close' listener that
  // feeds both; 'close' rather than 'finish' so a response the client walked
  // away from is counted too (and leaves the in-flight gauge).
  const onRequest = access || state.meter
    ? (req: IncomingMessage, res: ServerResponse) => {
        const start = performance.now();
        const stats: RequestStats = { preAlloc: 0, alloc: 0, bytes: -1 };
        const ex = state.router.match(req);
        const meter = state.meter;
        if (meter) meter.begin();
        let ttfb = 0;
        res.once('close', () => {
          const end = performance.now();
          const len = stats.bytes >= 0 ? stats.bytes : res.getHeader('content-length');
          const bytes = typeof len === 'number' ? len : Number(len ?? 0);
          const finished = res.writableFinished;
          if (meter) meter.record(ex, res.statusCode, end - start, bytes, stats.alloc, finished);
          if (access) {
            access({
              req,
              // nginx's 499: the client closed the connection before the response was complete
              status: finished ? res.statusCode : 499,
              bytes,
              ttfbMs: (ttfb || end) - start,
              ttlbMs: end - start,
              preAlloc: stats.preAlloc,
              alloc: stats.alloc,
              route: ex ? ex.route.key : '-',
            });
          }
        });
        dispatch(ex, req, res, stats);
        if (res.headersSent) ttfb = performance.now();
      }
    : (req: IncomingMessage, res: ServerResponse) => {
        dispatch(state.router.match(req), req, res, { preAlloc: 0, alloc: 0, bytes: -1 });
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
  return server;
}
