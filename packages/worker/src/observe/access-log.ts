/**
 * One line per request with FlexiLib's fields: remote address, method,
 * target, HTTP version, status, ttfb, bytes, ttlb, arena bytes pre-allocated
 * and bytes allocated beyond them. JSON through pino, or FlexiLib's own line:
 *
 *   127.0.0.1:59940 - - "GET / HTTP/1.1" 200 ttfb 0.123ms 11 ttlb 0.150ms (pre-alloc: 8192, alloc: 0)
 *
 * Status 499 (nginx's) means the client went away before the response was complete.
 */
import pino, { type Logger } from 'pino';
import type { LogFormat } from './logger.js';
import { stdoutWriter } from './logger.js';
import type { Latin1Buffer } from '../http/latin1-cache.js';
import { LINE_ROOM, type LineWriter } from './line-writer.js';
import { peerOf, type Peer } from '../http/peer.js';

/** What the access line reads of a request: node's IncomingMessage, or the fast lane's request. */
export interface LoggedRequest {
  socket: { remoteAddress?: string; remotePort?: number };
  method?: string;
  url?: string;
  httpVersion: string;
}

export interface AccessRecord {
  req: LoggedRequest;
  status: number;
  bytes: number;
  ttfbMs: number;
  ttlbMs: number;
  /** The call's arena; logged as `preAlloc`, FlexiLib's name for it. */
  arenaBytes: number;
  alloc: number;
  route: string;
}

export type AccessLogger = (r: AccessRecord) => void;

/** LineWriter's `soon` for access lines: they may wait a few milliseconds for their batch (line-writer.ts). */
const MAY_WAIT = false;

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
        `${peerOf(req.socket).text} - - "${req.method} ${req.url} HTTP/${req.httpVersion}" ${r.status} ttfb ${ms3(r.ttfbMs)}ms ${r.bytes} ttlb ${ms3(r.ttlbMs)}ms (pre-alloc: ${r.arenaBytes}, alloc: ${r.alloc})\n`,
        MAY_WAIT,
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
  const line = new JsonAccessLine(`{"level":${pino.levels.values.info},"time":`, chindings);
  const out = stdoutWriter();
  return (r) => {
    if (!line.encode(r, Date.now(), out)) out.write(line.text(r, Date.now()), MAY_WAIT);
  };
}

/** Targets longer than this take the string path. */
const MAX_ENCODED_TARGET = 16 * 1024;

/**
 * pino's JSON access record, made two ways that give the same bytes:
 * encode() writes it straight into the log writer's batch buffer (no string
 * concatenation, no flattening, no UTF-8 conversion); text() builds the
 * string, for what encode() leaves out (a target that needs JSON escaping or
 * is very long) and as the reference the tests compare with.
 *
 * encode() copies the line's fixed runs as cached byte segments, with digits
 * written in between. A TypedArray#set costs about 200 instructions a call,
 * so the long runs are few and the short constants are copied by a loop:
 *
 *   {"level":30,"time":<now>  ,"pid":…,"remote":"<peer>","method":"<M>","target":"<t>","httpVersion":"1.1","route":"/","status":
 *   [head and time, per ms]   [per connection: method, target, version and route as its last request's]
 *   <status>,"ttfbMs":<ms>,"bytes":<n>,"ttlbMs":<ms>,"preAlloc":8192,"alloc":<n>}
 *           [constants]                                [per arena size]
 *
 * A connection whose target changes from one request to the next (ids in
 * the path) gets its run in three pieces instead: the part up to "target":,
 * the target, and the part from "httpVersion"; the whole run is kept once a
 * target repeats.
 */
export class JsonAccessLine {
  // The string form's per-line work kept small too: the time's digits once
  // per millisecond, a route's JSON once per route, durations as integer
  // microseconds (see ms3), method unquoted (node's parser admits only tokens).
  private lastNow = -1;
  private nowText = '';
  private lastRoute = '';
  private routeJson = '""';
  /** The head with the time's digits after it, rewritten in place when the millisecond changes. */
  private timeHead: Uint8Array;
  private timeNow = -1;
  private runVersion = '';
  private runRoute = '';
  private versionRoute: Uint8Array = ascii('');
  private arenaKey = -1;
  private arenaRunBytes: Uint8Array = ascii('');

  constructor(
    private readonly head: string,
    private readonly chindings: string,
  ) {
    this.timeHead = ascii(head);
  }

  private route(route: string): void {
    if (route === this.lastRoute) return;
    this.lastRoute = route;
    this.routeJson = JSON.stringify(route);
  }

  text(r: AccessRecord, now: number): string {
    const { req } = r;
    if (now !== this.lastNow) {
      this.lastNow = now;
      this.nowText = String(now);
    }
    this.route(r.route);
    return `${this.head}${this.nowText}${this.chindings},"remote":"${peerOf(req.socket).text}","method":"${req.method}","target":${jsonString(req.url!)},"httpVersion":"${req.httpVersion}","route":${this.routeJson},"status":${r.status},"ttfbMs":${msJson(r.ttfbMs)},"bytes":${r.bytes},"ttlbMs":${msJson(r.ttlbMs)},"preAlloc":${r.arenaBytes},"alloc":${r.alloc}}\n`;
  }

