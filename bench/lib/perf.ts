/**
 * --perf: Linux perf on the workers during the throughput run. Unlike V8's
 * profiler, perf's cpu-clock event samples only while a thread is on a CPU,
 * so time a worker spends descheduled on a busy machine is not counted, and
 * the kernel's share (socket writes and reads) is visible. Node runs with
 * --perf-basic-prof so JIT-compiled JavaScript shows by name.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const PERF_NODE_ARGS = ['--perf-basic-prof'];

export function perfMissing(): string | undefined {
  const r = spawnSync('perf', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? undefined : 'perf is not installed (apt-get install -y linux-perf)';
}

const HZ = 1999;

/** Start `perf record` on `pids`; the returned function stops it and resolves when the data is written. */
export function startPerf(dataFile: string, pids: number[]): () => Promise<void> {
  const child: ChildProcess = spawn('perf', ['record', '-e', 'cpu-clock', '-F', String(HZ), '-g', '-o', dataFile, '-p', pids.join(',')], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return async () => {
    child.kill('SIGINT');
    await exited;
  };
}

/**
 * --perf-basic-prof leaves a symbol map per process in the temp folder, and
 * turns on V8's log, which some processes leave in their working folder as
 * isolate-0x…-PID-v8.log: remove both once reported.
 */
export function removePerfMaps(pids: number[], cwd: string = process.cwd()): void {
  for (const pid of pids) rmSync(path.join(os.tmpdir(), `perf-${pid}.map`), { force: true });
  const ours = new Set(pids.map(String));
  for (const name of readdirSync(cwd)) {
    const m = /^isolate-0x[0-9a-f]+-(\d+)-v8\.log$/.exec(name);
    if (m && ours.has(m[1])) rmSync(path.join(cwd, name), { force: true });
  }
}

/** Where a sample's code lives, coarsely: who is spending the CPU. */
export function areaOf(dso: string, sym: string): string {
  if (dso === '[kernel.kallsyms]') return 'kernel (sockets, scheduling)';
  if (dso.startsWith('koffi')) return 'koffi (FFI)';
  if (dso.endsWith('(deleted)') || /^\d+-lib.*\.so/.test(dso)) return 'plugin (.so)';
  if (sym.startsWith('JS:')) {
    if (sym.includes('/packages/')) return 'flexilib JavaScript';
    if (sym.includes('node_modules')) return 'npm JavaScript (pino, ...)';
    if (sym.includes(' node:')) return 'node core JavaScript (http, streams)';
    return 'other JavaScript';
  }
  if (dso.startsWith('[JIT]')) return 'JIT code, unnamed';
  if (dso === 'node') {
    if (sym.startsWith('llhttp')) return 'llhttp (parser)';
    if (sym.startsWith('Builtins_')) return 'V8 builtins (property access, calls)';
    if (sym.includes('v8::internal::compiler') || sym.includes('Turbofan') || sym.includes('Maglev')) return 'V8 optimising compiler';
    if (sym.includes('Heap') || sym.includes('Scavenge') || sym.includes('MarkCompact') || sym.includes('Sweeper')) return 'V8 garbage collector';
    return 'node and V8 runtime (C++)';
  }
  if (dso.startsWith('libc') || dso.startsWith('libstdc++') || dso.startsWith('ld-')) return 'libc, libstdc++';
  return dso;
}

export interface PerfBreakdown {
  samples: number;
  byArea: Map<string, number>;
  top: Array<[string, number]>;
}

export function perfBreakdown(dataFile: string): PerfBreakdown {
  const r = spawnSync('perf', ['report', '-i', dataFile, '--stdio', '--no-children', '-g', 'none', '-n', '--sort', 'dso,sym'], {
    encoding: 'utf8',
    maxBuffer: 256 << 20,
  });
  const byArea = new Map<string, number>();
  const top: Array<[string, number]> = [];
  let samples = 0;
  for (const line of (r.stdout ?? '').split('\n')) {
    // "    11.88%          1161  [kernel.kallsyms]   [k] _raw_spin_unlock_irqrestore"
    const m = /^\s+[\d.]+%\s+(\d+)\s+(.+?)\s+\[([k.])\]\s+(.*)$/.exec(line);
    if (!m) continue;
    const n = Number(m[1]);
    const dso = m[2].trim();
    const sym = m[4].trim();
    samples += n;
    const area = areaOf(dso, sym);
    byArea.set(area, (byArea.get(area) ?? 0) + n);
    if (top.length < 40) top.push([`${sym.slice(0, 110)}  (${area})`, n]);
  }
  return { samples, byArea, top };
}

/** On-CPU samples by area and by symbol, in µs per request and shares. */
export function formatPerf(title: string, dataFile: string, requests: number): string {
  const b = perfBreakdown(dataFile);
  const us = (n: number) => (requests > 0 ? `${((n / HZ / requests) * 1e6).toFixed(2).padStart(7)} µs/req` : '');
  const pct = (n: number) => `${((100 * n) / Math.max(1, b.samples)).toFixed(1).padStart(5)} %`;
  const areas = [...b.byArea.entries()].sort((x, y) => y[1] - x[1]);
  return [
    `${title}: ${requests} requests, ${b.samples} samples at ${HZ} Hz: ${us(b.samples).trim()} of worker CPU`,
    '',
    '  by area:',
    ...areas.map(([k, n]) => `    ${pct(n)} ${us(n)}  ${k}`),
    '',
    '  top symbols:',
    ...b.top.slice(0, 30).map(([k, n]) => `    ${pct(n)} ${us(n)}  ${k}`),
  ].join('\n');
}
