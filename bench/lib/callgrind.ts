/**
 * --instructions: instructions per request, counted by valgrind's callgrind.
 *
 * Throughput on a shared two-core VM swings by ±20 % between identical runs
 * (and the host's load drifts within a session), so small changes to the hot
 * path cannot be sized by requests/s. Instruction counts do not depend on
 * what else the machine is doing: a server runs under callgrind with one
 * worker, is warmed with a light load, then its counters are zeroed, a
 * second load is counted, and the worker's instructions are divided by the
 * requests served. Kernel work (the socket writes, the loopback TCP stack) is
 * not counted: it is the same per request for every node server here.
 *
 * Caveats: V8 tiers code up by use, so every target is warmed with the same
 * number of requests (WARMUP_REQUESTS). Compiler threads still busy after it
 * show in the all-threads figure, which is why the main thread (the event
 * loop, where requests are served) is reported on its own.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { areaOf, removePerfMaps } from './perf.ts';
import type { RunningServer, Scenario } from './scenario.ts';
import { WORKLOADS } from './workload.ts';
import { runWrk } from './wrk.ts';

export const CALLGRIND_NODE_ARGS = ['--perf-basic-prof'];

export function callgrindMissing(): string | undefined {
  const r = spawnSync('valgrind', ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) return 'valgrind is not installed (apt-get install -y valgrind)';
  const c = spawnSync('callgrind_control', ['-h'], { encoding: 'utf8' });
  return c.error ? 'callgrind_control is missing (it comes with valgrind)' : undefined;
}

/** The launcher node servers run under: callgrind, following cluster's forks, one file per process and thread. */
export function callgrindLauncher(dir: string, id: string): string[] {
  return ['valgrind', '--tool=callgrind', '--trace-children=yes', '--separate-threads=yes', `--callgrind-out-file=${path.join(dir, `${id}.%p`)}`];
}

/**
 * Zero (`-z`) or dump (`-d`) the counters of running callgrind processes.
 * valgrind names the pipes it is controlled through after the process's
 * HOST variable, and flexilib servers run with HOST=127.0.0.1 (their listen
 * address, FlexiLib's variable): callgrind_control is given each process's
 * own HOST, or it finds no such process and the count is lost.
 */
export function callgrindControl(op: '-z' | '-d', pids: number[]): void {
  for (const pid of pids) {
    const env = { ...process.env };
    delete env.HOST;
    const host = hostOf(pid);
    if (host !== undefined) env.HOST = host;
    spawnSync('callgrind_control', [op, String(pid)], { stdio: 'ignore', env });
  }
}

