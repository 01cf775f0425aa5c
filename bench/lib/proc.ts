/**
 * The servers under test as processes: spawn one with its output going to a
 * file (never a pipe the harness would have to drain, which would put the
 * harness on the CPU the server needs), wait for its readiness line, find its
 * workers, read their peak memory, stop it and everything it forked.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Spawned {
  child: ChildProcess;
  pid: number;
  /** The file that receives the process's stdout and stderr. */
  logFile: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited(): boolean;
}

const live = new Set<Spawned>();

/** The command and arguments that run node with `args` for a scenario: under its launcher when it has one. */
export function nodeCommand(ctx: { nodeArgs: string[]; launcher?: string[] }, args: string[]): [string, string[]] {
  const full = [...ctx.nodeArgs, ...args];
  if (!ctx.launcher?.length) return [process.execPath, full];
  const [cmd, ...pre] = ctx.launcher;
  return [cmd, [...pre, process.execPath, ...full]];
}

/** Start `cmd` with stdout and stderr appended to `logFile`. */
export function spawnToFile(cmd: string, args: string[], opts: { logFile: string; cwd?: string; env?: NodeJS.ProcessEnv }): Spawned {
  const fd = openSync(opts.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      resolve({ code, signal });
    });
    child.once('error', () => {
      done = true;
      resolve({ code: null, signal: null });
    });
  });
  if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
  return track({ child, pid: child.pid, logFile: opts.logFile, exited, hasExited: () => done });
}

/** Count `s` among the server processes killAllSpawned() stops, until it exits. */
export function track(s: Spawned): Spawned {
  live.add(s);
  void s.exited.then(() => live.delete(s));
  return s;
}

/** The last `n` lines of a log file, for error messages. */
export function tail(file: string, n = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '(no output)';
  }
}

/**
 * Poll `file` until a line satisfies `match` (returning a value); fail when
 * the process exits first or `timeoutMs` passes.
 */
export async function waitForLine<T>(p: Spawned, match: (line: string) => T | undefined, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let offset = 0;
  let partial = '';
  for (;;) {
    let text = '';
    try {
      const all = readFileSync(p.logFile);
      text = all.subarray(offset).toString('utf8');
      offset = all.length;
    } catch {
      /* not created yet */
    }
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const v = match(line);
      if (v !== undefined) return v;
    }
    if (p.hasExited()) throw new Error(`${what}: the process exited before it was ready; its output:\n${tail(p.logFile)}`);
    if (Date.now() > deadline) throw new Error(`${what}: not ready after ${timeoutMs} ms; its output:\n${tail(p.logFile)}`);
    await sleep(25);
  }
}

/** Whether `pid` is a live process (not a zombie left for its parent to reap). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Live direct children of `pid` (the kernel's list, or a scan of /proc where that list is absent). */
export function childPids(pid: number): number[] {
  const list = `/proc/${pid}/task/${pid}/children`;
  if (existsSync(list)) {
    try {
      return readFileSync(list, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number).filter(running);
    } catch {
      return [];
    }
  }
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // The command name is in parentheses and may hold spaces; the ppid follows the state letter.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid && running(Number(name))) out.push(Number(name));
    } catch {
      /* gone */
    }
  }
  return out;
}

let clockTicks: number | undefined;
/** Kernel clock ticks per second (the unit of /proc/<pid>/stat's CPU times). */
function clkTck(): number {
  if (clockTicks === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    clockTicks = Number(r.stdout?.trim()) || 100;
  }
  return clockTicks;
}

/** CPU time (user + system) a process has used so far, in microseconds; undefined when it is gone. */
export function cpuTimeUs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15 of the whole line.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1e6) / clkTck();
  } catch {
    return undefined;
  }
}

/** Peak resident set size (VmHWM) of a process in KiB, or undefined when it is gone. */
export function peakRssKb(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stop a server: `signal` to its root process, which stops its own workers;
 * after `graceMs`, SIGKILL whatever of the root and the `known` pids remains.
 * Only pids this harness started or saw forked by them are ever signalled.
 */
export async function stopTree(p: Spawned, known: number[], signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
  if (!p.hasExited()) {
    try {
      process.kill(p.pid, signal);
    } catch {
      /* already gone */
    }
    await Promise.race([p.exited, sleep(graceMs)]);
  }
  const deadline = Date.now() + graceMs;
  while (known.some(alive) && Date.now() < deadline) await sleep(25);
  for (const pid of [p.pid, ...known]) {
    if (pid === p.pid && p.hasExited()) continue;
    if (alive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  await p.exited;
}

/** SIGKILL every server process still running (used when the harness itself is interrupted). */
export function killAllSpawned(): void {
  for (const s of live) {
    for (const pid of childPids(s.pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    try {
      process.kill(s.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}
