/**
 * The one way to run a flexilib server as a child process (the tests through
 * @flexilib/test-support, `flexilib conformance` for plugin authors): on
 * 127.0.0.1 and ports it picks itself (port 0), read through its log lines.
 *
 *   startFlexilib(opts) ── spawn, own process group ──> node BIN --workers 2 ...
 *        │                                              env HOST=127.0.0.1 PORT=0 ADMIN_PORT=0
 *        │                                                  LOG_FORMAT=json NOTIFY_SOCKET= ADMIN_TOKEN=
 *        │  stdout lines ──> lines[] ──(JSON)──> logs[] ──> waitForLog() waiters
 *        │  resolves on "flexilib listening" (its port and adminPort)
 *   stop() / kill() ──> signal; SIGKILL to the whole group past the grace time;
 *                       stragglers killed and the run folder swept
 *
 * The harness's own settings go in the environment, so a test's flags (and its
 * env) override them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePorts } from './free-port.js';
import { rawRequest } from './raw-http.js';

/** One JSON log record (pino): msg, level, time, and the event's own fields. */
export type LogLine = Record<string, unknown> & { msg?: string; level?: number; time?: number };

export interface StartOptions {
  /** The proxy.ini to serve (--config). Omitted: flexilib's own lookup (FLEXILIB_CONFIG, then ./proxy.ini in cwd). */
  config?: string;
  /** --workers, default 2. null: no flag (SERVER_THREAD_COUNT or flexilib's default decides). */
  workers?: number | null;
  /** false adds --no-access-log (less output under load). Default: flexilib's default, on. */
  accessLog?: boolean;
  /** Further flags, placed last so they win. */
  args?: string[];
  /** Variables set over the harness defaults, which are set over the test's own environment. */
  env?: NodeJS.ProcessEnv;
  /** false: start from an empty environment (plus the harness defaults and `env`) instead of process.env. */
  inheritEnv?: boolean;
  /** Default: this process's working folder. */
  cwd?: string;
  /** The flexilib script run with this node (packages/supervisor/bin/flexilib, or dist/cli.js). */
  bin?: string;
  /** An executable to run instead of `node bin` (a release's bin/flexilib). */
  command?: string;
  /** LOG_FORMAT (default json). The ports are read from text lines too. */
  logFormat?: 'json' | 'text';
  /**
   * 'zero' (default): --port 0 and --admin-port 0, the ports read from the log.
   * 'free': ports picked free beforehand, readiness polled on /readyz — only for
   * runs whose log level hides the "listening" lines (a port picked early can be
   * taken by someone else before flexilib binds it).
   */
  ports?: 'zero' | 'free';
  /** Resolve once every worker listens (default), or as soon as the admin listener is up (port stays 0). */
  ready?: 'listening' | 'admin';
  /** Startup deadline, default 30 s. */
  timeoutMs?: number;
}

export interface WaitOptions {
  /** Index in `logs` to search from (take `f.logs.length` before the action under test). */
  from?: number;
  /** Default 15 s. */
  timeoutMs?: number;
  /** What is awaited, for the error message (default: the predicate's source). */
  what?: string;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface Waiter {
  from: number;
  what: string;
  pred: (l: LogLine) => boolean;
  resolve: (l: LogLine) => void;
  reject: (e: Error) => void;
}

/** Process groups still running, killed if the test process exits first (a failed before(), a forgotten stop()). */
const live = new Set<number>();
process.once('exit', () => {
  for (const pgid of live) killGroup(pgid);
});

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    /* the group is gone */
  }
}

/** A supervisor killed with SIGKILL leaves its run folder (/dev/shm/flexilib-<pid>-*) behind. */
function sweepRunFolders(pid: number): void {
  for (const base of ['/dev/shm', os.tmpdir()]) {
    let names: string[] = [];
    try {
      names = readdirSync(base);
    } catch {
      /* no such folder */
    }
    for (const n of names) if (n.startsWith(`flexilib-${pid}-`)) rmSync(path.join(base, n), { recursive: true, force: true });
  }
}

export class Flexilib {
  /** Where it listens (HOST is set to loopback); with `port`, a ServerAddress for the conformance runner. */
  readonly host = '127.0.0.1';
  /** The traffic port (0 until known: with ready 'admin' the test reads it from the logs). */
  port = 0;
  adminPort = 0;
  /** The "flexilib listening" record when startup waited for it in JSON logs (it names the config, ports, workers). */
  listening?: LogLine;
  /** Every stdout line, JSON or not, in order. */
  readonly lines: string[] = [];
  /** The stdout lines that are JSON records, parsed, in order. */
  readonly logs: LogLine[] = [];
  /** Resolves once the supervisor has exited and its output has been read (bounded: a worker outliving it may hold the pipe). */
  readonly exited: Promise<Exit>;
  private err = '';
  private partial = '';
  private done = false;
  private outputEnded = false;
  private readonly waiters = new Set<Waiter>();

