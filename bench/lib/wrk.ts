/**
 * The load generator: wrk (Debian's package), keep-alive HTTP/1.1, with
 * lib/wrk-report.lua for pacing and a machine-readable summary.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./wrk-report.lua', import.meta.url));

export interface LoadSpec {
  connections: number;
  threads: number;
  seconds: number;
  /** Pause per connection between a response and the next request (0 = as fast as possible). */
  delayMs: number;
  /** CPUs to pin wrk to with taskset (e.g. "1"), or undefined for none. */
  cpus?: string;
}

export interface LoadResult {
  requests: number;
  seconds: number;
  rps: number;
  latencyMs: { p50: number; p90: number; p99: number; p999: number; mean: number; max: number };
  errors: { total: number; non2xx: number; connect: number; read: number; write: number; timeout: number };
}

/** wrk's path, or undefined when it is not installed. */
export function findWrk(): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v wrk'], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p && existsSync(p) ? p : undefined;
}

export function wrkVersion(): string {
  const r = spawnSync('wrk', ['-v'], { encoding: 'utf8' });
  return /wrk (\S+)/.exec(`${r.stdout}${r.stderr}`)?.[1] ?? 'unknown';
}

interface WrkSummary {
  requests: number; duration_us: number; bytes: number; connect: number; read: number; write: number; status: number; timeout: number;
  mean_us: number; max_us: number; p50_us: number; p90_us: number; p99_us: number; p999_us: number;
}

/** Parse the BENCH_RESULT line that wrk-report.lua prints. */
export function parseWrkOutput(stdout: string): LoadResult {
  const line = stdout.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
  if (!line) throw new Error(`wrk printed no result line:\n${stdout}`);
  const s = JSON.parse(line.slice('BENCH_RESULT '.length)) as WrkSummary;
  const ms = (us: number) => us / 1000;
  const seconds = s.duration_us / 1e6;
  const socket = s.connect + s.read + s.write + s.timeout;
  return {
    requests: s.requests,
    seconds,
    rps: seconds > 0 ? s.requests / seconds : 0,
    latencyMs: { p50: ms(s.p50_us), p90: ms(s.p90_us), p99: ms(s.p99_us), p999: ms(s.p999_us), mean: ms(s.mean_us), max: ms(s.max_us) },
    errors: { total: socket + s.status, non2xx: s.status, connect: s.connect, read: s.read, write: s.write, timeout: s.timeout },
  };
}

/** Run wrk against http://127.0.0.1:port/ (loopback only). */
export function runWrk(port: number, spec: LoadSpec): Promise<LoadResult> {
  const args = ['-t', String(spec.threads), '-c', String(spec.connections), '-d', `${spec.seconds}s`, '--timeout', '2s', '-s', SCRIPT, `http://127.0.0.1:${port}/`];
  const [cmd, argv] = spec.cpus ? ['taskset', ['-c', spec.cpus, 'wrk', ...args]] : ['wrk', args];
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      argv,
      { env: { ...process.env, BENCH_WRK_DELAY_MS: String(spec.delayMs) }, timeout: (spec.seconds + 15) * 1000, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`wrk failed: ${err.message}\n${stderr}`));
        try {
          resolve(parseWrkOutput(stdout));
        } catch (e) {
          reject(e);
        }
      },
    );
  });
}
