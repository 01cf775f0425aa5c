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
import pino, { type Logger } from 'pino';
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
  // The same record pino's `log.child({kind: 'access'}).info({...})` writes,
  // built directly: pino's generic serializer costs several times more than
  // the rest of a request's logging, and this shape never changes. The
  // bindings come from pino itself (its chindings: `,"pid":…,"role":…,"kind":"access"`).
  const access = log.child({ kind: 'access' });
  const chindings = (access as unknown as Record<symbol, unknown>)[pino.symbols.chindingsSym];
  if (typeof chindings !== 'string') {
    return (r) => access.info(fields(r));
  }
  const out = stdoutWriter();
  const head = `{"level":${pino.levels.values.info},"time":`;
  return (r) => {
    const { req } = r;
    out.write(
      `${head}${Date.now()}${chindings},"remote":"${req.socket.remoteAddress}:${req.socket.remotePort}","method":${JSON.stringify(req.method)},"target":${JSON.stringify(req.url)},"httpVersion":"${req.httpVersion}","route":${JSON.stringify(r.route)},"status":${r.status},"ttfbMs":${round3(r.ttfbMs)},"bytes":${r.bytes},"ttlbMs":${round3(r.ttlbMs)},"preAlloc":${r.preAlloc},"alloc":${r.alloc}}\n`,
    );
  };
}

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** The access record's fields, in the order of the JSON line. */
export function fields(r: AccessRecord): Record<string, unknown> {
  const { req } = r;
  return {
    remote: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
    method: req.method,
    target: req.url,
    httpVersion: req.httpVersion,
    route: r.route,
    status: r.status,
    ttfbMs: round3(r.ttfbMs),
    bytes: r.bytes,
    ttlbMs: round3(r.ttlbMs),
    preAlloc: r.preAlloc,
    alloc: r.alloc,
  };
}