  /** Encode the line into out's batch; false (nothing written) when text() must make it. */
  encode(r: AccessRecord, now: number, out: LineWriter): boolean {
    const { req } = r;
    const target = req.url!;
    if (target.length > MAX_ENCODED_TARGET) return false;
    const version = req.httpVersion;
    const route = r.route;
    const conn = this.connection(peerOf(req.socket), req.method!);
    const arenaRun = this.arenaRun(r.arenaBytes);
    if (now !== this.timeNow) this.setTime(now);
    const u8 = out.room;
    let p = putBytes(u8, out.end, this.timeHead);
    const repeated = target === conn.target && version === conn.version && route === conn.route;
    if (repeated && conn.whole !== null) {
      p = putBytes(u8, p, conn.whole);
    } else {
      const versionRoute = this.versionRouteRun(version, route);
      // The whole line must fit the writer's free room (a long route key or
      // binding could otherwise push it past the buffer's end).
      const fixed = this.timeHead.length + conn.toTarget.length + versionRoute.length + arenaRun.length + TAIL_ROOM;
      if (fixed + target.length + 2 > LINE_ROOM) return false;
      const from = p;
      p = putBytes(u8, p, conn.toTarget);
      p = putJsonAscii(u8, p, target);
      if (p < 0) return false;
      p = putBytes(u8, p, versionRoute);
      if (repeated) {
        // Seen twice in a row on this connection: keep the run whole (at most MAX_WHOLE_RUN bytes).
        if (p - from <= MAX_WHOLE_RUN) conn.whole = new Uint8Array(u8.subarray(from, p));
      } else {
        conn.target = target;
        conn.version = version;
        conn.route = route;
        conn.whole = null;
      }
    }
    p = putUint(u8, p, r.status);
    p = putShort(u8, p, K_TTFB);
    const ttfbAt = p;
    p = putMs(u8, p, r.ttfbMs);
    const ttfbEnd = p;
    p = putShort(u8, p, K_BYTES);
    p = putUint(u8, p, r.bytes);
    p = putShort(u8, p, K_TTLB);
    // An answer made in one go has its first and last byte ready at once: the same digits.
    if (r.ttlbMs === r.ttfbMs) {
      for (let i = ttfbAt; i < ttfbEnd; i++) u8[p++] = u8[i];
    } else p = putMs(u8, p, r.ttlbMs);
    p = putShort(u8, p, arenaRun);
    p = putUint(u8, p, r.alloc);
    u8[p++] = 0x7d; // }
    u8[p++] = 0x0a; // \n
    out.commit(p, MAY_WAIT);
    return true;
  }

  /**
   * The connection's runs, for the method of this request: kept on the
   * connection's Peer (one per socket, gone with it), for this line only.
   */
  private connection(peer: Peer, method: string): ConnectionRun {
    const run = peer.logRun as ConnectionRun | undefined;
    if (run !== undefined && run.method === method && run.line === this) return run;
    const fresh: ConnectionRun = {
      line: this,
      method,
      toTarget: utf8(`${this.chindings},"remote":"${peer.text}","method":"${method}","target":`),
      target: '',
      version: '',
      route: '',
      whole: null,
    };
    peer.logRun = fresh;
    return fresh;
  }

  private setTime(now: number): void {
    this.timeNow = now;
    const at = this.head.length;
    // The digits' count changes only in 2286 (or for an odd clock): then the run is made anew.
    if (putTime(this.timeHead, at, now) !== this.timeHead.length) {
      const buf = new Uint8Array(at + 24);
      buf.set(this.timeHead.subarray(0, at));
      this.timeHead = buf.slice(0, putTime(buf, at, now));
    }
  }

  private versionRouteRun(version: string, route: string): Uint8Array {
    if (version !== this.runVersion || route !== this.runRoute) {
      this.route(route);
      this.runVersion = version;
      this.runRoute = route;
      this.versionRoute = utf8(`,"httpVersion":"${version}","route":${this.routeJson},"status":`);
    }
    return this.versionRoute;
  }

  private arenaRun(arenaBytes: number): Uint8Array {
    if (arenaBytes !== this.arenaKey) {
      this.arenaKey = arenaBytes;
      this.arenaRunBytes = ascii(`,"preAlloc":${arenaBytes},"alloc":`);
    }
    return this.arenaRunBytes;
  }
}

/** A connection's cached runs: up to "target":, and the whole run to "status": for its last target, version and route. */
interface ConnectionRun {
  line: JsonAccessLine;
  method: string;
  toTarget: Uint8Array;
  target: string;
  version: string;
  route: string;
  whole: Uint8Array | null;
}

