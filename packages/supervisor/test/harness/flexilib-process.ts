/**
 * Test harness: runs the real `flexilib` command (supervisor and workers) on
 * 127.0.0.1 with port 0, reads its stdout log lines, talks HTTP to it, and
 * cleans up its whole process group.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '../../../..');
export const FLEXILIB_BIN = path.join(REPO, 'packages/supervisor/bin/flexilib');
export const ABI_INCLUDE = path.join(REPO, 'packages/plugin-abi/include');
export const FIXTURES = path.join(REPO, 'packages/test-support/fixtures');

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `flexilib-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Compile a C plugin against flexilib.h with the machine's cc. */
export function compilePlugin(source: string, outDir: string, name = path.basename(source, '.c')): string {
  const out = path.join(outDir, `lib${name}.so`);
  const r = spawnSync('cc', ['-std=c11', '-O2', '-Wall', '-Werror', '-fPIC', '-shared', '-I', ABI_INCLUDE, '-o', out, source], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cc failed for ${source}:\n${r.stderr}`);
  return out;
}

export function writeConfig(dir: string, text: string): string {
  const file = path.join(dir, 'proxy.ini');
  writeFileSync(file, text);
  return file;
}

export async function eventually<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export type LogLine = Record<string, unknown> & { msg?: string };

export class Flexilib {
  readonly lines: string[] = [];
  private partial = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  port = 0;
  adminPort = 0;

  constructor(readonly proc: ChildProcess) {
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (chunk: string) => {
      const parts = (this.partial + chunk).split('\n');
      this.partial = parts.pop()!;
      this.lines.push(...parts);
    });
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => this.lines.push(...chunk.split('\n').filter(Boolean).map((l) => `stderr: ${l}`)));
    this.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** stdout lines that are JSON log records. */
  json(): LogLine[] {
    const out: LogLine[] = [];
    for (const l of this.lines) {
      if (!l.startsWith('{')) continue;
      try {
        out.push(JSON.parse(l) as LogLine);
      } catch {
        /* not JSON */
      }
    }
    return out;
  }

  waitForLog(what: string, pred: (l: LogLine) => boolean, timeoutMs = 15_000): Promise<LogLine> {
    return eventually(what, () => {
      if (this.proc.exitCode !== null) throw new Error(`flexilib exited (${this.proc.exitCode}) before ${what}:\n${this.lines.join('\n')}`);
      return this.json().find(pred);
    }, timeoutMs);
  }

  /** Stop: SIGTERM, then SIGKILL to the whole process group if it lingers. */
  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.killGroup(), 5000);
      await this.exited;
      clearTimeout(t);
    }
    this.killGroup();
  }

  private killGroup(): void {
    try {
      process.kill(-this.proc.pid!, 'SIGKILL');
    } catch {
      /* group already gone */
    }
  }
}

export interface StartOptions {
  config: string;
  workers?: number;
  args?: string[];
  env?: Record<string, string>;
  /** Wait for "flexilib listening" (default) or only for "admin listening". */
  waitFor?: 'listening' | 'admin';
  /**
   * How to learn the ports: from the JSON log lines (default), from the
   * LOG_FORMAT=text lines, or — when the log level hides both — ports picked
   * free beforehand, with readiness polled on /readyz.
   */
  discover?: 'json' | 'text' | 'free-ports';
}

/** A port free right now (bound to 0 and released), for runs whose logs cannot say which port they took. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Start `flexilib` on port 0 with an admin port 0; resolves once it is up. */
export async function startFlexilib(opts: StartOptions): Promise<Flexilib> {
  const discover = opts.discover ?? 'json';
  const ports = discover === 'free-ports' ? [await freePort(), await freePort()] : [0, 0];
  const args = [FLEXILIB_BIN, '--config', opts.config, '--host', '127.0.0.1', '--port', String(ports[0]), '--admin-port', String(ports[1]), '--workers', String(opts.workers ?? 2), ...(opts.args ?? [])];
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_FORMAT: discover === 'text' ? 'text' : 'json', ...opts.env };
  const proc = spawn(process.execPath, args, { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const f = new Flexilib(proc);
  const waitListening = (opts.waitFor ?? 'listening') === 'listening';
  try {
    if (discover === 'free-ports') {
      [f.port, f.adminPort] = ports;
      await eventually('/readyz to answer', async () => {
        if (proc.exitCode !== null) throw new Error(`flexilib exited (${proc.exitCode}):\n${f.lines.join('\n')}`);
        const r = await request(f.adminPort, '/readyz');
        return !waitListening || r.status === 200 ? true : undefined;
      }, 15_000);
    } else if (discover === 'text') {
      const line = (what: string) => eventually(what, () => {
        if (proc.exitCode !== null) throw new Error(`flexilib exited (${proc.exitCode}):\n${f.lines.join('\n')}`);
        return f.lines.find((l) => l.includes(` ${what} `));
      }, 15_000);
      f.adminPort = Number(/ port=(\d+)/.exec(await line('admin listening'))![1]);
      if (waitListening) f.port = Number(/ port=(\d+)/.exec(await line('flexilib listening'))![1]);
    } else {
      const admin = await f.waitForLog('"admin listening"', (l) => l.msg === 'admin listening');
      f.adminPort = admin.port as number;
      if (waitListening) {
        const ready = await f.waitForLog('"flexilib listening"', (l) => l.msg === 'flexilib listening');
        f.port = ready.port as number;
      }
    }
  } catch (err) {
    await f.stop();
    throw err;
  }
  return f;
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request on a fresh connection (Connection: close), so node:cluster spreads them over the workers. */
export function request(port: number, target: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: target, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`request ${target} timed out`)));
    req.on('error', reject);
    req.end();
  });
}
