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
import { peerOf } from './peer.js';

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
        `${peerOf(req.socket).text} - - "${req.method} ${req.url} HTTP/${req.httpVersion}" ${r.status} ttfb ${ms3(r.ttfbMs)}ms ${r.bytes} ttlb ${ms3(r.ttlbMs)}ms (pre-alloc: ${r.preAlloc}, alloc: ${r.alloc})\n`,
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
  // Per-line work kept to string building: the time's digits once per
  // millisecond, a route's JSON once per route, durations as integer
  // microseconds (see ms3), method unquoted (node's parser admits only tokens).
  let lastNow = -1;
  let nowText = '';
  let lastRoute = '';
  let routeJson = '""';
  return (r) => {
    const { req } = r;
    const now = Date.now();
    if (now !== lastNow) {
      lastNow = now;
      nowText = String(now);
    }
    if (r.route !== lastRoute) {
      lastRoute = r.route;
      routeJson = JSON.stringify(r.route);
    }
    out.write(
      `${head}${nowText}${chindings},"remote":"${peerOf(req.socket).text}","method":"${req.method}","target":${jsonString(req.url!)},"httpVersion":"${req.httpVersion}","route":${routeJson},"status":${r.status},"ttfbMs":${msJson(r.ttfbMs)},"bytes":${r.bytes},"ttlbMs":${msJson(r.ttlbMs)},"preAlloc":${r.preAlloc},"alloc":${r.alloc}}\n`,
    );
  };
}

/**
 * Milliseconds rounded to microseconds, formatted from integers: formatting a
 * fractional double (toFixed, or a rounded number in a template) runs V8's
 * dtoa, several times the cost of two small-integer conversions.
 * ms3 pads to three decimals as toFixed(3) does ("0.120", the text line);
 * msJson writes the number as JSON.stringify would ("0.12", as pino does).
 */
export function ms3(ms: number): string {
  const us = Math.round(ms * 1000);
  if (!(us >= 0 && us < 2147483648)) return ms.toFixed(3);
  const whole = (us / 1000) | 0;
  const frac = us - whole * 1000;
  return `${whole}.${frac >= 100 ? '' : frac >= 10 ? '0' : '00'}${frac}`;
}

export function msJson(ms: number): string {
  const us = Math.round(ms * 1000);
  if (!(us >= 0 && us < 2147483648)) return String(us / 1000);
  const whole = (us / 1000) | 0;
  let frac = us - whole * 1000;
  if (frac === 0) return `${whole}`;
  let digits = 3;
  while (frac % 10 === 0) {
    frac /= 10;
    digits--;
  }
  return `${whole}.${digits === 3 ? (frac >= 100 ? '' : frac >= 10 ? '0' : '00') : digits === 2 ? (frac >= 10 ? '' : '0') : ''}${frac}`;
}

/** s as a JSON string: quoted as is when nothing in it needs escaping (the usual target). */
function jsonString(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) return JSON.stringify(s);
  }
  return `"${s}"`;
}

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** The access record's fields, in the order of the JSON line. */
export function fields(r: AccessRecord): Record<string, unknown> {
  const { req } = r;
  return {
    remote: peerOf(req.socket).text,
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
