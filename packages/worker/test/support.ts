/**
 * Test support: compile real plugins with cc, start the real flexilib command,
 * talk to it over real sockets. Shared by the integration tests.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
export const includeDir = path.join(repoRoot, 'packages/plugin-abi/include');
export const cliPath = path.join(repoRoot, 'packages/supervisor/dist/cli.js');
export const fixturesDir = path.join(repoRoot, 'packages/test-support/fixtures');

/** A fresh temp folder, removed by the returned cleanup. */
export function tempDir(prefix = 'flexilib-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Compile C sources into a shared library with the machine's cc. */
export function compilePlugin(sources: string[], out: string, flags: string[] = []): string {
  const res = spawnSync('cc', ['-std=c11', '-O2', '-Wall', '-fPIC', '-shared', '-I', includeDir, ...flags, '-o', out, ...sources], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`cc failed for ${sources.join(' ')}:\n${res.stderr}`);
  return out;
}

export interface Server {
  proc: ChildProcess;
  port: number;
  adminPort: number;
  /** Every stdout line so far (JSON log lines parsed where possible). */
  lines: string[];
  stderr: () => string;
  /** Resolves with the first parsed log line matching pred. */
  waitForLog(pred: (obj: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Start `flexilib` on random ports; resolves once it logs "flexilib listening". */
export function startServer(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<Server> {
  const proc = spawn(process.execPath, [cliPath, '--port', '0', '--admin-port', '0', ...args], {
    cwd: opts.cwd ?? repoRoot,
    env: { ...process.env, LOG_FORMAT: 'json', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let err = '';
  let partial = '';
  const waiters: Array<{ pred: (o: Record<string, unknown>) => boolean; resolve: (o: Record<string, unknown>) => void }> = [];
  const check = (line: string) => {
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i].pred(obj)) {
        waiters[i].resolve(obj);
        waiters.splice(i, 1);
      }
    }
  };
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const l of parts) {
      lines.push(l);
      check(l);
    }
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));

  const waitForLog = (pred: (o: Record<string, unknown>) => boolean, timeoutMs = 10_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      for (const l of lines) {
        try {
          const o = JSON.parse(l) as Record<string, unknown>;
          if (pred(o)) return resolve(o);
        } catch { /* not JSON */ }
      }
      const t = setTimeout(() => reject(new Error(`timed out waiting for a log line; stderr:\n${err}\nstdout tail:\n${lines.slice(-20).join('\n')}`)), timeoutMs);
      waiters.push({ pred, resolve: (o) => { clearTimeout(t); resolve(o); } });
      void exited.then((code) => { clearTimeout(t); reject(new Error(`server exited with ${code} before the log line; stderr:\n${err}`)); });
    });

  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
    proc.kill(signal);
    const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(t);
    return code;
  };

  return waitForLog((o) => o.msg === 'flexilib listening', opts.timeoutMs ?? 15_000).then((o) => ({
    proc,
    port: o.port as number,
    adminPort: o.adminPort as number,
    lines,
    stderr: () => err,
    waitForLog,
    stop,
  }));
}

/** Run the flexilib command to completion (for usage and config errors). */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const res = spawnSync(process.execPath, [cliPath, ...args], { cwd: repoRoot, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 15_000 });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
  text: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

/** One HTTP request to 127.0.0.1:port. */
export function request(port: number, opts: { method?: string; path?: string; headers?: Record<string, string | string[]>; body?: Buffer | string; agent?: http.Agent | false } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path ?? '/', headers: opts.headers, agent: opts.agent ?? agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode!, headers: res.headers, rawHeaders: res.rawHeaders, body, text: body.toString('latin1') });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error('request timed out')));
    if (opts.body !== undefined) req.end(opts.body);
    else req.end();
  });
}

/** Write a proxy.ini into dir and return its path. */
export function writeConfig(dir: string, text: string, name = 'proxy.ini'): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}
