/**
 * The admin listener: the home of every operator endpoint (health, metrics,
 * and the management APIs of upstream pools and WASM services). Owned by the
 * supervisor, separate from the traffic port, default 127.0.0.1:8687.
 *
 * Routes register with a method and a pattern whose `:name` segments become
 * params. Handlers return a reply or throw ApiError, which answers JSON
 * `{"error": {"code", "message", "field"?}}` with its status.
 *
 * Auth: routes registered as mutating require `Authorization: Bearer <token>`
 * whenever a token is configured; the listener refuses to start bound beyond
 * loopback without one.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';

export interface AdminRequest {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  /** The body parsed as JSON; ApiError 400 when it is not. */
  json(): Promise<unknown>;
  raw: IncomingMessage;
}

export interface AdminReply {
  status?: number;
  /** Serialized as JSON. */
  json?: unknown;
  /** Sent as is, with contentType (default text/plain). */
  text?: string;
  /** Bytes sent as is, with contentType (the Lambda API's payloads). */
  body?: Buffer;
  contentType?: string;
  headers?: Record<string, string>;
}

export type AdminHandler = (req: AdminRequest) => AdminReply | Promise<AdminReply>;

/** An error an admin handler answers with; `field` names the offending input. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly field?: string) {
    super(message);
    this.name = 'ApiError';
  }
}

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

export class AdminServer {
  private readonly routes: Route[] = [];
  private server: http.Server | undefined;
  port: number | undefined;

  constructor(private readonly opts: AdminOptions, private readonly log: Logger) {
    if (!isLoopback(opts.host) && !opts.token) {
      throw new ApiError(500, 'FLX_ADMIN_NO_TOKEN', `admin listener on ${opts.host} is beyond loopback: set ADMIN_TOKEN to protect its mutating endpoints`);
    }
  }

  /** Register a handler. Mutating routes require the bearer token when one is set. */
  route(method: string, pattern: string, handler: AdminHandler, opts: { mutating?: boolean } = {}): this {
    this.routes.push({ method, segments: pattern.split('/').filter(Boolean), handler, mutating: opts.mutating ?? method !== 'GET' });
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
        if (seg.startsWith(':')) params[seg.slice(1)] = decodeURIComponent(parts[i]);
        else ok = seg === parts[i];
      }
      if (!ok) continue;
      if (r.method === method || (method === 'HEAD' && r.method === 'GET')) return { route: r, params, allowed };
      allowed.push(r.method);
    }
    return { params: {}, allowed };
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const parts = url.pathname.split('/').filter(Boolean);
    try {
      const { route, params, allowed } = this.match(req.method ?? 'GET', parts);
      if (!route) {
        if (allowed.length) throw new ApiError(405, 'FLX_ADMIN_METHOD', `${req.method} is not allowed on ${url.pathname} (allowed: ${allowed.join(', ')})`);
        throw new ApiError(404, 'FLX_ADMIN_NOT_FOUND', `no admin endpoint ${url.pathname}`);
      }
      if (route.mutating && this.opts.token) this.authorize(req);
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
      if (err instanceof ApiError) {
        send(res, { status: err.status, json: { error: { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) } } });
      } else {
        this.log.error({ err: (err as Error).message, stack: (err as Error).stack, path: url.pathname }, 'admin handler failed');
        send(res, { status: 500, json: { error: { code: 'FLX_ADMIN_INTERNAL', message: (err as Error).message } } });
      }
    }
  }

  private authorize(req: IncomingMessage): void {
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(.+)$/i.exec(header);
    const given = Buffer.from(m ? m[1].trim() : '');
    const want = Buffer.from(this.opts.token!);
    if (!m || given.length !== want.length || !timingSafeEqual(given, want)) {
      throw new ApiError(401, 'FLX_ADMIN_UNAUTHORIZED', 'this endpoint requires Authorization: Bearer <ADMIN_TOKEN>', 'authorization');
    }
  }
}

function send(res: ServerResponse, reply: AdminReply): void {
  const status = reply.status ?? 200;
  let body: string | Buffer;
  let type: string;
  if (reply.body !== undefined) {
    body = reply.body;
    type = reply.contentType ?? 'application/octet-stream';
  } else if (reply.json !== undefined) {
    body = JSON.stringify(reply.json) + '\n';
    type = 'application/json';
  } else {
    body = reply.text ?? '';
    type = reply.contentType ?? 'text/plain; charset=utf-8';
  }
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), ...reply.headers });
  res.end(body);
}

function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new ApiError(413, 'FLX_ADMIN_BODY_TOO_LARGE', `request body exceeds ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return reject(new ApiError(400, 'FLX_ADMIN_BAD_JSON', 'request body is empty: expected JSON'));
      try {
        resolve(JSON.parse(text));
      } catch (err) {
        reject(new ApiError(400, 'FLX_ADMIN_BAD_JSON', `malformed JSON: ${(err as Error).message}`));
      }
    });
    req.on('error', reject);
  });
}
