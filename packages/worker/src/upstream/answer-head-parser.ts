/**
 * The lean origin client's answer-head parser: a whole head, read straight
 * from the bytes of the shared read buffer (http/socket-reads.ts), in a strict
 * subset of RFC 9112: an HTTP/1.1 status line with a final status, token
 * header names, field values without CTLs, CRLF line ends, no obs-fold, at
 * most one Content-Length of digits only (required unless the answer has no
 * body), no Transfer-Encoding or Proxy-Connection, a Connection of keep-alive
 * or close only. Fuzzed against llhttp (test/fuzz/answer-fuzz.test.ts).
 *
 * Anything outside it is declined, and the connection hands that answer and
 * every later one to node's llhttp (origin-connection.ts), which judges it
 * as before. Why: llhttp consuming the socket costs three calls from C++ into
 * JavaScript per answer (the head, the body, the end of each read) and a
 * fresh string per header, about 7k of a proxied GET's 44k instructions; a
 * read callback and this parse cost a fraction of that (docs/upstreams.md).
 */
import { commonField, DECLINE, digits, field, lowerIs, readField, VALUE } from '../http/field-bytes.js';
import { Latin1Cache } from '../http/latin1-cache.js';

/** More headers than this go to llhttp (which keeps up to 2000). */
const MAX_HEADERS = 100;
/** Content-Length digits read here: 2^53 has 16. */
const MAX_LENGTH_DIGITS = 15;
const STATUS_LINE = Buffer.from('HTTP/1.1 ', 'latin1');
/** Heads up to this long are remembered, to be recognised when repeated. */
const MEMO_BYTES = 2048;

/** Origins' header strings, decoded once while the bytes repeat (one cache for the worker: reads run one at a time). */
const strings = new Latin1Cache();

/**
 * Seconds a kept connection may idle by a Keep-Alive header's value: a second
 * less than its timeout=N (1 to 600), or -1 when it gives none.
 */
export function keepAliveIdle(value: string): number {
  const m = /timeout=(\d+)/i.exec(value);
  return m === null ? -1 : Math.max(1, Math.min(Number(m[1]) - 1, 600));
}

export class AnswerHeadParser {
  status = 0;
  reason = '';
  /** Names and values, flat. The same array as last time while every string repeats; never changed once returned. */
  headers: string[] = [];
  /** Content-Length (-1: none). */
  length = -1;
  /** The origin keeps the connection open (no Connection: close). */
  keepAlive = true;
  /** A second less than the origin's Keep-Alive timeout (-1: it gave none). */
  idleSeconds = -1;
  /** Scratch for the strings of the head being read, compared with `headers`. */
  private next: string[] = [];
  /** The bytes of the last head accepted (its first `memoLength`), and whether it answered a HEAD. */
  private readonly memo = Buffer.allocUnsafe(MEMO_BYTES);
  private memoLength = 0;
  private memoBodiless = false;

  /**
   * Where the head at the start of `buf` ends (its CRLF CRLF), when it is the
   * last head accepted, byte for byte (its reading stands); else -1. An
   * origin sends the same head answer after answer (its Date aside, a new one
   * each second): one compare spares the search for the head's end and its
   * reading (~80 ns against ~500).
   */
  repeated(buf: Buffer, bodilessRequest: boolean): number {
    const len = this.memoLength;
    if (len === 0 || buf.length < len || bodilessRequest !== this.memoBodiless) return -1;
    // The remembered head ends with its first CRLF CRLF: the same bytes end here too.
    return buf.compare(this.memo, 0, len, 0, len) === 0 ? len - 4 : -1;
  }

  /**
   * Parse the head in buf[pos, end + 4) (end: where its CRLF CRLF starts)
   * and remember its bytes for repeated(). `bodilessRequest`: the answer is
   * to a HEAD, so it has no body whatever its head says and needs no
   * Content-Length (nor does a 204 or 304). False for anything outside the
   * subset: llhttp's to judge.
   */
  parse(buf: Buffer, pos: number, end: number, bodilessRequest: boolean): boolean {
    const len = end + 4 - pos;
    if (!this.read(buf, pos, end, bodilessRequest)) {
      this.memoLength = 0;
      return false;
    }
    if (len <= MEMO_BYTES) {
      buf.copy(this.memo, 0, pos, pos + len);
      this.memoLength = len;
      this.memoBodiless = bodilessRequest;
    } else this.memoLength = 0;
    return true;
  }

  private read(buf: Buffer, pos: number, end: number, bodilessRequest: boolean): boolean {
    for (let k = 0; k < STATUS_LINE.length; k++) if (buf[pos + k] !== STATUS_LINE[k]) return false;
    let p = pos + STATUS_LINE.length;
    const status = digits(buf, p, p + 3, 3);
    // 1xx (interim answers) and anything below: llhttp's.
    if (status < 200) return false;
    p += 3;
    let reasonEnd = p;
    if (buf[p] === 32) {
      reasonEnd = ++p;
      while (VALUE[buf[reasonEnd]] === 1) reasonEnd++;
    }
    if (buf[reasonEnd] !== 13 || buf[reasonEnd + 1] !== 10) return false;
    const reason = strings.decode(buf, p, reasonEnd - p);

    const next = this.next;
    let n = 0;
    let length = -1;
    let keepAlive = true;
    let idle = -1;
    for (p = reasonEnd + 2; p < end + 2; p = field.end + 2) {
      if (n >= MAX_HEADERS * 2 || !readField(buf, p)) return false;
      const name = strings.decode(buf, p, field.nameEnd - p);
      const value = strings.decode(buf, field.valueStart, field.valueEnd - field.valueStart);
      if (name.length === 10) {
        if (lowerIs(buf, p, 'connection')) {
          // keep-alive or close; a list (or an upgrade) is llhttp's to read.
          if (value.length === 5 && lowerIs(buf, field.valueStart, 'close')) keepAlive = false;
          else if (!(value.length === 10 && lowerIs(buf, field.valueStart, 'keep-alive'))) return false;
        } else if (lowerIs(buf, p, 'keep-alive')) {
          idle = keepAliveIdle(value);
        }
      } else {
        const common = commonField(buf, p, MAX_LENGTH_DIGITS);
        // A Content-Length once only: llhttp refuses a repeat.
        if (common === DECLINE || (common >= 0 && length >= 0)) return false;
        if (common >= 0) length = common;
      }
      next[n++] = name;
      next[n++] = value;
    }
    if (length < 0 && status !== 204 && status !== 304) {
      // Framed by the connection's end: llhttp's (it reads to the end).
      if (!bodilessRequest) return false;
      // A HEAD's answer without a length: llhttp (judging before it learns the
      // answer has no body) does not keep the connection, nor does node's client; nor this one.
      keepAlive = false;
    }
    next.length = n;
    const prev = this.headers;
    let same = prev.length === n;
    for (let i = 0; same && i < n; i++) same = prev[i] === next[i];
    if (!same) {
      // A new array: the previous one may be kept by whoever compared against it (answer-memo.ts).
      this.headers = next.slice();
    }
    this.status = status;
    this.reason = reason;
    this.length = length;
    this.keepAlive = keepAlive;
    this.idleSeconds = idle;
    return true;
  }
}
