/**
 * Test harness for the supervisor: compiles fixture plugins with cc, starts the
 * real `flexilib` command (port 0, its own process group so cleanup reaches the
 * workers), reads its JSON log lines, sends HTTP to 127.0.0.1 and runs bounded
 * keep-alive load.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const here = import.meta.dirname;
export const repoRoot = path.resolve(here, '../../..');
export const fixtures = path.join(repoRoot, 'packages/test-support/fixtures');
const includeDir = path.join(repoRoot, 'packages/plugin-abi/include');
const bin = path.join(repoRoot, 'packages/supervisor/bin/flexilib');

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A temp folder removed by the returned cleanup. */
export function tempDir(prefix = 'flexilib-sv-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Compile a fixture (or any C file) into a shared library. */
export async function compile(source: string, out: string, defines: string[] = []): Promise<string> {
  const src = path.isAbsolute(source) ? source : path.join(fixtures, source);
  await run('cc', ['-std=c11', '-O2', '-Wall', '-fPIC', '-shared', '-I', includeDir, ...defines.map((d) => `-D${d}`), '-o', out, src]);
  return out;
}

export type LogLine = Record<string, unknown> & { msg?: string; level?: number; time?: number };

export interface Server {
  proc: ChildProcess;
  port: number;
  adminPort: number;
  logs: LogLine[];
  /** Resolves with the first log line (already seen or future) matching, or rejects after timeoutMs. */
  waitLog(pred: (l: LogLine) => boolean, timeoutMs?: number, from?: number): Promise<LogLine>;
  /** Resolves with the exit code (or signal) once the process ends. */
  exited: Promise<{ code: number | null; signal: string | null }>;
  signal(sig: NodeJS.Signals): void;
  /** Worker pids currently listening, from the logs (replacements included, the dead removed). */
  workerPids(): number[];
  kill(): Promise<void>;
  stderr(): string;
}

export interface StartOptions {
  config: string;
  workers?: number;
  args?: string[];
  env?: Record<string, string>;
  cwd?: string;
}

export async function startServer(opts: StartOptions): Promise<Server> {
  const args = [bin, '--config', opts.config, '--host', '127.0.0.1', '--port', '0', '--admin-port', '0', '--workers', String(opts.workers ?? 2), '--log-format', 'json', '--no-access-log', ...(opts.args ?? [])];
  const proc = spawn(process.execPath, args, {
    cwd: opts.cwd ?? repoRoot,
    env: { ...process.env, NOTIFY_SOCKET: '', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const logs: LogLine[] = [];
  const waiters: Array<{ pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void; from: number }> = [];
  let buf = '';
  let err = '';
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (chunk: string) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let parsed: LogLine;
      try {
        parsed = JSON.parse(line) as LogLine;
      } catch {
        continue;
      }
      logs.push(parsed);
      const i = logs.length - 1;
      for (const w of [...waiters]) {
        if (i >= w.from && w.pred(parsed)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(parsed);
        }
      }
    }
  });
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (c: string) => (err += c));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));

  const waitLog = (pred: (l: LogLine) => boolean, timeoutMs = 10_000, from = 0) => {
    const hit = logs.slice(from).find(pred);
    if (hit) return Promise.resolve(hit);
    return new Promise<LogLine>((resolve, reject) => {
      const w = { pred, resolve: (l: LogLine) => (clearTimeout(t), resolve(l)), from };
      const t = setTimeout(() => {
        waiters.splice(waiters.indexOf(w), 1);
        reject(new Error(`no log line matched within ${timeoutMs} ms; stderr: ${err.slice(-2000)}; last lines: ${logs.slice(-8).map((l) => JSON.stringify(l)).join('\n')}`));
      }, timeoutMs);
      waiters.push(w);
    });
  };

  const kill = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      try {
        process.kill(-proc.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
      await exited;
    }
    // Workers of a killed supervisor exit on their own; make sure of it.
    try {
      process.kill(-proc.pid!, 'SIGKILL');
    } catch {
      /* group gone */
    }
    // A supervisor killed with SIGKILL leaves its run folder behind.
    for (const base of ['/dev/shm', os.tmpdir()]) {
      let names: string[] = [];
      try {
        names = readdirSync(base);
      } catch {
        /* no such folder */
      }
      for (const n of names) if (n.startsWith(`flexilib-${proc.pid}-`)) rmSync(path.join(base, n), { recursive: true, force: true });
    }
  };

  let ready: LogLine;
  try {
    ready = await Promise.race([
      waitLog((l) => l.msg === 'flexilib listening', 30_000),
      exited.then((e) => {
        throw new Error(`flexilib exited (${e.code ?? e.signal}) before listening: ${err}`);
      }),
    ]);
  } catch (e) {
    await kill();
    throw e;
  }
  return {
    proc,
    port: ready.port as number,
    adminPort: ready.adminPort as number,
    logs,
    waitLog,
    exited,
    signal: (sig) => process.kill(proc.pid!, sig),
    workerPids: () => {
      const pids = new Set<number>();
      for (const l of logs) {
        if (l.msg === 'worker listening') pids.add(l.workerPid as number);
        else if (l.code === 'FLX_WORKER_EXIT' || l.msg === 'worker stopped') pids.delete(l.workerPid as number);
      }
      return [...pids];
    },
    kill,
    stderr: () => err,
  };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request to 127.0.0.1. Rejects on a connection error or after timeoutMs. */
