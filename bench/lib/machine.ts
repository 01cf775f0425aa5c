/** The facts printed beside every result: what machine, what software, how busy. */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { findNginx } from './servers/nginx.ts';
import { findWrk, wrkVersion } from './wrk.ts';

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  wrk: string;
  nginx: string | null;
  /** Short commit of the code measured, with "+dirty" when the tree had changes. */
  commit: string;
  /** 1-minute load average when the run started and when it ended: other work on the machine skews numbers. */
  loadAvg: { start: number; end?: number };
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1].trim();
  } catch {
    /* not Linux */
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

function git(root: string, args: string[]): string {
  const r = spawnSync('git', args, { cwd: root, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

export function nginxVersion(): string | null {
  const bin = findNginx();
  if (!bin) return null;
  const r = spawnSync(bin, ['-v'], { encoding: 'utf8' });
  return /nginx\/(\S+)/.exec(`${r.stdout}${r.stderr}`)?.[1] ?? 'unknown';
}

export function describeMachine(root: string): Machine {
  const commit = git(root, ['rev-parse', '--short', 'HEAD']) || 'unknown';
  // Results and docs written by the bench itself do not count as changes to the code measured.
  const dirty = git(root, ['status', '--porcelain', '--', '.', ':!bench/results', ':!docs/performance.md']) !== '';
  return {
    cpus: os.availableParallelism(),
    cpuModel: cpuModel(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    wrk: findWrk() ? wrkVersion() : 'not installed',
    nginx: nginxVersion(),
    commit: dirty ? `${commit}+dirty` : commit,
    loadAvg: { start: Math.round(os.loadavg()[0] * 100) / 100 },
  };
}
