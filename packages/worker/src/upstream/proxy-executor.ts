/**
 * The upstream executor: proxies a route's requests to a pool of origins over
 * keep-alive connections, streaming bodies both ways: the lean client
 * (origin-client.ts) for requests without a body or with a whole one,
 * undici's pools for streamed bodies and https:// origins (origin.ts).
 *
 *   client ──req──> pick origin ──dispatch──> origin
 *      ^              │ none healthy: 503       │ refused/reset before answering:
 *      │              v                         │   eject it here, report it, and for
 *      └──res── headers (hop-by-hop out) <──────┘   GET/HEAD without body try another
 *               body chunks, with backpressure      │ timeout: 504 · other failure: 502
 *
 * Request bodies go through a PassThrough so that undici, which destroys the
 * body stream when it is done, never touches node's IncomingMessage (and its
 * socket, which the response still needs).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { FlexiError, type ErrorCode, type RouteSpec } from '@flexilib/contract';
import type { Executor, RequestLike, RequestStats, ResponseSink } from '../executor.js';
import { peerOf } from '../http/peer.js';
import { contentLengthOf } from '../http/raw-headers.js';
import { sendError } from '../http/respond.js';
import { relayChunk, writeRelayedHead } from '../http/relay.js';
import { classify } from './failure.js';
import { responseHeaders } from './headers.js';
import { HeadMemo } from './head-memo.js';
import type { Origin } from './origin.js';
import type { Exchange } from './origin-connection.js';
import type { UpstreamPool } from './pool.js';
import type { UpstreamRegistry } from './registry.js';

const TOO_LARGE = 'FLX_UPSTREAM_BODY_TOO_LARGE' satisfies ErrorCode;
const CLOSE = { connection: 'close' };
const RETRY_SOON = { 'retry-after': '1' };
const BAD_RESPONSE: ErrorCode = 'FLX_UPSTREAM_BAD_RESPONSE';

export class ProxyExecutor implements Executor {
  readonly kind = 'upstream' as const;
  /** `route "/api" (pool "api")`: how every error of this executor starts. */
  readonly label: string;
  /** The last request's headers for the origin, reused while requests repeat them. */
  readonly heads = new HeadMemo();

  constructor(
    readonly route: RouteSpec,
    readonly pool: UpstreamPool,
    readonly registry: UpstreamRegistry,
    readonly log: Logger,
  ) {
    this.label = `route "${route.key}" (pool "${pool.name}")`;
  }

  handle(req: IncomingMessage, res: ServerResponse, stats: RequestStats): void {
    this.proxy(req, req, res, stats);
  }

  /** The fast lane's requests: bodyless, or with the whole body read (req.body). */
  laneHandle(req: RequestLike, res: ResponseSink, stats: RequestStats): void {
    this.proxy(req, null, res, stats);
  }

  /** `incoming`: node's request, whose body may need limiting and streaming (null from the fast lane). */
  private proxy(req: RequestLike, incoming: IncomingMessage | null, res: ResponseSink, stats: RequestStats): void {
    const origin = this.pool.pick();
    if (origin === undefined) {
      this.pool.clientFailed();
      const { total, healthy } = this.pool.census();
      const why = total === 0 ? 'the pool has no origins' : `no healthy origin (${healthy} of ${total} healthy)`;
      sendError(res, 'FLX_UPSTREAM_UNAVAILABLE', `${this.label}: ${why}`, RETRY_SOON);
      return;
    }
    // The lane's bodies are within the route's limit already (it hands larger ones to node:http).
    const limit = this.route.options.maxBodyBytes;
    if (incoming !== null && limit !== undefined && Number(incoming.headers['content-length'] ?? 0) > limit) {
      this.pool.clientFailed();
      (res as ServerResponse).shouldKeepAlive = false;
      sendError(res, TOO_LARGE, `${this.label}: request body exceeds the limit of ${limit} bytes`, CLOSE);
      incoming.resume();
      return;
    }
    new ProxyCall(this, req, incoming, res, stats).start(origin);
  }

  /** Routers come and go with config reloads; the pools belong to the registry. */
  close(): void {}
}

/** requestHeaders' facts, read right after each call. */
const FACTS = { hasBody: false, hasHost: false };

/**
 * One proxied request; the handler of each attempt (a retry reuses it), for
 * either client: the lean one (Exchange: onHead) and undici's.
 *
 * For undici it implements the callbacks undici's HTTP/1.1 client itself
 * calls (onConnect, onHeaders, onData, onComplete, onError). undici 7 marks
 * them deprecated in favour of a controller API, but that API is a wrapper
 * built over these per request (an extra object, and the headers parsed into
 * an object we would only flatten again).
 */