  constructor(
    readonly proc: ChildProcess,
    /** The command line and the harness's environment, for error messages. */
    readonly description: string,
  ) {
    if (proc.pid !== undefined) live.add(proc.pid);
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (chunk: string) => {
      const parts = (this.partial + chunk).split('\n');
      this.partial = parts.pop()!;
      for (const l of parts) this.onLine(l);
    });
    const outputDone = new Promise<void>((resolve) => {
      const end = () => {
        if (this.outputEnded) return;
        if (this.partial) this.onLine(this.partial);
        this.partial = '';
        this.outputEnded = true;
        for (const w of [...this.waiters]) w.reject(this.failure(`flexilib's output ended (it exited) before ${w.what}`));
        resolve();
      };
      proc.stdout!.once('end', end);
      proc.stdout!.once('close', end);
    });
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (c: string) => (this.err += c));
    this.exited = new Promise((resolve) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null) => {
        if (this.done) return;
        this.done = true;
        // Read what is still in the pipe first, so the last log lines are there.
        const t = setTimeout(() => resolve({ code, signal }), 2000);
        void outputDone.then(() => {
          clearTimeout(t);
          resolve({ code, signal });
        });
      };
      proc.once('exit', finish);
      proc.once('error', (e) => {
        this.err += `cannot run flexilib: ${e.message}\n`;
        finish(null, null);
      });
    });
  }

  /** Still running (no exit seen yet). */
  get running(): boolean {
    return !this.done && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** What flexilib wrote to stderr so far. */
  stderr(): string {
    return this.err;
  }

  /** stdout and stderr so far, for assertion messages. */
  output(): string {
    return `${this.lines.join('\n')}${this.err ? `\n--- stderr ---\n${this.err}` : ''}`;
  }

  /**
   * Resolves with the first JSON log record at index `from` or later (already
   * logged or still to come) matching `pred`; rejects after the timeout or when
   * flexilib's output ends first.
   *
   * @example
   * const from = f.logs.length;
   * f.signal('SIGHUP');
   * const line = await f.waitForLog((l) => l.msg === 'config reloaded', { from, timeoutMs: 5000 });
   */
  waitForLog(pred: (l: LogLine) => boolean, opts: WaitOptions = {}): Promise<LogLine> {
    const from = opts.from ?? 0;
    const timeoutMs = opts.timeoutMs ?? 15_000;
    const what = opts.what ?? `a log line matching ${pred.toString()}`;
    for (let i = from; i < this.logs.length; i++) if (matches(pred, this.logs[i])) return Promise.resolve(this.logs[i]);
    if (this.outputEnded) return Promise.reject(this.failure(`flexilib's output ended (it exited) before ${what}`));
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        from,
        what,
        pred,
        resolve: (l) => {
          clearTimeout(t);
          this.waiters.delete(w);
          resolve(l);
        },
        reject: (e) => {
          clearTimeout(t);
          this.waiters.delete(w);
          reject(e);
        },
      };
      const t = setTimeout(() => w.reject(this.failure(`no ${what} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.add(w);
    });
  }

  /** Worker pids listening now, from the logs (replacements in, the dead and stopped out). */
  workerPids(): number[] {
    const pids = new Set<number>();
    for (const l of this.logs) {
      if (l.msg === 'worker listening') pids.add(l.workerPid as number);
      else if (l.code === 'FLX_WORKER_EXIT' || l.msg === 'worker stopped') pids.delete(l.workerPid as number);
    }
    return [...pids];
  }

  /** Send a signal to the supervisor alone (SIGHUP, SIGTERM ...). */
  signal(sig: NodeJS.Signals): void {
    process.kill(this.proc.pid!, sig);
  }

  /**
   * Stop gracefully: `signal` to the supervisor, SIGKILL to the whole process
   * group if it has not exited after `graceMs`. Resolves with the exit code
   * (null when killed by a signal). Safe to call again or after an exit.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<number | null> {
    if (this.running) {
      this.proc.kill(signal);
      const t = setTimeout(() => killGroup(this.proc.pid!), graceMs);
      await this.exited;
      clearTimeout(t);
    }
    const { code } = await this.exited;
    this.reap();
    return code;
  }

  /** SIGKILL the supervisor and its workers at once (test cleanup). Safe to call again or after an exit. */
  async kill(): Promise<void> {
    if (this.running) killGroup(this.proc.pid!);
    await this.exited;
    this.reap();
  }

  /** An error carrying what flexilib said, for a failed wait or start. */
  failure(message: string): Error {
    return new Error(`${message}\n${this.description}\n--- stderr ---\n${this.err.slice(-2000)}\n--- last stdout lines ---\n${this.lines.slice(-12).join('\n')}`);
  }

  private reap(): void {
    const pid = this.proc.pid;
    if (pid === undefined) return;
    // Workers of a supervisor that died hard exit on their own; make sure of it.
    killGroup(pid);
    live.delete(pid);
    sweepRunFolders(pid);
  }

  private onLine(line: string): void {
    this.lines.push(line);
    if (!line.startsWith('{')) return;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      return;
    }
    if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) return;
    this.logs.push(rec as LogLine);
    const i = this.logs.length - 1;
    for (const w of [...this.waiters]) if (i >= w.from && matches(w.pred, rec as LogLine)) w.resolve(rec as LogLine);
  }
}

/** A predicate that throws (a field of an unexpected shape) does not match. */
function matches(pred: (l: LogLine) => boolean, l: LogLine): boolean {
  try {
    return pred(l);
  } catch {
    return false;
  }
}

/**
 * Start flexilib and resolve once it serves (see StartOptions). On a failed
 * start the process group is killed and the error quotes flexilib's output.
 *
 * @example
 * const f = await startFlexilib({ bin: 'packages/supervisor/bin/flexilib', config: 'proxy.ini', workers: 2 });
 * try { ... f.port ... } finally { await f.stop(); }
 */
export async function startFlexilib(opts: StartOptions = {}): Promise<Flexilib> {
  const [port, adminPort] = opts.ports === 'free' ? await freePorts(2) : [0, 0];
  const flags = [
    ...(opts.config !== undefined ? ['--config', opts.config] : []),
    ...(opts.workers === null ? [] : ['--workers', String(opts.workers ?? 2)]),
    ...(opts.accessLog === false ? ['--no-access-log'] : []),
    ...(opts.args ?? []),
  ];
  // NOTIFY_SOCKET emptied: a test run under systemd must not have flexilib report to it.
  // ADMIN_TOKEN emptied: a token in the caller's shell must not guard the admin API (tests that want one pass env).
  const defaults = { HOST: '127.0.0.1', PORT: String(port), ADMIN_PORT: String(adminPort), LOG_FORMAT: opts.logFormat ?? 'json', NOTIFY_SOCKET: '', ADMIN_TOKEN: '' };
  const env: NodeJS.ProcessEnv = { ...(opts.inheritEnv === false ? {} : process.env), ...defaults, ...opts.env };
  if (!opts.command && !opts.bin) throw new Error('startFlexilib: give the flexilib script (bin) or an executable (command)');
  const [cmd, argv] = opts.command ? [opts.command, flags] : [process.execPath, [opts.bin!, ...flags]];
  const cwd = opts.cwd ?? process.cwd();
  const proc = spawn(cmd, argv, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const shownEnv = Object.entries({ ...defaults, ...opts.env }).map(([k, v]) => `${k}=${v ?? ''}`).join(' ');
  const f = new Flexilib(proc, `command: ${[cmd, ...argv].join(' ')}\n(cwd ${cwd}; env ${shownEnv})`);

  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  const ready = opts.ready ?? 'listening';
  /** Poll `fn` until it returns a value, failing fast if flexilib exits. */
  const poll = async <T>(what: string, fn: () => Promise<T | undefined> | T | undefined): Promise<T> => {
    for (;;) {
      if (!f.running) throw f.failure(`flexilib exited (${f.proc.exitCode ?? f.proc.signalCode}) before ${what}`);
      const v = await fn();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw f.failure(`flexilib: no ${what} within ${timeoutMs} ms`);
      await sleep(25);
    }
  };
  try {
    if (opts.ports === 'free') {
      [f.port, f.adminPort] = [port, adminPort];
      await poll('answer from /readyz', async () => {
        const readyz = { method: 'GET', target: '/readyz', headers: [['Host', '127.0.0.1']] as Array<[string, string]>, body: Buffer.alloc(0) };
        const r = await rawRequest('127.0.0.1', f.adminPort, readyz, 2000).catch(() => undefined);
        return r && (ready === 'admin' || r.status === 200) ? true : undefined;
      });
    } else if (env.LOG_FORMAT === 'text') {
      const portIn = (what: string) =>
        poll(`"${what}" line`, () => {
          const line = f.lines.find((l) => l.includes(` ${what} `));
          return line ? Number(/ port=(\d+)/.exec(line)?.[1]) : undefined;
        });
      f.adminPort = await portIn('admin listening');
      if (ready === 'listening') f.port = await portIn('flexilib listening');
    } else if (ready === 'admin') {
      f.adminPort = (await f.waitForLog((l) => l.msg === 'admin listening', { timeoutMs, what: '"admin listening"' })).port as number;
    } else {
      const rec = await f.waitForLog((l) => l.msg === 'flexilib listening', { timeoutMs, what: '"flexilib listening"' });
      f.listening = rec;
      f.port = rec.port as number;
      f.adminPort = rec.adminPort as number;
    }
  } catch (err) {
    await f.kill();
    throw err;
  }
  return f;
}
