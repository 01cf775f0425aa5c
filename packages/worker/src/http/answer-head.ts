/**
 * The head of a fast-lane answer: status line and headers exactly as
 * node:http writes them (its order, Date, Connection and Keep-Alive,
 * Transfer-Encoding), checked by node's own validators.
 */
import { STATUS_CODES, validateHeaderName, validateHeaderValue } from 'node:http';
import { sameLower } from './raw-headers.js';

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
   */
  build(status: number, reason: string | undefined, h: string[], chunked: boolean, stopping: boolean): BuiltHead {
    if (!(status >= 100 && status <= 999) || status !== Math.floor(status)) {
      throw Object.assign(new RangeError(`Invalid status code: ${status}`), { code: 'ERR_HTTP_INVALID_STATUS_CODE' });
    }
    if (reason === undefined) reason = STATUS_CODES[status] ?? 'unknown';
    else this.check('statusMessage', reason, false);
    let head = `HTTP/1.1 ${status} ${reason}\r\n`;
    let date = false;
    let connection = false;
    let keepAlive = false;
    let close = stopping;
    for (let i = 0; i < h.length; i += 2) {
      const name = h[i];
      const value = h[i + 1];
      this.check(name, value, true);
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
    if (!date) head += `Date: ${utcDate()}\r\n`;
    if (!connection) head += close ? 'Connection: close\r\n' : keepAlive ? 'Connection: keep-alive\r\n' : this.keepAliveLine;
    const built = this.built;
    built.text = chunked ? `${head}Transfer-Encoding: chunked\r\n\r\n` : `${head}\r\n`;
    built.closeAfter = close;
    return built;
  }

  /** node:http's header validation, remembered for strings seen valid before. */
  private check(name: string, value: string, isHeader: boolean): void {
    if (isHeader && !this.validNames.has(name)) {
      validateHeaderName(name);
      remember(this.validNames, name);
    }
    if (!this.validValues.has(value)) {
      validateHeaderValue(isHeader ? name : 'statusMessage', value);
      remember(this.validValues, value);
    }
  }
}

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
