/**
 * The lambda executor: a route `lambda:NAME` turns each request into an AWS
 * event (http-event.ts), invokes the function on the supervisor's function
 * host over a keep-alive loopback connection (undici; no IPC per request),
 * and maps the result back (http-result.ts).
 *
 * Answers of its own, as API Gateway's: 502 {"message":"Internal Server
 * Error"} when the function failed (its error, a timeout, the memory limit,
 * an init error) or returned something unmappable; 429 {"message":"Too Many
 * Requests"} when the function is throttled; 413 beyond Lambda's 6 MB. Each
 * also carries x-flexilib-error: its FLX_LAMBDA_* code (counted in
 * flexilib_errors_total), so clients and metrics tell them from the function's own.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Pool } from 'undici';
import { ERROR_HEADER, statusOf, type HttpErrorCode, type LambdaSpec, type RouteSpec } from '@flexilib/contract';
import type { Executor, RequestStats, ResponseSink } from '../executor.js';
import { countErrorAnswer } from '../http/respond.js';
import { readBody } from '../http/request-body.js';
import { undici } from '../undici.js';
import { eventV1, eventV2 } from './http-event.js';
import { BadResult, httpAnswer } from './http-result.js';

/** Lambda's synchronous payload limit. */
const MAX_PAYLOAD = 6 * 1024 * 1024;
const DROPPED = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive']);

/** The worker's connection pool to the function host (one per worker, shared by every lambda route). */
export class LambdaHost {
  private pool: Pool | undefined;
  constructor(private readonly port: number) {}

  /** Made on the first invocation: undici is loaded only by workers that serve lambda routes (it costs ~15 MiB of RSS). */
  get dispatcher(): Pool {
    if (!this.pool) {
      this.pool = new (undici().Pool)(`http://127.0.0.1:${this.port}`, { keepAliveTimeout: 30_000, headersTimeout: 0, bodyTimeout: 0, pipelining: 1 });
    }
    return this.pool;
  }
}

const MESSAGE = { 502: 'Internal Server Error', 429: 'Too Many Requests', 413: 'Request Entity Too Large' } as Record<number, string>;

/** API Gateway's error answer for `code` (its status from the catalogue), with x-flexilib-error. */
function sendJson(res: ResponseSink, code: HttpErrorCode, stats: RequestStats): void {
  if (res.headersSent) return void res.destroy();
  const status = statusOf(code);
  const body = Buffer.from(JSON.stringify({ message: MESSAGE[status] }));
  stats.bytes = body.length;
  const headers = ['content-type', 'application/json', 'content-length', String(body.length), ERROR_HEADER, code];
  countErrorAnswer(res.meter, res.executor, headers);
  res.writeHead(status, headers);
  res.end(body);
}

export class LambdaExecutor implements Executor {
  readonly kind = 'lambda' as const;
  private readonly path: string;
  private readonly maxBody: number;
  private readonly build: typeof eventV2 | null;

  constructor(readonly route: RouteSpec, private readonly fn: LambdaSpec, private readonly host: LambdaHost | undefined, maxBodyBytes: number, private readonly log: Logger) {
    this.path = `/invoke/${fn.name}`;
    // The route's (or the server's) body limit, never beyond what one Lambda event can carry.
    this.maxBody = Math.min(route.options.maxBodyBytes ?? maxBodyBytes, MAX_PAYLOAD);
    this.build = fn.event === 'v2' ? eventV2 : fn.event === 'v1' ? eventV1 : null;
  }

  handle(req: IncomingMessage, res: ServerResponse, stats: RequestStats): void {
    readBody(req, res, this.maxBody, (body) => this.invoke(req, res, stats, body));
  }

  private invoke(req: IncomingMessage, res: ServerResponse, stats: RequestStats, body: Buffer): void {
    if (!this.host) return sendJson(res, 'FLX_LAMBDA_HOST', stats);
    const payload = this.build ? JSON.stringify(this.build(req, body, this.route)) : body;
    this.host.dispatcher.request({ method: 'POST', path: this.path, body: payload, headers: { 'content-type': 'application/json' } }).then(
      async (r) => {
        const out = Buffer.from(await r.body.arrayBuffer());
        if (r.statusCode === 429) return sendJson(res, 'FLX_LAMBDA_THROTTLED', stats);
        // The event (base64 grows a body by a third) exceeds Lambda's 6 MB payload.
        if (r.statusCode === 413) return sendJson(res, 'FLX_LAMBDA_BODY_TOO_LARGE', stats);
        if (r.statusCode !== 200) {
          this.log.error({ code: 'FLX_LAMBDA_HOST', route: this.route.key, function: this.fn.name, status: r.statusCode }, `route "${this.route.key}": the function host answered ${r.statusCode}: ${out.toString('utf8', 0, 300)}`);
          return sendJson(res, 'FLX_LAMBDA_HOST', stats);
        }
        if (r.headers['x-amz-function-error']) {
          this.log.warn({ code: 'FLX_LAMBDA_FUNCTION_ERROR', route: this.route.key, function: this.fn.name }, `route "${this.route.key}": function ${this.fn.name} failed: ${out.toString('utf8', 0, 300)}`);
          return sendJson(res, 'FLX_LAMBDA_FUNCTION_ERROR', stats);
        }
        let answer;
        try {
          answer = httpAnswer(this.fn.event, out, String(r.headers['content-type'] ?? 'application/json'));
        } catch (err) {
          if (!(err instanceof BadResult)) throw err;
          this.log.warn({ code: 'FLX_LAMBDA_BAD_RESPONSE', route: this.route.key, function: this.fn.name }, `route "${this.route.key}": function ${this.fn.name}: ${err.message}`);
          return sendJson(res, 'FLX_LAMBDA_BAD_RESPONSE', stats);
        }
        const headers: string[] = [];
        for (let i = 0; i < answer.headers.length; i += 2) if (!DROPPED.has(answer.headers[i].toLowerCase())) headers.push(answer.headers[i], answer.headers[i + 1]);
        headers.push('content-length', String(answer.body.length));
        stats.bytes = answer.body.length;
        try {
          res.writeHead(answer.status, headers);
        } catch (err) {
          this.log.warn({ code: 'FLX_LAMBDA_BAD_RESPONSE', route: this.route.key, function: this.fn.name }, `route "${this.route.key}": function ${this.fn.name}: ${(err as Error).message}`);
          return sendJson(res, 'FLX_LAMBDA_BAD_RESPONSE', stats);
        }
        res.end(req.method === 'HEAD' ? undefined : answer.body);
      },
      (err: Error) => {
        this.log.error({ code: 'FLX_LAMBDA_HOST', route: this.route.key, function: this.fn.name, err: err.message }, `route "${this.route.key}": cannot reach the function host: ${err.message}`);
        sendJson(res, 'FLX_LAMBDA_HOST', stats);
      },
    ).catch((err: Error) => {
      this.log.error({ code: 'FLX_LAMBDA_HOST', route: this.route.key, err: err.message }, 'lambda answer failed');
      sendJson(res, 'FLX_LAMBDA_HOST', stats);
    });
  }

  close(): void {}
}
