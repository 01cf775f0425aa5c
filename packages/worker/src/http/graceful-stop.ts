/**
 * A worker's graceful stop (the supervisor's `stop` message, or SIGTERM/SIGINT
 * sent to the worker itself, as systemd and a terminal's Ctrl-C do to the whole
 * process group):
 *
 *   server.close()              stop accepting; idle keep-alive connections close now
 *   responses from now on       carry `Connection: close`, so each connection
 *                               closes after its request in flight
 *   last connection closed  ->  exit 0
 *
 * The deadline is the supervisor's: it kills a worker still draining when it
 * passes (a plugin call that hangs blocks this process's event loop anyway).
 */
import http, { type Server } from 'node:http';
import type { Logger } from 'pino';
import type { FastLane } from './fast-lane.js';

/**
 * Every response written from now on closes its connection. Patching the
 * prototype (once, in a process that is about to exit) reaches the responses
 * already in flight — threaded plugin calls whose headers are not written yet —
 * with no per-request hook while serving.
 */
function closeConnectionsAfterResponse(): void {
  const proto = http.ServerResponse.prototype as unknown as { writeHead: (...args: unknown[]) => unknown; shouldKeepAlive: boolean };
  const writeHead = proto.writeHead;
  proto.writeHead = function (this: typeof proto, ...args: unknown[]) {
    this.shouldKeepAlive = false;
    return writeHead.apply(this, args);
  };
}

/** Returns `stop(why)`; calling it again does nothing. */
export function gracefulStop(server: Server, lane: FastLane | null, log: Logger, onClosed: () => void): (why: string) => void {
  let stopping = false;
  return (why: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ why }, 'worker draining: finishing requests in flight');
    closeConnectionsAfterResponse();
    server.close(() => {
      log.info('worker drained');
      onClosed();
    });
    server.closeIdleConnections();
    lane?.stop();
    // A connection that went idle between the response's end and the next
    // request's arrival is caught here; the Connection: close header makes
    // well-behaved clients close first.
    setInterval(() => server.closeIdleConnections(), 250).unref();
  };
}
