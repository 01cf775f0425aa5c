/**
 * One keep-alive HTTP/1.1 connection of the lean origin client
 * (origin-client.ts): a request's head (and its whole body, if any) goes out
 * in one write. The answer is read into the worker's shared read buffer
 * (http/socket-reads.ts, as the fast lane reads clients) and its head parsed
 * from there (answer-head-parser.ts): one call into JavaScript per read, no
 * Buffer per read, header strings reused while the bytes repeat. An answer
 * outside that parser's strict subset (chunked, framed by the connection's
 * end, interim 1xx, anything odd) goes to node's own llhttp binding, the
 * HTTPParser node:http uses, called directly, which then reads the rest of
 * the connection's life. Without the shared buffer (a node lacking it),
 * llhttp consumes the socket's reads in C++ as node:http's server does.
 *
 *   send(exchange) ─ write ─> origin
 *        <── onHead / onData (with backpressure) / onComplete, or onError ──
 *   complete and reusable ─> back to the client (idle, or the next queued request)
 *
 * Failures carry the codes undici gives the same events (ECONNREFUSED,
 * UND_ERR_SOCKET, UND_ERR_HEADERS_TIMEOUT, ...), so failure.ts classifies both
 * clients alike and the logs keep one vocabulary.
 */
import { createRequire } from 'node:module';
import net, { type Socket } from 'node:net';
import { HEAD_END } from '../http/field-bytes.js';
import { decimal, sameLower } from '../http/raw-headers.js';
import { setLimit, type Timed } from '../http/inactivity-sweep.js';
import { SharedReads } from '../http/socket-reads.js';
import { AnswerHeadParser, keepAliveIdle } from './answer-head-parser.js';

/** The parts of node's internal HTTPParser (`_http_common`) used here. */
interface HTTPParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(chunk: Buffer): number | Error;
  finish(): number | Error | undefined;
  consume(handle: object): void;
  unconsume(): void;
  close(): void;
  [callback: number]: unknown;
}
interface HTTPParserClass {
  new (): HTTPParser;
  RESPONSE: number;
  kOnMessageBegin: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kOnExecute: number;
}
/** What a connected net.Socket has underneath (node's stream handle), used to pause reads the parser consumes. */
interface StreamHandle {
  isStreamBase?: boolean;
  reading: boolean;
  readStart(): number;
  readStop(): number;
}
type HandleSocket = Socket & { _handle: StreamHandle | null };
const require = createRequire(import.meta.url);
const { HTTPParser } = require('_http_common') as { HTTPParser: HTTPParserClass };

/** What a connection needs of a request in flight (the proxy's ProxyCall). */
export interface Exchange {
  readonly method: string;
  /** The request head, latin1, ending with the empty line. */
  readonly head: string;
  /** A whole request body (Content-Length framed), or null. */
  readonly wholeBody: Buffer | null;
  /** The request is on a connection (before it is written): `abort` cuts it. */
  onConnect(abort: (err?: Error) => void): void;
  /** The final response head (`headers`: the parser's fresh array, the exchange's to keep or change); `resume` restarts reading after onData returned false. */
  onHead(status: number, headers: string[], reason: string, resume: () => void): boolean;
  /** A body chunk; false: the client is slow, stop reading until resume(). */
  onData(chunk: Buffer): boolean;
  onComplete(): void;
  onError(err: Error): void;
}

/** What a connection needs of its client. */
export interface ConnectionOwner {
  readonly timeouts: { connect: number; headers: number; body: number };
  /** The answer is complete and the connection can carry another request. */
  release(conn: OriginConnection): void;
  /** The connection closed (counted out of the client's connections). */
  closed(conn: OriginConnection): void;
  /** A request whose reused connection was closed before any answer: send it again on a new one. */
  retry(exchange: Exchange): void;
}

export type FailureCode = 'UND_ERR_SOCKET' | 'UND_ERR_CONNECT_TIMEOUT' | 'UND_ERR_HEADERS_TIMEOUT' | 'UND_ERR_BODY_TIMEOUT' | 'UND_ERR_CLOSED' | 'UND_ERR_ABORTED';