class ProxyCall implements Dispatcher.DispatchHandler, Exchange {
  private origin!: Origin;
  private abort: ((err?: Error) => void) | null = null;
  private resume: (() => void) | null = null;
  /** Response headers went to the client: the status can no longer change. */
  private started = false;
  private done = false;
  private clientGone = false;
  private bytes = 0;
  /** The origin's Content-Length (-1: none), to know which chunk completes the answer. */
  private length = -1;
  /** The answer was counted ok, the client's and the origin's attempt alike (before its last bytes left). */
  private counted = false;
  private tried: Origin[] | undefined;
  /** A streamed request body (node's request; undici sends it). */
  private readonly body: PassThrough | null;
  /** A whole request body (the fast lane read it). */
  readonly wholeBody: Buffer | null;
  readonly method: string;
  private readonly target: string;
  /** For the origin, flat; turned into undici's options or the lean client's head on first use. */
  private readonly headers: string[];
  private opts: Dispatcher.DispatchOptions | undefined;
  private leanHead: string | undefined;
  /** The origin the head was built for (its Host is the default when the client sent none). */
  private leanHeadFor: Origin | undefined;
  private onDrain: (() => void) | undefined;

  /**
   * `req` is read here only (the fast lane reuses its request object);
   * `incoming` is node's request, kept to stream a body (null from the lane).
   */
  constructor(
    private readonly ex: ProxyExecutor,
    req: RequestLike,
    private readonly incoming: IncomingMessage | null,
    private readonly res: ResponseSink,
    private readonly stats: RequestStats,
  ) {
    const facts = FACTS;
    this.headers = ex.heads.headers(req.rawHeaders, peerOf(req.socket).address || undefined, facts);
    let body: PassThrough | null = null;
    if (facts.hasBody && incoming !== null) {
      const req = incoming;
      body = new PassThrough();
      req.pipe(body);
      const limit = ex.route.options.maxBodyBytes;
      if (limit !== undefined) {
        let seen = 0;
        req.on('data', (chunk: Buffer) => {
          seen += chunk.length;
          if (seen > limit) body!.destroy(new FlexiError(TOO_LARGE, `request body exceeds the limit of ${limit} bytes`));
        });
      }
    }
    this.body = body;
    // A copy: the lane's body is a view of its read buffer, which its next
    // read overwrites, and this call keeps it (queued for a connection, written later).
    this.wholeBody = req.body !== undefined && req.body.length > 0 ? Buffer.from(req.body) : null;
    this.method = req.method!;
    this.target = req.url!;
    // 'on', not 'once': a response closes once and is then dropped, and once's
    // wrapper (a bound function, a removal) is a cost on every proxied request.
    res.on('close', () => this.clientClosed());
  }

  /** The lean client's request head (built once: a retry sends the same). */
  get head(): string {
    if (this.leanHeadFor !== this.origin) {
      this.leanHeadFor = this.origin;
      this.leanHead = this.ex.heads.head(this.method, this.target, this.headers, this.origin.client!.hostHeader, this.wholeBody?.length ?? 0);
    }
    return this.leanHead!;
  }

  start(origin: Origin): void {
    this.origin = origin;
    this.abort = null;
    origin.inflight++;
    try {
      if (origin.client !== null && this.body === null) origin.client.dispatch(this);
      else {
        // Timeouts are the origin's Pool defaults (origin.ts), set from the pool's settings.
        this.opts ??= { path: this.target, method: this.method as Dispatcher.HttpMethod, headers: this.headers, body: this.body ?? this.wholeBody };
        origin.dispatcher.dispatch(this.opts, this);
      }
    } catch (err) {
      origin.inflight--;
      this.finishWithError(err as Error);
    }
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
    if (this.clientGone) abort(new Error('the client closed the connection'));
  }

