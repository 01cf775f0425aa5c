/**
 * The head of a fast-lane answer: status line and headers exactly as
 * node:http writes them (its order, Date, Connection and Keep-Alive,
 * Transfer-Encoding), checked by node's own validators.
 *
 * A head repeats: a plugin's strings, an origin's answer (its Date aside,
 * which changes once a second). The last one built is kept with what it was
 * built from, and returned again while the inputs repeat: comparing a dozen
 * strings costs a fraction of concatenating (and later flattening) them.
 */
import { STATUS_CODES, validateHeaderName, validateHeaderValue } from 'node:http';
import { sameLower, sameStrings } from './raw-headers.js';

/** An answer's head as built: the writer's one reused object, read at once by the caller. */
export interface BuiltHead {
  /** Status line and header lines, ending in the blank line. */
  readonly text: string;
  /** The connection closes after this answer (graceful stop, or the answer's Connection: close). */
  readonly closeAfter: boolean;
}

export class AnswerHeadWriter {
  private readonly keepAliveLine: string;
  /** What build() returns: refilled by each call. */
  private readonly built: { text: string; closeAfter: boolean } = { text: '', closeAfter: false };
  /** Header names, and values, that passed node's validators (a plugin's strings repeat). */
  private readonly validNames = new Set<string>();
  private readonly validValues = new Set<string>();
  /** What the head in `built` was built from (`lastHeaders` null: nothing yet). */
  private lastStatus = 0;
  private lastReason: string | undefined;
  private lastHeaders: string[] | null = null;
  private lastChunked = false;
  private lastStopping = false;
  /** The Date the head was given (the answer had none), or null. */
  private lastDate: string | null = null;

  constructor(keepAliveTimeoutMs: number) {
    const seconds = Math.floor(keepAliveTimeoutMs / 1000);
    // node:http's own: Connection: keep-alive, and Keep-Alive when it has an idle timeout.
    this.keepAliveLine = keepAliveTimeoutMs > 0 ? `Connection: keep-alive\r\nKeep-Alive: timeout=${seconds}\r\n` : 'Connection: keep-alive\r\n';
  }

  /**
   * The status line and headers by node:http's rules, in its order
   * (the answer's headers, Date, Connection and Keep-Alive, Transfer-Encoding);
   * throws node's error for what node would refuse. `stopping`: the server is stopping, so the
   * answer closes its connection. The result is valid until the next call.
   * `parsed`: names and values as a strict HTTP parser (llhttp, an origin's
   * answer) accepted them, which node's validators accept too: not checked
   * again (a reason phrase is, llhttp takes more there).
   */
  build(status: number, reason: string | undefined, h: string[], chunked: boolean, stopping: boolean, parsed = false): BuiltHead {
    if (!(status >= 100 && status <= 999) || status !== Math.floor(status)) {
      throw Object.assign(new RangeError(`Invalid status code: ${status}`), { code: 'ERR_HTTP_INVALID_STATUS_CODE' });
    }
    const last = this.lastHeaders;
    if (
      last !== null &&
      status === this.lastStatus &&
      reason === this.lastReason &&
      chunked === this.lastChunked &&
      stopping === this.lastStopping &&
      sameStrings(h, last) &&
      (this.lastDate === null || this.lastDate === utcDate())
    ) {
      return this.built;
    }
    const given = reason;
    if (reason === undefined) reason = STATUS_CODES[status] ?? 'unknown';
    else if (!this.validValues.has(reason)) {
      // node's writeHead's own check and error for a reason phrase (not validateHeaderValue's wording).
      if (INVALID_CHAR.test(reason)) throw Object.assign(new TypeError('Invalid character in statusMessage'), { code: 'ERR_INVALID_CHAR' });
      remember(this.validValues, reason);
    }
    let head = `HTTP/1.1 ${status} ${reason}\r\n`;
    let date = false;
    let connection = false;
    let keepAlive = false;
    let close = stopping;
    for (let i = 0; i < h.length; i += 2) {
      const name = h[i];
      const value = h[i + 1];
      if (!parsed) this.check(name, value);
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
    const dated = date ? null : utcDate();
    if (dated !== null) head += `Date: ${dated}\r\n`;
    if (!connection) head += close ? 'Connection: close\r\n' : keepAlive ? 'Connection: keep-alive\r\n' : this.keepAliveLine;
    const built = this.built;
    built.text = chunked ? `${head}Transfer-Encoding: chunked\r\n\r\n` : `${head}\r\n`;
    built.closeAfter = close;
    this.lastStatus = status;
    this.lastReason = given;
    this.lastHeaders = h.slice();
    this.lastChunked = chunked;
    this.lastStopping = stopping;
    this.lastDate = dated;
    return built;
  }

  /** node:http's header validation, remembered for strings seen valid before. */
  private check(name: string, value: string): void {
    if (!this.validNames.has(name)) {
      validateHeaderName(name);
      remember(this.validNames, name);
    }
    if (!this.validValues.has(value)) {
      validateHeaderValue(name, value);
      remember(this.validValues, value);
    }
  }
}

/** node's checkInvalidHeaderChar (_http_common), which writeHead applies to a reason phrase. */
const INVALID_CHAR = /[^\t\x20-\x7e\x80-\xff]/;

function remember(set: Set<string>, s: string): void {
  if (set.size >= 4096) set.clear();
  set.add(s);
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
