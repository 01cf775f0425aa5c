/**
 * The Cloudflare Worker executor: a `worker:NAME` route's requests go to one
 * of the Worker's workerd processes (engine-pool.ts) over its keep-alive
 * loopback connection, with what Cloudflare's edge adds (request.cf, CF-Ray,
 * CF-Connecting-IP), and the answer streams back.
 *
 *   client ──> acquire engine (idle / start one / wait) ──dispatch──> workerd
 *      ^        CPU clock read ───── timer at cpu_ms: over? kill ─────┘
 *      └── head + body <── headers: over cpu_ms? 1102 instead ──┘
 *   engine released (recycled if a limit was passed, or its generation is old)
 *
 * CPU is only ever as exact as the timer that reads it: a request past cpu_ms
 * is stopped within a millisecond or so of CPU time (a timer per request,
 * re-armed for the CPU left).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { answersHttp, FlexiError, type CfWorkerSpec, type HttpErrorCode, type RouteSpec } from '@flexilib/contract';
import type { Executor, RequestStats, ResponseSink } from '../executor.js';
import { peerOf } from '../http/peer.js';
import { sendError } from '../http/respond.js';
import { relayChunk, writeRelayedHead } from '../http/relay.js';
import { requestHeaders, responseHeaders } from '../upstream/headers.js';
import { sendCloudflareError } from './cf-errors.js';
import { CF_HEADER } from './capnp-config.js';
import type { EnginePool } from './engine-pool.js';
import type { Engine } from './engine.js';

/** The local `request.cf`: what Cloudflare's edge would report, for a colo that is this machine. */
const CF = {
  asn: 395747,
  asOrganization: 'FlexiLib Local',
  colo: 'LCL',
  country: 'XX',
  continent: 'EU',
  city: 'Local',
  region: 'Local',
  regionCode: 'LO',
  postalCode: '00000',
  timezone: 'UTC',
  latitude: '0.00000',
  longitude: '0.00000',
  clientTcpRtt: 0,
  edgeRequestKeepAliveStatus: 1,
  requestPriority: '',
  tlsVersion: '',
  tlsCipher: '',
};
const CF_JSON: Record<string, string> = {
  '1.0': JSON.stringify({ ...CF, httpProtocol: 'HTTP/1.0' }),
  '1.1': JSON.stringify({ ...CF, httpProtocol: 'HTTP/1.1' }),
};
/** Rays flexilib made end so: a request already carrying one came back from a Worker. */
const RAY_SUFFIX = '-FLX';
const RAY_PREFIX = randomBytes(4).toString('hex');

export class CfWorkerExecutor implements Executor {
  readonly kind = 'worker' as const;
  readonly label: string;
  readonly cpuNs: number;
  private rays = 0;

  constructor(
    readonly route: RouteSpec,
    readonly spec: CfWorkerSpec,
    readonly pool: EnginePool,
    readonly log: Logger,
  ) {
    this.label = `route "${route.key}" (worker "${spec.name}")`;
    this.cpuNs = spec.cpuMs * 1e6;
  }

  nextRay(): string {
    return `${RAY_PREFIX}${(this.rays++ >>> 0).toString(16).padStart(8, '0')}${RAY_SUFFIX}`;
  }

  handle(req: IncomingMessage, res: ServerResponse, stats: RequestStats): void {
    const seen = req.headers['cf-ray'];
    if (typeof seen === 'string' && seen.endsWith(RAY_SUFFIX)) {
      // passThroughOnException (or fetch(request)) aimed the request back at flexilib's Workers.
      // Cloudflare allows 16 hops before its error 1019; here the nested request could wait
      // forever for a process its own caller holds (one request per process), so none is allowed.
      this.log.warn({ route: this.route.key, worker: this.spec.name, code: 'FLX_CFW_LOOP', ray: seen }, `${this.label}: the request already passed through a Worker of this server: answered error 1019`);
      sendCloudflareError(res, 1019, 'FLX_CFW_LOOP', seen);
      req.resume();
      return;
    }
    const call = new CfCall(this, req, res, stats);
    this.pool.acquire((e) => call.start(e));
  }

  /** Routers come and go with config reloads; the pools belong to the registry. */
  close(): void {}
}

/** One request on one engine; the undici handler (see upstream/proxy-executor.ts on the callback API). */
class CfCall implements Dispatcher.DispatchHandler {
  private engine!: Engine;
  private cpu0 = 0;
  private timer: NodeJS.Timeout | undefined;
  private abort: ((err?: Error) => void) | null = null;
  private resume: (() => void) | null = null;
  private started = false;
  private done = false;
  private clientGone = false;
  private bytes = 0;
  private readonly ray: string;
  private readonly opts: Dispatcher.DispatchOptions;
  private readonly body: PassThrough | null;
  private onDrain: (() => void) | undefined;