  /** undici's response head. */
  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true; // 1xx: node:http answered the client's Expect itself.
    const relayed = responseHeaders(rawHeaders);
    if (!this.relayHead(statusCode, relayed, contentLengthOf(relayed), statusText, resume, false)) return false;
    // No body, whatever Content-Length says (RFC 9110 allows it on a 304):
    // complete now, before undici holds the missing body against the origin.
    if (statusCode === 204 || statusCode === 304) this.onComplete();
    return true;
  }

  /** The lean client's final response head, as node's parser read it (the origin's memo relays a repeated one). */
  onHead(statusCode: number, headers: string[], statusText: string, resume: () => void): boolean {
    const memo = this.origin.answers;
    return this.relayHead(statusCode, memo.headers(headers), memo.length, statusText, resume, true);
  }

  /** `parsed`: names and values as node's strict parser read them (not validated again on the lane). */
  private relayHead(statusCode: number, relayed: string[], length: number, statusText: string, resume: () => void, parsed: boolean): boolean {
    if (statusCode > 599) return this.badAnswer(`answered status ${statusCode}, not a final status (200-599)`);
    this.resume = resume;
    try {
      this.length = length;
      writeRelayedHead(this.res, statusCode, statusText, relayed, parsed, length);
    } catch (err) {
      return this.badAnswer(`sent a response head node:http refuses: ${(err as Error).message}`);
    }
    this.started = true;
    return true;
  }

  /** The origin's answer cannot be passed on: nothing was sent yet, so a 502 (by onError). */
  private badAnswer(why: string): boolean {
    this.abort?.(new FlexiError(BAD_RESPONSE, why));
    return false;
  }

  onData(chunk: Buffer): boolean {
    this.bytes += chunk.length;
    // The chunk that completes the declared length completes the answer:
    // counted before it leaves, so a worker killed right after still has it.
    if (this.bytes === this.length) this.countOk();
    return relayChunk(this.res, chunk, (this.onDrain ??= () => this.resume?.()));
  }

  onComplete(): void {
    if (this.done) return;
    this.done = true;
    this.origin.inflight--;
    this.countOk();
    this.stats.bytes = this.bytes;
    this.res.end();
  }

  /**
   * The client's success and its origin's, together: a client that has read
   * the whole answer can see the worker killed before onComplete runs (the
   * origin's count once came there, and /stats lost it about one run in 16).
   */
  private countOk(): void {
    if (this.counted) return;
    this.counted = true;
    this.ex.pool.clientOk();
    this.ex.pool.originOk(this.origin);
  }

  /** A failed client request; not one whose whole answer already went out (counted ok). */
  private countFailed(): void {
    if (!this.counted) this.ex.pool.clientFailed();
  }

  onError(err: Error): void {
    if (this.done) return;
    this.origin.inflight--;
    this.finishWithError(err);
  }

  private clientClosed(): void {
    if (this.done) return;
    this.clientGone = true;
    this.body?.destroy();
    this.abort?.(new Error('the client closed the connection'));
  }
  private finishWithError(err: Error & { code?: string }): void {
    const { ex, origin, res } = this;
    if (this.clientGone) {
      // The client left; nothing to answer and nothing to blame the origin for.
      this.done = true;
      this.countFailed();
      return;
    }
    if (err.code === TOO_LARGE) {
      this.done = true;
      this.countFailed();
      this.discardBody();
      sendError(res, TOO_LARGE, `${ex.label}: ${err.message}`, CLOSE);
      return;
    }
    const f = classify(err, origin.url, ex.pool.settings);
    // An attempt whose whole answer arrived was counted ok; it is not also a failure.
    if (f.originFault && !this.counted) ex.pool.originFailed(origin);
    if (f.passive && !this.started) ex.registry.passiveFailure(ex.pool, origin, f.cause, f.reason);
    if (!this.started && f.retryable && this.body === null && this.wholeBody === null && (this.method === 'GET' || this.method === 'HEAD')) {
      const tried = (this.tried ??= []);
      tried.push(origin);
      const next = tried.length <= ex.pool.settings.retries ? ex.pool.pick(tried) : undefined;
      if (next !== undefined) {
        ex.log.debug({ route: ex.route.key, pool: ex.pool.name, origin: origin.url, next: next.url, cause: f.cause }, 'retrying on another origin');
        this.start(next);
        return;
      }
    }
    this.done = true;
    this.countFailed();
    ex.log.warn({ route: ex.route.key, pool: ex.pool.name, origin: origin.url, code: f.code, cause: f.cause, status: f.status, started: this.started }, f.reason);
    if (this.started) {
      // Headers are out: the only honest signal left is a cut connection.
      res.destroy();
      return;
    }
    const unread = this.discardBody();
    sendError(res, f.code, `${ex.label}: ${f.reason}`, unread ? CLOSE : undefined);
  }

  /**
   * Answering before the client finished sending: read and drop the rest, so the
   * connection closes with a FIN after the answer rather than a reset that would
   * destroy it. True when some body was left unread (the connection must close).
   */
  private discardBody(): boolean {
    const req = this.incoming;
    if (this.body === null || req === null || req.complete) return false;
    req.unpipe();
    req.resume();
    return true;
  }
}
