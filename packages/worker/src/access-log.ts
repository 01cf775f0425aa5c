/**
 * One line per request with FlexiLib's fields: remote address, method,
 * target, HTTP version, status, ttfb, bytes, ttlb, arena bytes pre-allocated
 * and bytes allocated beyond them. JSON through pino, or FlexiLib's own line:
 *
 *   127.0.0.1:59940 - - "GET / HTTP/1.1" 200 ttfb 0.123ms 11 ttlb 0.150ms (pre-alloc: 8192, alloc: 0)
 *
 * Status 499 (nginx's) means the client went away before the response was complete.
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { LogFormat } from './logger.js';
import { stdoutWriter } from './logger.js';

export interface AccessRecord {
  req: IncomingMessage;
  status: number;
  bytes: number;
  ttfbMs: number;
  ttlbMs: number;
  preAlloc: number;
  alloc: number;
  route: string;
}

export type AccessLogger = (r: AccessRecord) => void;

/**
 * The access logger, or null when LOG_LEVEL is above info: access lines are
 * info events in either format, and a request nobody logs costs nothing.
 */
export function createAccessLog(format: LogFormat, log: Logger): AccessLogger | null {
  if (!log.isLevelEnabled('info')) return null;
  if (format === 'text') {
    const out = stdoutWriter();
    return (r) => {
      const { req } = r;
      out.write(
        `${req.socket.remoteAddress}:${req.socket.remotePort} - - "${req.method} ${req.url} HTTP/${req.httpVersion}" ${r.status} ttfb ${r.ttfbMs.toFixed(3)}ms ${r.bytes} ttlb ${r.ttlbMs.toFixed(3)}ms (pre-alloc: ${r.preAlloc}, alloc: ${r.alloc})\n`,
      );
    };
  }
  const access = log.child({ kind: 'access' });
  return (r) => {
    const { req } = r;
    access.info({
      remote: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
      method: req.method,
      target: req.url,
      httpVersion: req.httpVersion,
      route: r.route,
      status: r.status,
      ttfbMs: Math.round(r.ttfbMs * 1000) / 1000,
      bytes: r.bytes,
      ttlbMs: Math.round(r.ttlbMs * 1000) / 1000,
      preAlloc: r.preAlloc,
      alloc: r.alloc,
    });
  };
}