/** A whole run longer than this (a long target or route) is not kept: the cache costs each connection at most this. */
const MAX_WHOLE_RUN = 512;

function ascii(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'latin1'));
}

function utf8(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s));
}

const K_TTFB = ascii(',"ttfbMs":');
const K_BYTES = ascii(',"bytes":');
const K_TTLB = ascii(',"ttlbMs":');
/** Bytes after the status at most: the constants and six numbers' digits, the closing brace and newline. */
const TAIL_ROOM = K_TTFB.length + K_BYTES.length + K_TTLB.length + 160;

// Constant bytes by TypedArray#set (a memmove; a JS loop costs several
// instructions a byte), strings of a few dozen bytes by a JS loop (a call to
// Buffer#write costs more than the copy).

function putBytes(u8: Uint8Array, p: number, b: Uint8Array): number {
  u8.set(b, p);
  return p + b.length;
}

/** A run of a few dozen bytes: a loop costs less than TypedArray#set's call. */
function putShort(u8: Uint8Array, p: number, b: Uint8Array): number {
  const n = b.length;
  for (let i = 0; i < n; i++) u8[p + i] = b[i];
  return p + n;
}

/** A string known to be ASCII (addresses, methods, versions, digits). */
function putAscii(u8: Uint8Array, p: number, s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) u8[p + i] = s.charCodeAt(i);
  return p + n;
}

/** s quoted as JSON when it needs no escaping and is ASCII; -1 otherwise. */
function putJsonAscii(u8: Uint8Array, p: number, s: string): number {
  const n = s.length;
  u8[p] = 0x22;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) return -1;
    u8[p + 1 + i] = c;
  }
  u8[p + 1 + n] = 0x22;
  return p + n + 2;
}

/** Date.now()'s digits, without dtoa: two integer halves (ms since 1970 passes 2^31). */
function putTime(u8: Uint8Array, p: number, now: number): number {
  if (!(now >= 1e6 && now < 2147483648 * 1e6)) return putAscii(u8, p, String(now));
  const hi = Math.floor(now / 1e6);
  let lo = now - hi * 1e6;
  p = putUint(u8, p, hi);
  for (let i = p + 5; i >= p; i--) {
    const q = (lo / 10) | 0;
    u8[i] = 0x30 + lo - q * 10;
    lo = q;
  }
  return p + 6;
}

/** A non-negative integer's decimal digits. */
function putUint(u8: Uint8Array, p: number, v: number): number {
  if (!(v >= 0 && v < 2147483648 && v === Math.floor(v))) return putAscii(u8, p, String(v));
  let n = v | 0;
  let digits = 1;
  for (let t = n; t >= 10; t = (t / 10) | 0) digits++;
  for (let i = p + digits - 1; i >= p; i--) {
    const q = (n / 10) | 0;
    u8[i] = 0x30 + n - q * 10;
    n = q;
  }
  return p + digits;
}

/**
 * Milliseconds rounded to microseconds as JSON.stringify prints that number
 * ("0.12", as pino does): integer digits, trailing zeros of the fraction dropped.
 */
function putMs(u8: Uint8Array, p: number, ms: number): number {
  const us = Math.round(ms * 1000);
  if (!(us >= 0 && us < 2147483648)) return putAscii(u8, p, String(us / 1000));
  const whole = (us / 1000) | 0;
  const frac = us - whole * 1000;
  p = putUint(u8, p, whole);
  if (frac === 0) return p;
  const d1 = (frac / 100) | 0;
  const d2 = ((frac / 10) | 0) % 10;
  const d3 = frac % 10;
  u8[p++] = 0x2e; // .
  u8[p++] = 0x30 + d1;
  if (d2 !== 0 || d3 !== 0) u8[p++] = 0x30 + d2;
  if (d3 !== 0) u8[p++] = 0x30 + d3;
  return p;
}

/**
 * Milliseconds rounded to microseconds, formatted from integers: formatting a
 * fractional double (toFixed, or a rounded number in a template) runs V8's
 * dtoa, several times the cost of two small-integer conversions.
 * ms3 pads to three decimals as toFixed(3) does ("0.120", the text line);
 * msJson (from putMs) writes the number as JSON.stringify would ("0.12").
 */
export function ms3(ms: number): string {
  const us = Math.round(ms * 1000);
  if (!(us >= 0 && us < 2147483648)) return ms.toFixed(3);
  const whole = (us / 1000) | 0;
  const frac = us - whole * 1000;
  return `${whole}.${frac >= 100 ? '' : frac >= 10 ? '0' : '00'}${frac}`;
}

/** The digits putMs writes, as a string (the string form of the line uses them). */
export function msJson(ms: number): string {
  return msScratch.latin1Slice(0, putMs(msScratch, 0, ms));
}

const msScratch = Buffer.alloc(32) as Latin1Buffer;

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
    preAlloc: r.arenaBytes,
    alloc: r.alloc,
  };
}
