/**
 * The fast lane's request-head parser: a whole head, in the lane's strict
 * subset of RFC 9112 (token header names, field values without CTLs, CRLF
 * line ends, no obs-fold, origin-form targets, at most one Content-Length of
 * digits only, no Transfer-Encoding or Expect), read into one reused request
 * object. Anything outside it is declined, for node:http (llhttp) to judge.
 */
import type { Socket } from 'node:net';
import { commonField, DECLINE, field, lowerIs, readField } from './field-bytes.js';
import { Latin1Cache } from './latin1-cache.js';

/** More headers than this go to node:http (which keeps up to 2000). */
const MAX_LANE_HEADERS = 100;
/** Content-Length digits the lane reads; a longer one is far past any body limit, node:http's to refuse. */
const MAX_LENGTH_DIGITS = 9;

/** Bytes allowed in a request target (visible ASCII). */
const TARGET = new Uint8Array(256);
for (let c = 33; c <= 126; c++) TARGET[c] = 1;

/** Methods the lane serves (each followed by SP); any other is node:http's to judge. */
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'].map((m) => ({ name: m, bytes: Buffer.from(`${m} `, 'latin1') }));
const VERSION = Buffer.from(' HTTP/1.1\r\n', 'latin1');

/** The request the lane hands the router and executors: reused, valid during one call. */
export interface LaneRequest {
  method: string;
  url: string;
  rawHeaders: string[];
  httpVersionMajor: number;
  httpVersionMinor: number;
  httpVersion: string;
  socket: Socket;
  /** The whole body (Content-Length framed), set by the lane once it has it; undefined without one. */
  body: Buffer | undefined;
}

/** Reads request heads into its one LaneRequest (the lane's, reused request after request). */
export class RequestHeadParser {
  readonly req: LaneRequest = { method: '', url: '', rawHeaders: [], httpVersionMajor: 1, httpVersionMinor: 1, httpVersion: '1.1', socket: null as unknown as Socket, body: undefined };
  /** The last head's Content-Length (0 without one). */
  bodyLength = 0;
  /** Header strings decoded before, reused while clients send the same bytes. */
  private readonly strings = new Latin1Cache();

  /**
   * Parse the head in chunk[pos, end + 4) into req. False for anything
   * outside the lane's strict subset (node:http will judge it).
   */
  parse(buf: Buffer, pos: number, end: number, socket: Socket): boolean {
    const req = this.req;
    const strings = this.strings;
    let method: string | undefined;
    for (let m = 0; m < METHODS.length && method === undefined; m++) {
      const bytes = METHODS[m].bytes;
      let i = 0;
      while (i < bytes.length && buf[pos + i] === bytes[i]) i++;
      if (i === bytes.length) method = METHODS[m].name;
    }
    if (method === undefined) return false;
    const t = pos + method.length + 1;
    if (buf[t] !== 47 /* / */) return false;
    let i = t + 1;
    while (TARGET[buf[i]] === 1) i++;
    for (let k = 0; k < VERSION.length; k++) if (buf[i + k] !== VERSION[k]) return false;
    req.method = method;
    req.url = strings.decode(buf, t, i - t);
    req.socket = socket;

    const raw = req.rawHeaders;
    let n = 0;
    let host = false;
    let length = false;
    let bodyLength = 0;
    for (let p = i + VERSION.length; p < end + 2; p = field.end + 2) {
      if (n >= MAX_LANE_HEADERS * 2 || !readField(buf, p)) return false;
      const nameLen = field.nameEnd - p;
      const v = field.valueStart;
      switch (nameLen) {
        case 4:
          if (lowerIs(buf, p, 'host')) {
            // A second Host is node:http's path's to refuse (http-server.ts).
            if (host) return false;
            host = true;
          }
          break;
        case 6:
          if (lowerIs(buf, p, 'expect')) return false;
          break;
        case 7:
          if (lowerIs(buf, p, 'upgrade')) return false;
          break;
        case 10:
          // Only an explicit keep-alive stays: close (and anything else) is node's to honour.
          if (lowerIs(buf, p, 'connection') && !(field.valueEnd - v === 10 && lowerIs(buf, v, 'keep-alive'))) return false;
          break;
        default: {
          // Content-Length once only (llhttp refuses a repeat); Transfer-Encoding and Proxy-Connection are node's.
          const common = commonField(buf, p, MAX_LENGTH_DIGITS);
          if (common === DECLINE || (common >= 0 && length)) return false;
          if (common >= 0) {
            bodyLength = common;
            length = true;
          }
        }
      }
      raw[n++] = strings.decode(buf, p, nameLen);
      raw[n++] = strings.decode(buf, v, field.valueEnd - v);
    }
    if (!host) return false;
    raw.length = n;
    this.bodyLength = bodyLength;
    return true;
  }
}
