/**
 * The admin listener: the home of every operator endpoint (health, metrics,
 * and the management APIs of upstream pools and WASM services). Owned by the
 * supervisor, separate from the traffic port, default 127.0.0.1:8687.
 *
 * Routes register with a method and a pattern whose `:name` segments become
 * params. Handlers return a reply or throw a FlexiError whose code answers
 * HTTP, which answers JSON `{"error": {"code", "message", "field"?}}` with
 * the code's status and `x-flexilib-error: CODE`; anything else is
 * FLX_ADMIN_INTERNAL.
 *
 * Auth: routes registered as mutating require `Authorization: Bearer <token>`
 * whenever a token is configured; the listener refuses to start bound beyond
 * loopback without one.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { answersHttp, ERROR_HEADER, FlexiError, statusOf, type HttpErrorCode } from '@flexilib/contract';

export interface AdminRequest {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  /** The body parsed as JSON; FLX_ADMIN_BAD_JSON (400) when it is not. */
  json(): Promise<unknown>;
  raw: IncomingMessage;
}

export interface AdminReply {
  status?: number;
  /** Serialized as JSON. */
  json?: unknown;
  /** Sent as is, with contentType (default text/plain). */
  text?: string;
  contentType?: string;
  headers?: Record<string, string>;
}

export type AdminHandler = (req: AdminRequest) => AdminReply | Promise<AdminReply>;

export interface AdminOptions {
  host: string;
  port: number;
  /** Bearer token for mutating routes (ADMIN_TOKEN). */
  token?: string;
  /** Largest accepted request body (JSON), bytes. */
  maxBodyBytes?: number;
}

interface Route {
  method: string;
  segments: string[];
  handler: AdminHandler;
  mutating: boolean;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** Runs before every mutating handler; throws a FlexiError to refuse the call (cluster mode: etcd unreachable). */
export type MutationGate = (req: { method: string; path: string }) => void;

export class AdminServer {
  private readonly routes: Route[] = [];
  private readonly gates: MutationGate[] = [];
  private server: http.Server | undefined;
  port: number | undefined;

  constructor(private readonly opts: AdminOptions, private readonly log: Logger) {
    if (!isLoopback(opts.host) && !opts.token) {
      throw new FlexiError('FLX_ADMIN_NO_TOKEN', `admin listener on ${opts.host} is beyond loopback: set ADMIN_TOKEN to protect its mutating endpoints`);
    }
  }

  /** Register a handler. Mutating routes require the bearer token when one is set. */
  route(method: string, pattern: string, handler: AdminHandler, opts: { mutating?: boolean } = {}): this {
    this.routes.push({ method, segments: pattern.split('/').filter(Boolean), handler, mutating: opts.mutating ?? method !== 'GET' });
    return this;
  }

  /** Check every mutating call first (after the token). */
  gate(fn: MutationGate): this {
    this.gates.push(fn);
    return this;
  }

