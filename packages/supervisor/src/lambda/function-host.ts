/**
 * The Lambda function host: every function of this host (proxy.ini's
 * `[lambda.NAME]` sections and those created on the admin API) with their
 * environments, owned by the supervisor. Environments are per host, not per
 * worker: `concurrency = 4` means four environments whatever the number of
 * workers.
 *
 * Workers reach it over loopback HTTP (keep-alive, undici on their side):
 *
 *   POST /invoke/NAME    body: the event  ->  200 the payload, with
 *                        x-amz-function-error when the function failed;
 *                        429 throttled, 404 no such function
 *
 * The admin listener's Lambda API (lambda-api.ts) calls the same functions
 * in-process. A function folder that changes (bootstrap, code) replaces its
 * environments once their invocations finish, debounced.
 */
import { watch, type FSWatcher } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { LambdaSpec } from '@flexilib/contract';
import { LambdaFunction, Throttled, type InvokeOptions, type InvokeResult, type LogSink } from './lambda-function.js';
import { MAX_RESPONSE_BYTES } from './environment.js';

const RUNTIME_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'node-runtime.js');

/** The function does not exist (404 ResourceNotFoundException). */
export class NoSuchFunction extends Error {
  constructor(name: string) {
    super(`Function not found: arn:aws:lambda:us-east-1:123456789012:function:${name}`);
    this.name = 'ResourceNotFoundException';
  }
}

export class FunctionHost {
  private readonly functions = new Map<string, LambdaFunction>();
  /** Where each function came from: the config, or the admin API. */
  private readonly origin = new Map<string, 'config' | 'api'>();
  private readonly watchers = new Map<string, { dir: string; watcher: FSWatcher; timer?: NodeJS.Timeout }>();
  private server: http.Server | undefined;
  port: number | undefined;

  constructor(private readonly log: Logger, private readonly debounceMs = 150, private readonly sink: LogSink = (fn, line) => log.info({ lambda: fn }, line)) {}

  /** Listen on a loopback port for the workers. */
  listen(): Promise<number> {
    const server = http.createServer((req, res) => this.serveWorker(req, res));
    server.keepAliveTimeout = 60_000;
    server.requestTimeout = 0;
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: 0 }, () => {
        this.port = (server.address() as { port: number }).port;
        resolve(this.port);
      });
    });
  }

  get(name: string): LambdaFunction | undefined {
    return this.functions.get(name);
  }

  names(): string[] {
    return [...this.functions.keys()];
  }

  isFromConfig(name: string): boolean {
    return this.origin.get(name) === 'config';
  }

  invoke(name: string, payload: Buffer, opts?: InvokeOptions): Promise<InvokeResult> {
    const fn = this.functions.get(name);
    if (!fn) return Promise.reject(new NoSuchFunction(name));
    return fn.invoke(payload, opts);
  }

  /** The config's functions (start, and every SIGHUP): new ones added, changed ones replaced, gone ones stopped. */
  configure(specs: readonly LambdaSpec[]): void {
    const keep = new Set(specs.map((s) => s.name));
    for (const [name, o] of this.origin) if (o === 'config' && !keep.has(name)) this.remove(name);
    for (const spec of specs) this.put(spec, 'config');
  }

  /** Add or replace one function (config or API). */
  put(spec: LambdaSpec, origin: 'config' | 'api'): void {
    const fn = this.functions.get(spec.name);
    if (fn) {
      if (JSON.stringify(fn.spec) !== JSON.stringify(spec)) fn.replace(spec);
    } else this.functions.set(spec.name, new LambdaFunction(spec, RUNTIME_SCRIPT, this.sink, this.log));
    this.origin.set(spec.name, origin);
    this.watchFolder(spec);
  }

  remove(name: string): boolean {
    const fn = this.functions.get(name);
    if (!fn) return false;
    fn.stop();
    this.functions.delete(name);
    this.origin.delete(name);
    const w = this.watchers.get(name);
    if (w) {
      clearTimeout(w.timer);
      w.watcher.close();
      this.watchers.delete(name);
    }
    return true;
  }

  stop(): void {
    for (const name of [...this.functions.keys()]) this.remove(name);
    this.server?.close();
    this.server?.closeAllConnections();
  }

  private watchFolder(spec: LambdaSpec): void {
    const dir = spec.taskRoot;
    const current = this.watchers.get(spec.name);
    if (current?.dir === dir) return;
    if (current) current.watcher.close();
    this.watchers.delete(spec.name);
    try {
      const entry: { dir: string; watcher: FSWatcher; timer?: NodeJS.Timeout } = {
        dir,
        watcher: watch(dir, { recursive: true }, () => {
          clearTimeout(entry.timer);
          entry.timer = setTimeout(() => {
            this.log.info({ event: 'lambda-reloaded', function: spec.name, dir }, `function ${spec.name}: ${dir} changed; environments are replaced once their invocations finish`);
            this.functions.get(spec.name)?.replace();
          }, this.debounceMs);
        }),
      };
      entry.watcher.on('error', () => {});
      this.watchers.set(spec.name, entry);
    } catch (err) {
      this.log.warn({ code: 'FLX_LAMBDA_WATCH', function: spec.name, dir, err: (err as Error).message }, `function ${spec.name}: cannot watch ${dir}; changes need a SIGHUP`);
    }
  }

  private serveWorker(req: IncomingMessage, res: ServerResponse): void {
    const m = /^\/invoke\/([A-Za-z0-9_-]+)$/.exec(req.url ?? '');
    if (!m || req.method !== 'POST') return answer(res, 404, { message: `no endpoint ${req.method} ${req.url}` });
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_RESPONSE_BYTES) chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_RESPONSE_BYTES) return answer(res, 413, { message: 'Request Entity Too Large' });
      this.invoke(m[1], chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)).then(
        (r) => {
          const headers: Record<string, string | number> = { 'content-type': r.contentType, 'content-length': r.payload.length, 'x-amz-request-id': r.requestId };
          if (r.functionError) headers['x-amz-function-error'] = r.functionError;
          res.writeHead(200, headers);
          res.end(r.payload);
        },
        (err: Error) => answer(res, err instanceof Throttled ? 429 : err instanceof NoSuchFunction ? 404 : 500, { message: err.message }),
      );
    });
  }
}

function answer(res: ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