/** The HOST variable of a running process, from /proc (undefined when unset or gone). */
function hostOf(pid: number): string | undefined {
  try {
    for (const kv of readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0')) if (kv.startsWith('HOST=')) return kv.slice(5);
  } catch {
    // gone: nothing to control
  }
  return undefined;
}

/** One function's cost in a callgrind dump. */
export interface FunctionCost {
  fn: string;
  /** The object file it lives in ('???' for JIT code). */
  object: string;
  ir: number;
}

/** Total instructions of a callgrind output file (its `summary:` line). */
export function totalOf(file: string): number {
  const m = /^summary:\s+(\d+)/m.exec(readFileSync(file, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/**
 * Exclusive cost per function, from callgrind_annotate. The frames that were
 * on the stack for the whole count (main down to node's event loop) are
 * listed with the file's total (the others sum to it): they are left out.
 */
export function functionCosts(file: string): FunctionCost[] {
  const total = totalOf(file);
  const r = spawnSync('callgrind_annotate', ['--threshold=100', '--inclusive=no', file], { encoding: 'utf8', maxBuffer: 256 << 20 });
  const out: FunctionCost[] = [];
  let started = false;
  for (const line of (r.stdout ?? '').split('\n')) {
    if (!started) {
      started = line.includes('file:function');
      continue;
    }
    const m = /^\s*([\d,]+)\s+\([^)]*\)\s+(?:[^:\s]*:)?(.*?)\s+\[(.*)\]\s*$/.exec(line);
    if (!m) continue;
    const ir = Number(m[1].replaceAll(',', ''));
    if (ir < total) out.push({ ir, fn: m[2], object: m[3] });
  }
  return out;
}

interface MapEntry {
  start: number;
  end: number;
  name: string;
}

/** V8's symbol map of a process run with --perf-basic-prof (/tmp/perf-PID.map): JIT code addresses to function names. */
export function readPerfMap(pid: number): MapEntry[] {
  let text = '';
  try {
    text = readFileSync(path.join(os.tmpdir(), `perf-${pid}.map`), 'utf8');
  } catch {
    return [];
  }
  const entries: MapEntry[] = [];
  for (const line of text.split('\n')) {
    const a = line.indexOf(' ');
    const b = line.indexOf(' ', a + 1);
    if (a < 0 || b < 0) continue;
    const start = parseInt(line.slice(0, a), 16);
    entries.push({ start, end: start + parseInt(line.slice(a + 1, b), 16), name: line.slice(b + 1) });
  }
  return entries.sort((x, y) => x.start - y.start);
}

function lookup(map: MapEntry[], addr: number): string | undefined {
  let lo = 0;
  let hi = map.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (map[mid].start <= addr) lo = mid + 1;
    else hi = mid - 1;
  }
  const e = map[hi];
  return e && addr < e.end ? e.name : undefined;
}

/**
 * Name each function as the --perf report does (object base name, symbol),
 * JIT code by the process's perf map, so both modes group by the same areas.
 */
export function nameCosts(costs: FunctionCost[], map: MapEntry[]): Array<{ area: string; name: string; ir: number }> {
  return costs.map(({ fn, object, ir }) => {
    let sym = fn;
    let dso = path.basename(object);
    const jit = object === '???' ? /^0x([0-9a-f]+)$/.exec(fn) : null;
    if (jit) {
      sym = lookup(map, parseInt(jit[1], 16)) ?? fn;
      dso = '[JIT]';
    }
    return { area: areaOf(dso, sym), name: sym, ir };
  });
}

export interface InstructionCount {
  id: string;
  requests: number;
  /** The worker's event-loop thread. */
  mainPerRequest: number;
  /** Every thread of the worker (compiler and GC helpers too). */
  allPerRequest: number;
  byArea: Array<[string, number]>;
  top: Array<[string, number]>;
}

/**
 * Read the dumps of a measured run: the worker is the process whose main
 * thread counted the most; its files are `<id>.<pid>.1-<thread>` (dump 1).
 */
export function countInstructions(dir: string, id: string, requests: number): InstructionCount {
  const files = readdirSync(dir).filter((f) => f.startsWith(`${id}.`) && /\.\d+\.1-\d+$/.test(f));
  let worker: { pid: string; main: number } | undefined;
  for (const f of files.filter((x) => x.endsWith('.1-01'))) {
    const pid = f.slice(id.length + 1).split('.')[0];
    const main = totalOf(path.join(dir, f));
    if (!worker || main > worker.main) worker = { pid, main };
  }
  if (!worker || requests <= 0) throw new Error(`${id}: no callgrind dump with counted requests in ${dir}`);
  const mine = files.filter((f) => f.startsWith(`${id}.${worker!.pid}.1-`)).map((f) => path.join(dir, f));
  const all = mine.reduce((n, f) => n + totalOf(f), 0);
  const named = nameCosts(functionCosts(path.join(dir, `${id}.${worker.pid}.1-01`)), readPerfMap(Number(worker.pid)));
  const byArea = new Map<string, number>();
  const byName = new Map<string, number>();
  for (const c of named) {
    byArea.set(c.area, (byArea.get(c.area) ?? 0) + c.ir);
    byName.set(c.name, (byName.get(c.name) ?? 0) + c.ir);
  }
  const per = (n: number) => Math.round(n / requests);
  return {
    id,
    requests,
    mainPerRequest: per(worker.main),
    allPerRequest: per(all),
    byArea: [...byArea.entries()].map(([k, v]): [string, number] => [k, per(v)]).sort((x, y) => y[1] - x[1]),
    top: [...byName.entries()].map(([k, v]): [string, number] => [k, per(v)]).sort((x, y) => y[1] - x[1]),
  };
}

export function formatInstructions(c: InstructionCount, baseline?: InstructionCount): string {
  const k = (n: number) => `${(n / 1000).toFixed(1).padStart(6)}k`;
  const vs = baseline && baseline !== c ? `  (${c.mainPerRequest >= baseline.mainPerRequest ? '+' : ''}${k(c.mainPerRequest - baseline.mainPerRequest).trim()} against ${baseline.id})` : '';
  return [
    `${c.id}: ${c.requests} requests counted; instructions per request, main thread ${k(c.mainPerRequest).trim()}${vs}, all threads ${k(c.allPerRequest).trim()}`,
    '',
    '  main thread by area:',
    ...c.byArea.filter(([, n]) => n >= 50).map(([a, n]) => `    ${k(n)}  ${a}`),
    '',
    '  main thread, top functions (exclusive):',
    ...c.top.slice(0, 25).map(([name, n]) => `    ${k(n)}  ${name.replace(/file:\/\/\S*\/(packages|bench)\//, '$1/')}`),
  ].join('\n');
}

/**
 * Requests served before counting starts. V8 tiers code up by use, not by
 * time, so the warm-up is a number of requests: under callgrind a
 * time-based one warmed less when the machine was slower (seen: a third of
 * the requests, and twice the instructions, in one run against another).
 */
export const WARMUP_REQUESTS = 20_000;
const WARMUP_LIMIT_MS = 15 * 60_000;

export interface InstructionRunOptions {
  root: string;
  /** Seconds of the counted load. */
  seconds: number;
  log: (line: string) => void;
}

/**
 * Count each scenario in turn (one worker, under callgrind): start, warm with
 * 4 connections sending its workload's request (whatever connections it is
 * measured at otherwise), zero the counters, count a second load, dump, stop. Servers
 * that are not node processes (nginx) cannot be counted and are reported so.
 */
export async function measureInstructions(scenarios: Scenario[], opts: InstructionRunOptions): Promise<InstructionCount[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'flexilib-bench-callgrind-'));
  opts.log(`callgrind output in ${dir}`);
  const counts: InstructionCount[] = [];
  const pids: number[] = [];
  try {
    for (const s of scenarios) {
      const unavailable = s.unavailable?.(opts.root);
      if (unavailable) {
        opts.log(`${s.id}: skipped: ${unavailable}`);
        continue;
      }
      const tmp = mkdtempSync(path.join(dir, `${s.id}-`));
      let server: RunningServer | undefined;
      try {
        opts.log(`${s.id}: starting under callgrind (slow: tens of seconds)`);
        server = await s.start({ root: opts.root, tmp, workers: 1, env: {}, nodeArgs: CALLGRIND_NODE_ARGS, launcher: callgrindLauncher(dir, s.id), startTimeoutMs: 300_000 });
        const procs = server.processes().map((p) => p.pid);
        pids.push(...procs);
        if (!procs.some((pid) => cmdlineOf(pid).includes('callgrind'))) {
          opts.log(`${s.id}: not a node server, nothing to count`);
          continue;
        }
        const load = { connections: 4, threads: 1, delayMs: 0, workload: WORKLOADS[s.workload ?? 'get'] };
        opts.log(`${s.id}: warming up with ${WARMUP_REQUESTS} requests, then counting ${opts.seconds} s`);
        const t0 = Date.now();
        for (let served = 0; served < WARMUP_REQUESTS; ) {
          if (Date.now() - t0 > WARMUP_LIMIT_MS) throw new Error(`warm-up: only ${served} requests in ${WARMUP_LIMIT_MS / 1000} s`);
          served += (await runWrk(server.port, { ...load, seconds: 10 })).requests;
        }
        callgrindControl('-z', procs);
        const r = await runWrk(server.port, { ...load, seconds: opts.seconds });
        callgrindControl('-d', procs);
        counts.push(countInstructions(dir, s.id, r.requests));
      } catch (err) {
        opts.log(`${s.id}: ${(err as Error).message}`);
      } finally {
        await server?.stop();
      }
    }
  } finally {
    removePerfMaps(pids);
  }
  return counts;
}

function cmdlineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}