export function request(port: number, target: string, opts: { headers?: Record<string, string>; agent?: http.Agent | false; timeoutMs?: number; method?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: target, method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent ?? false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.setTimeout(opts.timeoutMs ?? 10_000, () => req.destroy(new Error(`request ${target} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Probe until `n` consecutive answers satisfy `ok` (so every worker agrees); returns the time it took. */
export async function waitFor(port: number, target: string, ok: (r: Reply) => boolean, opts: { n?: number; timeoutMs?: number; everyMs?: number } = {}): Promise<number> {
  const start = Date.now();
  const n = opts.n ?? 6;
  const deadline = start + (opts.timeoutMs ?? 10_000);
  let streak = 0;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const r = await request(port, target, { timeoutMs: 2000 });
      last = `${r.status} ${r.body.trim()}`;
      streak = ok(r) ? streak + 1 : 0;
    } catch (e) {
      last = (e as Error).message;
      streak = 0;
    }
    if (streak >= n) return Date.now() - start;
    await sleep(opts.everyMs ?? 10);
  }
  throw new Error(`${target}: no ${n} good answers in a row within ${opts.timeoutMs ?? 10_000} ms (last: ${last})`);
}

export interface LoadResult {
  ok: number;
  failed: number;
  errors: string[];
  /** Count of each 200 body seen. */
  bodies: Map<string, number>;
  /** Non-200 statuses seen. */
  statuses: Map<number, number>;
  /** Longest time without any successful answer, ms. */
  maxGapMs: number;
  /** Failures of each loop (each loop has one request in flight at a time). */
  failedByLoop: number[];
}

/**
 * `concurrency` loops, each sending requests one after another on keep-alive
 * connections, until stop() (bounded by maxMs). A failure is a connection
 * error or a status other than 200.
 */
export function load(port: number, target: string, opts: { concurrency?: number; maxMs?: number; headers?: Record<string, string> } = {}) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.concurrency ?? 8 });
  const n = opts.concurrency ?? 8;
  const result: LoadResult = { ok: 0, failed: 0, errors: [], bodies: new Map(), statuses: new Map(), maxGapMs: 0, failedByLoop: new Array<number>(n).fill(0) };
  let running = true;
  let lastOk = Date.now();
  const onOk = (body: string) => {
    const now = Date.now();
    result.maxGapMs = Math.max(result.maxGapMs, now - lastOk);
    lastOk = now;
    result.ok++;
    result.bodies.set(body, (result.bodies.get(body) ?? 0) + 1);
  };
  const stopAt = Date.now() + (opts.maxMs ?? 60_000);
  const loop = async (_: unknown, i: number) => {
    while (running && Date.now() < stopAt) {
      try {
        const r = await request(port, target, { agent, headers: opts.headers, timeoutMs: 5000 });
        if (r.status === 200) onOk(r.body.trim());
        else {
          result.failed++;
          result.failedByLoop[i]++;
          result.statuses.set(r.status, (result.statuses.get(r.status) ?? 0) + 1);
          if (result.errors.length < 20) result.errors.push(`${r.status} ${r.body.trim()}`);
        }
      } catch (e) {
        result.failed++;
        result.failedByLoop[i]++;
        if (result.errors.length < 20) result.errors.push((e as Error).message);
      }
    }
  };
  const loops = Array.from({ length: n }, loop);
  return {
    result,
    async stop(): Promise<LoadResult> {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return result;
    },
  };
}

/**
 * Send one request that kills its worker; resolves with the worker-exit log
 * line once the replacement listens (so the next crash finds two workers).
 * Resolves with the reply instead when the request is answered (no crash).
 */
export async function crashOnce(server: Server, target: string): Promise<{ exit?: LogLine; reply?: Reply }> {
  const from = server.logs.length;
  let reply: Reply;
  try {
    reply = await request(server.port, target, { timeoutMs: 8000 });
  } catch {
    const exit = await server.waitLog((l) => l.code === 'FLX_WORKER_EXIT', 5000, from);
    await server.waitLog((l) => l.msg === 'worker listening' && (l.replaces as { pid?: number } | undefined)?.pid === exit.workerPid, 15_000, from);
    return { exit };
  }
  return { reply };
}
