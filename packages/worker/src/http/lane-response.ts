/**
 * The response of a fast-lane request answered asynchronously (an upstream,
 * threaded native or WASM route): the part of node's ServerResponse those
 * executors use (ResponseSink), written straight to the connection's socket
 * by node:http's rules.
 *
 *   writeHead  the head is built (and validated) now, sent with the first bytes
 *   write      chunked framing when there is no Content-Length, as node:http
 *   end        the last chunk; the lane records the request (before the
 *              bytes leave) and reads on
 *   'close'    once: complete, or the client went away first (logged as 499)
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { LoggedRequest } from '../observe/access-log.js';
import type { Executor, ResponseSink, RequestStats } from '../executor.js';
import type { RequestMeter } from '../observe/metrics/request-meter.js';
import { contentLengthOf } from './raw-headers.js';
import type { BuiltHead } from './answer-head.js';

/** What a LaneResponse needs of its lane (fast-lane.ts). */
export interface LaneOwner {
  /** Status line and headers by node:http's rules; throws node's errors. */
  head(status: number, reason: string | undefined, headers: string[], chunked: boolean, parsed: boolean): BuiltHead;
  /** Record the response (`finished`: complete; false: cut off): called before its last bytes leave. */
  recordAnswer(res: LaneResponse, finished: boolean): void;
  /** The response is over (`finished`: completely written); the lane reads on. */
  settled(res: LaneResponse, finished: boolean): void;
}

/** The largest first body chunk copied in with the head (one write); larger ones go out as they are. */
const JOIN_MAX = 16 * 1024;
/** node's latin1 encoder, called directly (Buffer#write first normalises its arguments in JS). */
type Latin1Writable = Buffer & { latin1Write(s: string, offset: number, length: number): number };

function headersSent(): Error {
  return Object.assign(new Error('Cannot write headers after they are sent to the client'), { code: 'ERR_HTTP_HEADERS_SENT' });
}

export class LaneResponse implements ResponseSink, RequestStats {
  arenaBytes = 0;
  alloc = 0;
  /** Body bytes, as the executor reports them (else counted here). */
  bytes = -1;
  headersSent = false;
  statusCode = 200;
  /** When the head was ready, for the access log's ttfb (0 until then). */
  ttfbMs = 0;
  /** Body bytes written. */
  written = 0;
  /** The connection closes after this response (graceful stop, an answer's Connection: close). */
  closeAfter = false;
  private head: string | null = null;
  private chunked = false;
  private bodyless = false;
  private over = false;
  /** The declared Content-Length (-1: none, or chunked). */
  private length = -1;
  private recorded = false;
  private onSocketDrain: (() => void) | undefined;
  /** The two events executors wait for, without an EventEmitter's state per request: 'close' (once) and 'drain'. */
  private closeListeners: Array<() => void> | null = null;
  private drainListeners: Array<() => void> | null = null;

  /** Recording: the route's meter and when the request began. */
  meter: RequestMeter | null = null;
  startMs = 0;

  constructor(
    private readonly owner: LaneOwner,
    readonly socket: Socket,
    readonly executor: Executor,
    /** For the access log: the lane's request object is reused, this one is the request's own. */
    readonly req: LoggedRequest,
  ) {}

  /** 'close': once, when the response is complete or the client went away. */
  on(_event: 'close', listener: () => void): this {
    (this.closeListeners ??= []).push(listener);
    return this;
  }

  /** 'drain': the socket took what was written; called once. */
  once(_event: 'drain', listener: () => void): this {
    (this.drainListeners ??= []).push(listener);
    return this;
  }

  /** Over: ended, or cut off. */
  get settled(): boolean {
    return this.over;
  }

  writeHead(status: number, a?: string | OutgoingHttpHeaders | string[], b?: OutgoingHttpHeaders | string[]): this {
    const reason = typeof a === 'string' ? a : undefined;
    const given = typeof a === 'string' ? b : a;
    if (Array.isArray(given)) return this.headOf(status, reason, given, false);
    const headers: string[] = [];
    if (given !== undefined) {
      for (const name of Object.keys(given)) {
        const v = given[name];
        if (v === undefined) continue;
        headers.push(name, String(v));
      }
    }
    return this.headOf(status, reason, headers, false);
  }

  /**
   * ResponseSink: a head whose names and values node's HTTP parser (llhttp,
   * strict) took from an origin; node's validators would pass them all, so
   * they are not checked again. `length`: their Content-Length (-1: none),
   * which the caller has read already.
   */
  writeParsedHead(status: number, reason: string | undefined, headers: string[], length: number): this {
    return this.headOf(status, reason, headers, true, length);
  }