  listen(): Promise<number> {
    const server = http.createServer((req, res) => void this.dispatch(req, res));
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.opts.host, port: this.opts.port }, () => {
        const addr = server.address();
        this.port = addr && typeof addr === 'object' ? addr.port : this.opts.port;
        server.off('error', reject);
        resolve(this.port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private match(method: string, parts: string[]): { route?: Route; params: Record<string, string>; allowed: string[] } {
    const allowed: string[] = [];
    for (const r of this.routes) {
      if (r.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length && ok; i++) {
        const seg = r.segments[i];
        if (seg.startsWith(':')) params[seg.slice(1)] = decodeParam(seg.slice(1), parts[i]);
        else ok = seg === parts[i];
      }
      if (!ok) continue;
      if (r.method === method || (method === 'HEAD' && r.method === 'GET')) return { route: r, params, allowed };
      allowed.push(r.method);
    }
    return { params: {}, allowed };
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let pathname = req.url ?? '/';
    try {
      const url = parseTarget(req.url ?? '/');
      pathname = url.pathname;
      const parts = url.pathname.split('/').filter(Boolean);
      const { route, params, allowed } = this.match(req.method ?? 'GET', parts);
      if (!route) {
        if (allowed.length) throw new FlexiError('FLX_ADMIN_METHOD', `${req.method} is not allowed on ${url.pathname} (allowed: ${allowed.join(', ')})`, { field: 'method' });
        throw new FlexiError('FLX_ADMIN_NOT_FOUND', `no admin endpoint ${url.pathname}`, { field: 'path' });
      }
      if (route.mutating && this.opts.token) this.authorize(req);
      if (route.mutating) for (const g of this.gates) g({ method: req.method ?? 'GET', path: url.pathname });
      const reply = await route.handler({
        method: req.method ?? 'GET',
        path: url.pathname,
        params,
        query: url.searchParams,
        headers: req.headers,
        json: () => readJson(req, this.opts.maxBodyBytes ?? 16 * 1024 * 1024),
        raw: req,
      });
      send(res, reply);
    } catch (err) {
      if (err instanceof FlexiError && answersHttp(err.code)) {
        sendError(res, err.code, err.message, err.field, err.headers);
      } else {
        this.log.error({ err: (err as Error).message, stack: (err as Error).stack, path: pathname }, 'admin handler failed');
        sendError(res, 'FLX_ADMIN_INTERNAL', (err as Error).message);
      }
    }
  }

  private authorize(req: IncomingMessage): void {
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(.+)$/i.exec(header);
    const given = Buffer.from(m ? m[1].trim() : '');
    const want = Buffer.from(this.opts.token!);
    if (!m || given.length !== want.length || !timingSafeEqual(given, want)) {
      throw new FlexiError('FLX_ADMIN_UNAUTHORIZED', 'this endpoint requires Authorization: Bearer <ADMIN_TOKEN>', { field: 'authorization' });
    }
  }
}

/** An error answer: the code's status, its JSON body, x-flexilib-error. */
function sendError(res: ServerResponse, code: HttpErrorCode, message: string, field?: string, extra?: Record<string, string>): void {
  const status = statusOf(code);
  // A refused body was not read to its end: close rather than parse the rest as a request.
  const headers: Record<string, string> = status === 413 ? { connection: 'close', [ERROR_HEADER]: code } : { ...extra, [ERROR_HEADER]: code };
  send(res, { status, headers, json: { error: { code, message, ...(field ? { field } : {}) } } });
}

function send(res: ServerResponse, reply: AdminReply): void {
  const status = reply.status ?? 200;
  let body: string;
  let type: string;
  if (reply.json !== undefined) {
    body = JSON.stringify(reply.json) + '\n';
    type = 'application/json';
  } else {
    body = reply.text ?? '';
    type = reply.contentType ?? 'text/plain; charset=utf-8';
  }
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...reply.headers });
  res.end(body);
}

/** The request target as a URL; 400 when it cannot be one (an absolute-form target with a bad host, ...). */
function parseTarget(target: string): URL {
  try {
    return new URL(target, 'http://admin');
  } catch {
    throw new FlexiError('FLX_ADMIN_BAD_TARGET', 'the request target is not a path such as /services', { field: 'target' });
  }
}

/** A path parameter, percent-decoded; 400 naming it when its escapes are malformed ("%zz", a lone "%"). */
function decodeParam(name: string, raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new FlexiError('FLX_ADMIN_BAD_TARGET', `${name}: malformed percent-encoding in the path`, { field: name });
  }
}

/**
 * The body as JSON. Beyond `limit` the rest is read and dropped, not kept:
 * the 413 then reaches a client that sends its whole body before reading
 * (destroying the socket mid-body would lose the answer to a reset). A body
 * that never ends is cut by the server's requestTimeout.
 */
function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const tooLarge = () => new FlexiError('FLX_ADMIN_BODY_TOO_LARGE', `request body exceeds ${limit} bytes`, { field: 'body' });
    const declared = Number(req.headers['content-length']);
    let over = Number.isFinite(declared) && declared > limit;
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (over) return reject(tooLarge());
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return reject(new FlexiError('FLX_ADMIN_BAD_JSON', 'request body is empty: expected JSON', { field: 'body' }));
      try {
        resolve(JSON.parse(text));
      } catch (err) {
        reject(new FlexiError('FLX_ADMIN_BAD_JSON', `malformed JSON: ${(err as Error).message}`, { field: 'body' }));
      }
    });
    req.on('error', (err) => reject(new FlexiError('FLX_ADMIN_BAD_BODY', `the request body could not be read: ${err.message}`, { field: 'body' })));
  });
}