  constructor(
    private readonly ex: CfWorkerExecutor,
    private readonly req: IncomingMessage,
    private readonly res: ResponseSink,
    private readonly stats: RequestStats,
  ) {
    const facts = { hasBody: false };
    const peer = peerOf(req.socket).address || '127.0.0.1';
    const headers = requestHeaders(req.rawHeaders, peer, 'http', facts);
    this.ray = ex.nextRay();
    headers.push(CF_HEADER, CF_JSON[req.httpVersion] ?? CF_JSON['1.1'], 'cf-connecting-ip', peer, 'cf-ray', this.ray, 'cf-visitor', '{"scheme":"http"}');
    let body: PassThrough | null = null;
    if (facts.hasBody) {
      body = new PassThrough();
      req.pipe(body);
    }
    this.body = body;
    this.opts = { path: req.url!, method: req.method as Dispatcher.HttpMethod, headers, body };
    res.on('close', () => this.clientClosed());
  }

  start(e: Engine | Error): void {
    if (e instanceof Error) {
      this.done = true;
      const code = e instanceof FlexiError && answersHttp(e.code) ? e.code : 'FLX_CFW_START';
      sendError(this.res, code, e.message);
      return;
    }
    this.engine = e;
    if (this.clientGone) {
      this.done = true;
      this.ex.pool.release(e);
      return;
    }
    this.cpu0 = e.cpuNs();
    // CPU time never runs ahead of wall time: the first look is due at cpu_ms.
    this.timer = setTimeout(this.watch, this.ex.spec.cpuMs);
    try {
      e.client.dispatch(this.opts, this);
    } catch (err) {
      this.onError(err as Error);
    }
  }

  private readonly watch = (): void => {
    this.timer = undefined;
    if (this.done) return;
    const used = this.engine.cpuNs() - this.cpu0;
    if (used >= this.ex.cpuNs) {
      this.engine.stop('cpu');
      this.abort?.(new Error('cpu'));
      return;
    }
    this.timer = setTimeout(this.watch, Math.max(1, (this.ex.cpuNs - used) / 1e6));
  };

  private overCpu(): boolean {
    return this.engine.ended === 'cpu' || this.engine.cpuNs() - this.cpu0 >= this.ex.cpuNs;
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true;
    if (this.overCpu()) {
      this.engine.stop('cpu');
      this.abort?.(new Error('cpu'));
      return false;
    }
    this.resume = resume;
    try {
      writeRelayedHead(this.res, statusCode, statusText, responseHeaders(rawHeaders));
    } catch (err) {
      this.abort?.(new Error(`workerd sent a response head node:http refuses: ${(err as Error).message}`));
      return false;
    }
    this.started = true;
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.bytes += chunk.length;
    return relayChunk(this.res, chunk, (this.onDrain ??= () => this.resume?.()));
  }

  onComplete(): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.stats.bytes = this.bytes;
    this.res.end();
    const over = this.overCpu();
    if (over) this.ex.log.warn({ route: this.ex.route.key, worker: this.ex.spec.name, code: 'FLX_CFW_CPU', cpuMs: this.ex.spec.cpuMs }, `${this.ex.label}: a request used more than ${this.ex.spec.cpuMs} ms of CPU as it finished: the isolate is recycled`);
    this.ex.pool.release(this.engine, over);
  }

  onError(err: Error): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    const e = this.engine;
    if (this.clientGone) {
      this.ex.pool.release(e);
      return;
    }
    // A cut connection comes before the process's exit: wait for it to tell why.
    const settle = e.ended === undefined && err.message !== 'cpu' ? e.whenExited(500) : Promise.resolve();
    void settle.then(() => this.failed(err));
  }

  private failed(err: Error): void {
    const { ex, engine: e } = this;
    const why = e.ended;
    ex.pool.release(e, why !== undefined);
    if (this.body !== null && !this.req.complete) {
      this.req.unpipe();
      this.req.resume();
    }
    if (why === 'cpu' || why === 'memory') {
      const code: HttpErrorCode = why === 'cpu' ? 'FLX_CFW_CPU' : 'FLX_CFW_MEMORY';
      const limit = why === 'cpu' ? `${ex.spec.cpuMs} ms of CPU` : `${ex.spec.memoryBytes} bytes of memory`;
      ex.log.warn({ route: ex.route.key, worker: ex.spec.name, code, pid: e.pid }, `${ex.label}: the request exceeded ${limit}: answered error 1102, the isolate is recycled`);
      sendCloudflareError(this.res, 1102, code, this.ray);
      return;
    }
    ex.log.warn({ route: ex.route.key, worker: ex.spec.name, code: 'FLX_CFW_CRASHED', pid: e.pid, err: err.message, lastWords: e.lastWords }, `${ex.label}: workerd failed during the request`);
    if (this.started) this.res.destroy();
    else sendError(this.res, 'FLX_CFW_CRASHED', `${ex.label}: workerd failed during the request: ${err.message}`);
  }

  private clientClosed(): void {
    if (this.done) return;
    this.clientGone = true;
    this.body?.destroy();
    this.abort?.(new Error('the client closed the connection'));
  }
}