  /** The head is built from `headers` now: the caller's array is read, not copied. */
  private headOf(status: number, reason: string | undefined, headers: string[], parsed: boolean, length = contentLengthOf(headers)): this {
    if (this.headersSent) throw headersSent();
    // node:http sends no body with these; anything else without a length is chunked.
    this.bodyless = status < 200 || status === 204 || status === 304;
    this.chunked = length < 0 && !this.bodyless;
    this.length = this.chunked ? -1 : length;
    const built = this.owner.head(status, reason, headers, this.chunked, parsed);
    this.head = built.text;
    this.closeAfter = built.closeAfter;
    this.statusCode = status;
    this.headersSent = true;
    this.ttfbMs = performance.now();
    return this;
  }

  write(chunk: Buffer): boolean {
    if (this.over) return false;
    if (!this.headersSent) this.writeHead(this.statusCode, []);
    const s = this.socket;
    const n = chunk.length;
    if (this.bodyless || n === 0) {
      // Nothing of the caller's is queued: no reason to make it wait for 'drain'.
      this.flushHead();
      return true;
    }
    this.written += n;
    // The declared length reached: the client has the whole answer once these bytes leave.
    if (this.written === this.length) this.record(true);
    if (this.head !== null && !this.chunked && n <= JOIN_MAX) {
      // The head and the first bytes in one Buffer and one write: a writev of a
      // string and a Buffer costs node more than copying a small body once.
      const head = this.head;
      this.head = null;
      const out = Buffer.allocUnsafe(head.length + n) as Latin1Writable;
      out.latin1Write(head, 0, head.length);
      out.set(chunk, head.length);
      s.write(out);
    } else {
      s.cork();
      this.flushHead();
      if (this.chunked) s.write(`${n.toString(16)}\r\n`, 'latin1');
      s.write(chunk);
      if (this.chunked) s.write('\r\n', 'latin1');
      s.uncork();
    }
    if (!s.writableNeedDrain) return true;
    s.once('drain', (this.onSocketDrain ??= () => {
      if (this.over) return;
      const ls = this.drainListeners;
      this.drainListeners = null;
      if (ls !== null) for (const l of ls) l();
    }));
    return false;
  }

  end(body?: string | Buffer, encoding?: BufferEncoding): this {
    if (this.over) return this;
    if (!this.headersSent) this.writeHead(this.statusCode, []);
    const s = this.socket;
    const hasBody = body !== undefined && body.length > 0 && !this.bodyless;
    // Recorded before the last bytes leave: a worker killed right after its
    // client read the answer has counted it.
    if (hasBody && typeof body === 'string' && encoding === 'latin1' && !this.chunked && this.head !== null) {
      // A plugin's small body (response-rules.ts): head and body in one write, no Buffer made.
      this.written += body.length;
      this.record(true);
      s.write(this.head + body, 'latin1');
      this.head = null;
    } else {
      s.cork();
      if (hasBody) {
        const bytes = typeof body === 'string' ? Buffer.from(body, encoding ?? 'utf8') : body!;
        this.written += bytes.length;
        this.flushHead();
        if (this.chunked) s.write(`${bytes.length.toString(16)}\r\n`, 'latin1');
        s.write(bytes);
        if (this.chunked) s.write('\r\n', 'latin1');
      }
      this.flushHead();
      if (this.chunked) s.write('0\r\n\r\n', 'latin1');
      this.record(true);
      s.uncork();
    }
    this.over = true;
    this.stopDrain();
    this.owner.settled(this, true);
    this.closed();
    return this;
  }

  destroy(): this {
    if (!this.over) this.socket.destroy();
    return this;
  }

  /** The connection closed before the response ended. */
  clientGone(): void {
    if (this.over) return;
    this.over = true;
    this.stopDrain();
    this.record(false);
    this.owner.settled(this, false);
    this.closed();
  }

  private closed(): void {
    const ls = this.closeListeners;
    this.closeListeners = null;
    this.drainListeners = null;
    if (ls !== null) for (const l of ls) l();
  }

  /** Once, when the answer is complete (its last bytes about to leave) or cut off. */
  private record(finished: boolean): void {
    if (this.recorded) return;
    this.recorded = true;
    this.owner.recordAnswer(this, finished);
  }

  private stopDrain(): void {
    if (this.onSocketDrain !== undefined) this.socket.removeListener('drain', this.onSocketDrain);
  }

  private flushHead(): void {
    if (this.head === null) return;
    this.socket.write(this.head, 'latin1');
    this.head = null;
  }
}