export function failure(code: FailureCode, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** Seconds an idle connection is kept, unless the origin's Keep-Alive says less (origin-client.ts sweeps). */
export const IDLE_SECONDS = 4;
/** A head not complete within this many bytes goes to llhttp (node's limit, 16 KiB, is its to enforce). */
const MAX_LEAN_HEAD = 16 * 1024;

/** No body for these answers, whatever their head says (node:http's client does the same). */
function noBody(method: string, status: number): boolean {
  return method === 'HEAD' || status === 304 || status === 204;
}

/** The timer's meaning: which phase of the exchange an inactivity timeout cuts. */
const enum Phase {
  Connecting,
  Idle,
  Headers,
  Body,
}

export class OriginConnection implements Timed {
  readonly socket: Socket;
  private readonly parser: HTTPParser;
  /** The request in flight, or null when idle. */
  private exchange: Exchange | null = null;
  private phase = Phase.Connecting;
  /** The current request's bytes went out (an abort from now on costs the connection). */
  private written = false;
  /** Bytes of an answer arrived for the current request. */
  private answered = false;
  /** The current answer is complete (set inside execute(); acted on after it). */
  private completed = false;
  /** Bytes began a message no request asked for (an origin sending ahead): the connection cannot be reused. */
  private stray = false;
  /** Reading stopped for a slow client (the handle's reads, which the parser consumes). */
  private paused = false;
  /** The parser reads the socket's handle itself (else 'data' events or the shared reads feed it). */
  private consumed = false;
  /** Reads come through the shared buffer (null: llhttp consumes them, or 'data' events). */
  private reads: SharedReads | null = null;
  /** Answers are parsed here (answer-head-parser.ts); false once one went to llhttp, for good. */
  private lean = false;
  private leanHead: AnswerHeadParser | null = null;
  /** The start of a head split across reads (a private copy). */
  private held: Buffer | null = null;
  private readonly readFn = (n: number): boolean => this.onRead(n);
  /** The origin keeps the connection open after this answer (its Connection header and version). */
  private keepAlive = true;
  /** Headers of a head llhttp delivered in parts (very long heads), joined at its end. */
  private partial: string[] | null = null;
  /**
   * The inactivity timeout of the current phase (ms: connect, headers or
   * body), kept by the client's sweep (Timed, http/inactivity-sweep.ts), not
   * a socket timer: node refreshes a socket's timer on every read and write.
   */
  limit = 0;
  since = -1;
  /** Activity: a read, a request written, output drained. */
  ticks = 0;
  seen = 0;
  /** The connection carried a request before. */
  reused = false;
  /** Seconds it may stay idle (the origin's Keep-Alive timeout, less a second, or IDLE_SECONDS). */
  idleSeconds = IDLE_SECONDS;
  /** The owner's clock (in seconds) when it went idle. */
  idleSince = 0;
  /** Bound once per connection: handed to every exchange it carries. */
  private readonly abortFn = (err?: Error) => this.fail(err ?? failure('UND_ERR_ABORTED', 'Request aborted'));
  private readonly resumeFn = () => this.resume();
  private readonly strayFn = () => {
    this.stray = true;
  };
  /**
   * The answer's end, as the parser reports it. Like message begin, a JS call
   * per answer: an answer framed by its Content-Length is known complete from
   * its bytes (onBody), so the callback is unset for those (`completeSet`).
   */
  private readonly completeFn = () => {
    if (this.exchange !== null && this.phase === Phase.Body) this.complete();
  };
  private completeSet = true;
  /** Body bytes of the current answer still to come, when framed by Content-Length (else -1). */
  private remaining = -1;

  constructor(private readonly owner: ConnectionOwner, host: string, port: number, first: Exchange) {
    const parser = (this.parser = new HTTPParser());
    parser.initialize(HTTPParser.RESPONSE, this, 0, 0);
    parser[HTTPParser.kOnHeaders] = (headers: string[]) => (this.partial ??= []).push(...headers);
    parser[HTTPParser.kOnHeadersComplete] = (_maj: number, _min: number, headers: string[] | undefined, _m: unknown, _u: unknown, status: number, reason: string, upgrade: boolean, keepAlive: boolean) =>
      this.onHeadersComplete(headers, status, reason, upgrade, keepAlive);
    parser[HTTPParser.kOnBody] = (chunk: Buffer) => this.onBody(chunk);
    // A message that begins while no answer is awaited is stray. node's parser
    // calls back on every message begin, a JS call per answer, so the callback
    // is set only while a message beginning would be stray: from an answer's
    // end (or the connection's start) until the next request is sent.
    parser[HTTPParser.kOnMessageBegin] = this.strayFn;
    parser[HTTPParser.kOnMessageComplete] = this.completeFn;
    parser[HTTPParser.kOnExecute] = (ret: number | Error) => {
      this.ticks++;
      this.afterExecute(ret);
    };
    const socket = (this.socket = net.connect({ host, port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 }));
    this.exchange = first;
    this.arm(owner.timeouts.connect);
    socket.on('connect', () => {
      const handle = (socket as HandleSocket)._handle;
      const reads = SharedReads.shared();
      if (reads !== null && reads.attach(socket, this.readFn)) {
        this.reads = reads;
        this.lean = true;
        this.leanHead = new AnswerHeadParser();
      } else if (handle?.isStreamBase) {
        parser.consume(handle);
        this.consumed = true;
      }
      const ex = this.exchange;
      this.exchange = null;
      if (ex !== null) this.send(ex);
      else this.owner.release(this);
    });
    socket.on('data', (chunk: Buffer) => this.onSocketData(chunk));
    socket.on('end', () => this.onEnd());
    // A request body the origin was slow to take: its progress is activity.
    socket.on('drain', () => this.ticks++);
    socket.on('error', (err: Error) => this.fail(err));
    socket.on('close', () => {
      // As node:http frees its parsers: unhooked from the handle, then released.
      if (this.consumed) this.parser.unconsume();
      this.parser.close();
      this.fail(failure('UND_ERR_SOCKET', 'other side closed'));
      this.owner.closed(this);
    });
  }

  /** Write a request; its answer comes through the exchange's callbacks. */
  send(ex: Exchange): void {
    this.exchange = ex;
    this.phase = Phase.Headers;
    this.written = false;
    this.answered = false;
    this.completed = false;
    ex.onConnect(this.abortFn);
    if (this.exchange !== ex) return; // aborted (the client left while it waited)
    // Bytes before this point were stray (and noticed); the answer's message begins now.
    if (!this.stray) this.parser[HTTPParser.kOnMessageBegin] = undefined;
    this.ticks++; // the write, as a socket timer counted it
    this.arm(this.owner.timeouts.headers);
    const s = this.socket;
    this.written = true;
    if (ex.wholeBody === null) s.write(ex.head, 'latin1');
    else {
      s.cork();
      s.write(ex.head, 'latin1');
      s.write(ex.wholeBody);
      s.uncork();
    }
  }

  /** Close it (idle too long, its client retired). */
  destroy(): void {
    this.socket.destroy();
  }

  private arm(ms: number): void {
    if (ms !== this.limit) setLimit(this, ms);
  }

  private onHeadersComplete(headers: string[] | undefined, status: number, reason: string, upgrade: boolean, keepAlive: boolean): number {
    const ex = this.exchange;
    if (headers === undefined) {
      headers = this.partial ?? [];
      this.partial = null;
    }
    // An answer to no request, or a protocol switch nobody asked for (Upgrade is hop-by-hop, never sent).
    if (ex === null || this.phase !== Phase.Headers || upgrade) {
      this.socket.destroy();
      return 1;
    }
    // 1xx: interim (the client's Expect was node:http's to answer); the final answer follows.
    if (status < 200) return 1;
    this.phase = Phase.Body;
    this.keepAlive = keepAlive;
    this.readHead(headers, keepAlive);
    const bodiless = noBody(ex.method, status);
    if (bodiless) this.remaining = -1;
    // Counted down by onBody, or (no length, no body) the parser's callback says when it ends.
    const counted = this.remaining > 0;
    if (counted === this.completeSet) {
      this.completeSet = !counted;
      this.parser[HTTPParser.kOnMessageComplete] = counted ? undefined : this.completeFn;
    }
    if (this.owner.timeouts.body !== this.limit) this.arm(this.owner.timeouts.body);
    ex.onHead(status, headers, reason, this.resumeFn);
    return bodiless ? 1 : 0;
  }

  /**
   * What the connection reads of a final answer's head, in one pass: its
   * Content-Length (this.remaining; -1 without one, or with Transfer-Encoding,
   * which llhttp would refuse beside it anyway), and, on a kept connection,
   * the origin's Keep-Alive timeout (idleSeconds: a second less, or IDLE_SECONDS).
   */
  private readHead(headers: string[], keepAlive: boolean): void {
    let length = -1;
    let chunked = false;
    let idle = IDLE_SECONDS;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i];
      const n = name.length;
      if (n === 14) {
        if (sameLower(name, 'content-length')) length = decimal(headers[i + 1]);
      } else if (n === 17) {
        if (sameLower(name, 'transfer-encoding')) chunked = true;
      } else if (n === 10 && keepAlive && sameLower(name, 'keep-alive')) {
        const t = keepAliveIdle(headers[i + 1]);
        if (t > 0) idle = t;
      }
    }
    this.remaining = chunked ? -1 : length;
    if (keepAlive) this.idleSeconds = idle;
  }

  private onBody(chunk: Buffer): void {
    const ex = this.exchange;
    if (ex === null || this.completed) return;
    if (this.remaining > 0 && (this.remaining -= chunk.length) <= 0) this.complete();
    if (!ex.onData(chunk)) this.pause();
  }

  /** The current answer is complete (acted on after execute(), which may still be in its callbacks). */
  private complete(): void {
    this.completed = true;
    this.parser[HTTPParser.kOnMessageBegin] = this.strayFn;
  }

  /** Only when the parser does not consume the handle (a socket without one). */
  private onSocketData(chunk: Buffer): void {
    this.ticks++;
    this.afterExecute(this.parser.execute(chunk));
  }

  /** A read into the shared buffer: `n` bytes, valid during this call only. False stops reading. */
  private onRead(n: number): boolean {
    this.ticks++;
    const view = this.reads!.view(n);
    // llhttp's body chunks are views of what it is given, and a client's write may keep one: a private copy.
    if (!this.lean) this.afterExecute(this.parser.execute(Buffer.from(view)));
    else this.leanRead(view);
    return !this.paused;
  }

  /**
   * An answer's bytes, parsed here while they stay within the lean subset:
   * the head (whole, or held until it is), then Content-Length's worth of
   * body, each chunk copied out of the shared buffer for the client's write.
   */
  private leanRead(chunk: Buffer): void {
    this.answered = true;
    let buf = chunk;
    let own = false;
    if (this.held !== null) {
      buf = Buffer.concat([this.held, chunk]);
      own = true;
      this.held = null;
    }
    const ex = this.exchange;
    if (ex === null || this.completed) {
      this.socket.destroy(); // bytes nobody asked for
      return;
    }
    let pos = 0;
    if (this.phase === Phase.Headers) {
      const head = this.leanHead!;
      const headRequest = ex.method === 'HEAD';
      let end = head.repeated(buf, headRequest);
      if (end < 0) {
        end = buf.indexOf(HEAD_END);
        if (end < 0 || end > MAX_LEAN_HEAD) {
          if (end >= 0 || buf.length > MAX_LEAN_HEAD) this.toLlhttp(buf, own);
          else this.held = own ? buf : Buffer.from(buf);
          return;
        }
        if (!head.parse(buf, 0, end, headRequest)) {
          this.toLlhttp(buf, own);
          return;
        }
      }
      this.phase = Phase.Body;
      this.keepAlive = head.keepAlive;
      if (head.keepAlive) this.idleSeconds = head.idleSeconds > 0 ? head.idleSeconds : IDLE_SECONDS;
      const status = head.status;
      this.remaining = noBody(ex.method, status) ? 0 : head.length;
      pos = end + 4;
      // The body timeout only for a body still to come: an answer whole in this read
      // leaves the headers timeout as it is, and the next request changes nothing.
      if (this.remaining > buf.length - pos && this.owner.timeouts.body !== this.limit) this.arm(this.owner.timeouts.body);
      if (this.remaining === 0) this.complete();
      ex.onHead(status, head.headers, head.reason, this.resumeFn);
      // The exchange may have ended meanwhile (an answer the proxy refuses aborts it).
      if (this.exchange !== ex) return;
    }
    const avail = buf.length - pos;
    if (avail > 0) {
      const take = this.remaining > 0 ? Math.min(avail, this.remaining) : 0;
      // Bytes past the answer's end: the connection cannot be trusted with another.
      if (take < avail) this.stray = true;
      if (take > 0) {
        const body = Buffer.allocUnsafe(take);
        buf.copy(body, 0, pos, pos + take);
        if ((this.remaining -= take) === 0) this.complete();
        if (!ex.onData(body)) this.pause();
      }
    }
    if (this.completed) this.finish();
    else if (this.exchange === null || this.stray) this.socket.destroy();
  }

  /** An answer outside the lean subset: llhttp reads it from its first byte, and every later one. */
  private toLlhttp(buf: Buffer, own: boolean): void {
    this.lean = false;
    this.afterExecute(this.parser.execute(own ? buf : Buffer.from(buf)));
  }

  private afterExecute(ret: number | Error): void {
    this.answered = true;
    if (typeof ret !== 'number') {
      this.fail(ret);
      this.socket.destroy();
      return;
    }
    if (this.completed) this.finish();
    else if (this.exchange === null || this.stray) this.socket.destroy(); // bytes nobody asked for
  }

  /** The answer is complete: the connection goes back to its client (if it can), then the exchange ends. */
  private finish(): void {
    const ex = this.exchange!;
    this.exchange = null;
    this.completed = false;
    this.reused = true;
    this.phase = Phase.Idle;
    // Released first: a request the completion starts (the lane's next one) can take this connection.
    if (this.keepAlive && !this.stray) {
      if (this.paused) this.resume();
      this.owner.release(this);
    } else this.socket.destroySoon();
    ex.onComplete();
  }

  private pause(): void {
    this.paused = true;
    const handle = (this.socket as HandleSocket)._handle;
    if (!this.consumed) this.socket.pause();
    else if (handle !== null && handle.reading) {
      handle.reading = false;
      handle.readStop();
    }
  }

  private resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const handle = (this.socket as HandleSocket)._handle;
    if (!this.consumed) this.socket.resume();
    else if (handle !== null && !handle.reading) {
      handle.reading = true;
      handle.readStart();
    }
  }

  private onEnd(): void {
    // An answer framed by the connection's end completes now.
    if (this.exchange !== null && this.phase === Phase.Body && !this.lean) {
      this.parser.finish();
      if (this.completed) {
        this.keepAlive = false;
        this.finish();
      }
    }
    this.fail(failure('UND_ERR_SOCKET', 'other side closed'));
    this.socket.destroy();
  }

  /** The current phase's timeout passed without activity (the client's sweep calls). */
  timedOut(): void {
    switch (this.phase) {
      case Phase.Connecting:
        this.fail(failure('UND_ERR_CONNECT_TIMEOUT', 'Connect Timeout Error'));
        break;
      case Phase.Headers:
        if (this.exchange === null) return;
        this.fail(failure('UND_ERR_HEADERS_TIMEOUT', 'Headers Timeout Error'));
        break;
      case Phase.Body:
        // Paused for a slow client: not the origin's silence (as undici, it waits).
        if (this.paused) return;
        this.fail(failure('UND_ERR_BODY_TIMEOUT', 'Body Timeout Error'));
        break;
      case Phase.Idle:
        break;
    }
    this.socket.destroy();
  }

  /**
   * The request in flight (if any) fails with `err`. A request not written yet
   * leaves the connection usable; one written to a reused connection that
   * closed before any answer byte (the origin closing it as idle, a race every
   * keep-alive client has) is sent again on a new connection, if idempotent.
   */
  private fail(err: Error): void {
    const ex = this.exchange;
    if (ex === null) return;
    this.exchange = null;
    if (!this.written && this.phase === Phase.Headers) {
      this.phase = Phase.Idle;
      this.owner.release(this);
      ex.onError(err);
      return;
    }
    this.socket.destroy();
    const code = (err as Error & { code?: string }).code;
    if (this.reused && !this.answered && this.written && ex.wholeBody === null && (ex.method === 'GET' || ex.method === 'HEAD') && (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE')) {
      this.reused = false;
      this.owner.retry(ex);
      return;
    }
    ex.onError(err);
  }
}
