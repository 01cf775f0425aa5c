/**
 * The WASM executor: answers a route's requests by calling handle_request in
 * a sandboxed instance of its module (instance-pool.ts), on the same ABI as
 * native plugins. Answers of its own: 502 when the module cannot load, 504
 * past the time limit, 500 on a trap, proc_exit or memory exhaustion (naming
 * the cap), 503 when the queue is full.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { RouteSpec } from '@flexilib/contract';
import { answersHttp, FlexiError, statusOf, type HttpErrorCode } from '@flexilib/contract';
import type { Executor, RequestLike, RequestStats, ResponseSink, RouteCounters } from '../executor.js';
import { holdRequest } from '../http/held-request.js';
import { hasNoBody, readBody } from '../http/request-body.js';
import { sendError } from '../http/respond.js';
import { applyResponseRules, newPluginResponse, writeAnswer } from '../http/response-rules.js';
import { KIND, type CallResult } from './channel.js';
import type { WasmJob } from './instance.js';
import type { InstancePool } from './instance-pool.js';

export interface WasmExecutorDeps {
  pool: InstancePool;
  arenaBytes: number;
  maxBodyBytes: number;
  log: Logger;
}

class Job implements WasmJob {
  constructor(
    private readonly ex: WasmExecutor,
    public req: RequestLike,
    private readonly res: ResponseSink,
    public body: Buffer | null,
    private readonly stats: RequestStats,
    /** `req` is the fast lane's reused object, valid only during run(). */
    private borrowed: boolean,
  ) {}
  done(result: CallResult | FlexiError): void {
    this.ex.respond(this.res, this.stats, result);
  }
  queued(): void {
    if (!this.borrowed) return;
    this.req = holdRequest(this.req);
    this.body = this.req.body ?? null;
    this.borrowed = false;
  }
}

/** Set on the reused answer after writing, so it holds no call's headers or body. */
const NO_HEADERS: string[] = [];

/** A call's own failure codes, by the kind the instance thread reports. */
const FAILURE_CODE = {
  [KIND.TRAP]: 'FLX_WASM_TRAP',
  [KIND.EXIT]: 'FLX_WASM_EXIT',
  [KIND.MEMORY]: 'FLX_WASM_MEMORY',
  [KIND.BAD_RESPONSE]: 'FLX_WASM_BAD_RESPONSE',
} as const satisfies Record<number, HttpErrorCode>;

export class WasmExecutor implements Executor {
  readonly kind = 'wasm' as const;
  private readonly maxBody: number;
  /** The answer being written, refilled per call (writing is synchronous): one shape with the native slots'. */
  private readonly out = newPluginResponse();

  constructor(readonly route: RouteSpec, private readonly deps: WasmExecutorDeps) {
    this.maxBody = route.options.maxBodyBytes ?? deps.maxBodyBytes;
  }

  handle(req: IncomingMessage, res: ServerResponse, stats: RequestStats): void {
    if (hasNoBody(req)) this.deps.pool.run(new Job(this, req, res, null, stats, false));
    else readBody(req, res, this.maxBody, (body) => this.deps.pool.run(new Job(this, req, res, body, stats, false)));
  }

  /** The fast lane's call: the request is written into the instance's channel now, or held while it queues. */
  laneHandle(req: RequestLike, res: ResponseSink, stats: RequestStats): void {
    this.deps.pool.run(new Job(this, req, res, req.body ?? null, stats, true));
  }

  respond(res: ResponseSink, stats: RequestStats, r: CallResult | FlexiError): void {
    if (r instanceof FlexiError) {
      // Any other code (none is expected) is a module that could not be set up: 502.
      const code = answersHttp(r.code) ? r.code : 'FLX_WASM_INIT';
      this.deps.log.error({ route: this.route.key, code: r.code, status: statusOf(code), err: r.message }, 'WASM call failed');
      if (code === 'FLX_PLUGIN_BUSY') sendError(res, code, `route "${this.route.key}": ${r.message}`, { 'retry-after': '1' });
      else sendError(res, code, `route "${this.route.key}": ${r.message}`);
      return;
    }
    stats.arenaBytes = this.deps.arenaBytes;
    stats.alloc = r.heapBytes;
    if (r.kind !== KIND.OK) {
      const code = FAILURE_CODE[r.kind as keyof typeof FAILURE_CODE] ?? 'FLX_WASM_BAD_RESPONSE';
      this.deps.log.error({ route: this.route.key, code, status: statusOf(code), err: r.message }, 'WASM call failed');
      sendError(res, code, `route "${this.route.key}": ${r.message}`);
      return;
    }
    const out = this.out;
    out.status = r.status;
    out.reason = r.reason;
    out.headers = r.headers;
    out.hasContentType = r.hasContentType;
    out.body = r.body;
    out.heapBytes = r.heapBytes;
    applyResponseRules(out, r.rc);
    if (r.rc !== 0) this.deps.log.warn({ route: this.route.key, rc: r.rc, status: out.status }, 'plugin returned an error');
    stats.bytes = out.body.length;
    const refused = writeAnswer(res, out);
    out.headers = NO_HEADERS;
    out.body = '';
    if (refused !== null) {
      this.deps.log.error({ route: this.route.key, err: refused.message }, 'plugin produced an invalid response');
      sendError(res, 'FLX_PLUGIN_BAD_RESPONSE', `plugin for route "${this.route.key}" produced an invalid response: ${refused.message}`);
    }
  }

  countInto(counters: RouteCounters): void {
    this.deps.pool.countInto(counters);
  }

  /** Pools outlive executors (wasm-runtime.ts): nothing to release here. */
  close(): void {}
}
