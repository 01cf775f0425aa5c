/**
 * Shared by the upstream tests: real origin servers on loopback (in this
 * process or as child processes that can be killed), the real flexilib command
 * on port 0, and a bounded keep-alive load loop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';

export const ROOT = path.resolve(import.meta.dirname, '../../../..');
const CLI = path.join(ROOT, 'packages/supervisor/bin/flexilib');
const ORIGIN_FIXTURE = path.join(import.meta.dirname, 'fixtures/origin.mjs');

export function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'flexilib-upstream-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** An origin server in this process. `hits` counts requests; `name` answers in x-origin. */
export interface Origin {
  name: string;
  port: number;
  url: string;
  hits: number;
  server: http.Server;
  close(): Promise<void>;
}

export type OriginHandler = (req: http.IncomingMessage, res: http.ServerResponse, origin: Origin) => void;

/** Answers `name` (and counts) unless a handler is given; /health answers 200. */
export async function startOrigin(t: { after(fn: () => unknown): void }, name: string, handler?: OriginHandler, port = 0): Promise<Origin> {
  const origin = { name, hits: 0 } as Origin;
  const server = http.createServer((req, res) => {
    if (req.url === '/health') {
      res.end('ok');
      return;
    }
    origin.hits++;
    res.setHeader('x-origin', name);
    if (handler) handler(req, res, origin);
    else {
      req.resume();
      req.on('end', () => res.end(name));
    }
  });
  server.keepAliveTimeout = 10_000;
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  origin.server = server;
  origin.port = (server.address() as AddressInfo).port;
  origin.url = `http://127.0.0.1:${origin.port}`;
  let closed = false;
  origin.close = async () => {
    if (closed) return;
    closed = true;
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };
  t.after(() => origin.close());
  return origin;
}

/** An origin in a child process (fixtures/origin.mjs), for killing with SIGKILL. */
export interface ChildOrigin {
  port: number;
  url: string;
  proc: ChildProcess;
  kill(): Promise<void>;
}

export async function startChildOrigin(t: { after(fn: () => unknown): void }, name: string, port = 0, backlog = 511): Promise<ChildOrigin> {
  const proc = spawn(process.execPath, [ORIGIN_FIXTURE, name, String(port), String(backlog)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const kill = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGKILL');
    await once(proc, 'exit');
  };
  t.after(kill);
  let buf = '';
  const actual = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`origin ${name} did not start`)), 10_000);
    proc.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      const m = /listening (\d+)/.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.once('exit', (code) => reject(new Error(`origin ${name} exited with ${code}`)));
  });
  return { port: actual, url: `http://127.0.0.1:${actual}`, proc, kill };
}

/** A running flexilib command. */
export interface Flexilib {
  port: number;
  adminPort: number;
  proc: ChildProcess;
  /** Every line it printed so far (JSON log lines), parsed when possible. */
  lines: Array<Record<string, unknown>>;
  stderr: string;
  waitForLine(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

export interface StartOptions {
  config: string;
  workers?: number;
  env?: Record<string, string>;
  args?: string[];
}

/** Start `flexilib --config FILE --port 0 --admin-port 0` and wait for its "flexilib listening" line. */
export async function startFlexilib(t: { after(fn: () => unknown): void }, opts: StartOptions): Promise<Flexilib> {
  const args = [CLI, '--config', opts.config, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--workers', String(opts.workers ?? 2), '--no-access-log', ...(opts.args ?? [])];
  const env = { ...process.env, LOG_FORMAT: 'json', ADMIN_TOKEN: '', ...opts.env };
  const proc = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  let out = '';
  let stderr = '';
  proc.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    let nl;
    while ((nl = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ raw: line });
      }
    }
    for (const w of waiters) w();
  });
  proc.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await once(proc, 'exit');
    clearTimeout(timer);
  };
  t.after(stop);
  const waitForLine = (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 15_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const hit = lines.find(pred);
        if (hit) {
          waiters.delete(check);
          clearTimeout(timer);
          proc.off('exit', onExit);
          resolve(hit);
        }
      };
      const onExit = (code: number | null) => {
        waiters.delete(check);
        clearTimeout(timer);
        reject(new Error(`flexilib exited (${code}) before the awaited line; stderr: ${stderr}`));
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        proc.off('exit', onExit);
        reject(new Error(`timed out waiting for a log line; stderr: ${stderr}`));
      }, timeoutMs);
      waiters.add(check);
      proc.once('exit', onExit);
      check();
    });
  const ready = await waitForLine((l) => l.msg === 'flexilib listening');
  return {
    port: ready.port as number,
    adminPort: ready.adminPort as number,
    proc,
    lines,
    get stderr() {
      return stderr;
    },
    waitForLine,
    stop,
  };
}

/** Write a config into `dir` and return its path. */
export function writeConfig(dir: string, text: string, name = 'proxy.ini'): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** One request through a keep-alive agent (the way a load balancer's clients talk). */
export function request(port: number, p: string, opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; agent?: http.Agent | false } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent ?? agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A JSON call to the admin listener. */
export async function admin(port: number, method: string, p: string, body?: unknown, token?: string): Promise<{ status: number; json: any }> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  let payload: string | undefined;
  if (body !== undefined) {
    payload = typeof body === 'string' ? body : JSON.stringify(body);
    headers['content-type'] = 'application/json';
  }
  const r = await request(port, p, { method, headers, body: payload, agent: false });
  return { status: r.status, json: r.body ? JSON.parse(r.body) : undefined };
}

export interface LoadResult {
  ok: number;
  failed: number;
  byOrigin: Map<string, number>;
  statuses: Map<number, number>;
  errors: string[];
}

/**
 * `concurrency` keep-alive loops of requests until `stop()` is called, or
 * `maxRequests` or `maxMs` is reached (whichever first; always bounded).
 */
export function load(port: number, p: string, opts: { concurrency?: number; maxRequests?: number; maxMs?: number; method?: string; body?: string } = {}) {
  const result: LoadResult = { ok: 0, failed: 0, byOrigin: new Map(), statuses: new Map(), errors: [] };
  const maxRequests = opts.maxRequests ?? 200_000;
  const deadline = Date.now() + (opts.maxMs ?? 20_000);
  let stopped = false;
  let sent = 0;
  const loopAgent = new http.Agent({ keepAlive: true, maxSockets: opts.concurrency ?? 8 });
  const loop = async () => {
    while (!stopped && sent < maxRequests && Date.now() < deadline) {
      sent++;
      try {
        const r = await request(port, p, { method: opts.method, body: opts.body, agent: loopAgent });
        result.statuses.set(r.status, (result.statuses.get(r.status) ?? 0) + 1);
        if (r.status === 200) {
          result.ok++;
          const o = String(r.headers['x-origin']);
          result.byOrigin.set(o, (result.byOrigin.get(o) ?? 0) + 1);
        } else {
          result.failed++;
          if (result.errors.length < 20) result.errors.push(`${r.status} ${r.body.trim()}`);
        }
      } catch (err) {
        result.failed++;
        if (result.errors.length < 20) result.errors.push((err as Error).message);
      }
    }
  };
  const done = Promise.all(Array.from({ length: opts.concurrency ?? 8 }, loop)).then(() => {
    loopAgent.destroy();
    return result;
  });
  return {
    result,
    done,
    stop(): Promise<LoadResult> {
      stopped = true;
      return done;
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function until<T>(fn: () => T | Promise<T>, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** A port nothing listens on: bound then released (connection refused afterwards). */
export async function deadPort(): Promise<number> {
  const s = http.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
