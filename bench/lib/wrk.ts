/**
 * The load generator: wrk (Debian's package), keep-alive HTTP/1.1, with
 * lib/wrk-report.lua for the request's method and body, pacing and a
 * machine-readable summary — or, for a ceiling, plain wrk with no script at
 * all (its text output parsed), which the issue saw drive nginx faster: a
 * load generator that is itself the bottleneck measures itself.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WORKLOADS, type Workload } from './workload.ts';

const SCRIPT = fileURLToPath(new URL('./wrk-report.lua', import.meta.url));

export interface LoadSpec {
  connections: number;
  threads: number;
  seconds: number;
  /** Pause per connection between a response and the next request (0 = as fast as possible). */
  delayMs: number;
  /** CPUs to pin wrk to with taskset (e.g. "1"), or undefined for none. */
  cpus?: string;
  /** The request (default GET /). */
  workload?: Workload;
  /** Plain wrk: no Lua script (GET without pacing only). */
  plain?: boolean;
  /** Desynchronise the connections' first pauses (see wrk-report.lua); paced runs only. */
  stagger?: boolean;
}

export interface LoadResult {
  requests: number;
  seconds: number;
  rps: number;
  /** p999 is null from plain wrk, which prints p50, p75, p90 and p99 only. */
  latencyMs: { p50: number; p90: number; p99: number; p999: number | null; mean: number; max: number };
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

const UNIT_US: Record<string, number> = { us: 1, ms: 1e3, s: 1e6, m: 60e6, h: 3600e6 };

/** A duration as wrk prints it ("217.00us", "1.45ms", "6.00s") in microseconds. */
function durationUs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text);
  if (!m) throw new Error(`wrk printed an unreadable duration "${text}"`);
  return Number(m[1]) * UNIT_US[m[2]];
}

/** Parse plain wrk's text output (run with --latency). */
export function parsePlainWrkOutput(stdout: string): LoadResult {
  const need = (re: RegExp, what: string) => {
    const m = re.exec(stdout);
    if (!m) throw new Error(`wrk printed no ${what}:\n${stdout}`);
    return m;
  };
  const done = need(/^\s*(\d+) requests in ([\d.]+\w+),/m, 'request count');
  const pct = (q: number) => durationUs(need(new RegExp(`^[ \\t]+${q}%[ \\t]+(\\S+)`, 'm'), `${q}th percentile`)[1]) / 1000;
  const stats = need(/^[ \t]+Latency[ \t]+(\S+)[ \t]+\S+[ \t]+(\S+)/m, 'latency statistics');
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout)?.slice(1).map(Number) ?? [0, 0, 0, 0];
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
  const requests = Number(done[1]);
  const seconds = durationUs(done[2]) / 1e6;
  return {
    requests,
    seconds,
    rps: Number(need(/^Requests\/sec:\s+([\d.]+)/m, 'Requests/sec')[1]),
    latencyMs: { p50: pct(50), p90: pct(90), p99: pct(99), p999: null, mean: durationUs(stats[1]) / 1000, max: durationUs(stats[2]) / 1000 },
    errors: { total: socket.reduce((a, b) => a + b, 0) + non2xx, non2xx, connect: socket[0], read: socket[1], write: socket[2], timeout: socket[3] },
  };
}

/** Open files wrk needs beyond its connections (stdio, epoll, its pipes). */
const SPARE_FILES = 64;

/**
 * The command that runs wrk with `args`: under taskset when pinned, and
 * through sh raising the soft open-files limit when the connections need more
 * than the usual 1024 (the hard limit is the ceiling; beyond it wrk fails,
 * saying so).
 */
function wrkCommand(spec: LoadSpec, args: string[]): [string, string[]] {
  const argv = spec.cpus ? ['taskset', '-c', spec.cpus, 'wrk', ...args] : ['wrk', ...args];
  const files = spec.connections + SPARE_FILES;
  if (files <= 1024) return [argv[0], argv.slice(1)];
  const raise = `n=$(ulimit -Sn); [ "$n" = unlimited ] || [ "$n" -ge ${files} ] || ulimit -Sn ${files} || { echo "wrk needs ${files} open files: raise the hard limit (ulimit -Hn $(ulimit -Hn))" >&2; exit 1; }; exec "$@"`;
  return ['sh', ['-c', raise, 'sh', ...argv]];
}

/** Run wrk against http://127.0.0.1:port (loopback only) with the workload's request. */
export function runWrk(port: number, spec: LoadSpec): Promise<LoadResult> {
  const w = spec.workload ?? WORKLOADS.get;
  if (spec.plain && (w.bodyBytes > 0 || w.method !== 'GET' || spec.delayMs > 0)) {
    throw new Error(`plain wrk sends GET without pacing only (asked: ${w.text}, ${spec.delayMs} ms pause)`);
  }
  const url = `http://127.0.0.1:${port}${w.path}`;
  const args = ['-t', String(spec.threads), '-c', String(spec.connections), '-d', `${spec.seconds}s`, '--timeout', '2s', ...(spec.plain ? ['--latency'] : ['-s', SCRIPT]), url];
  const [cmd, argv] = wrkCommand(spec, args);
  const env = {
    ...process.env,
    BENCH_WRK_DELAY_MS: String(spec.delayMs),
    BENCH_WRK_METHOD: w.method,
    BENCH_WRK_BODY_BYTES: String(w.bodyBytes),
    BENCH_WRK_STAGGER: spec.stagger && spec.delayMs > 0 ? String(Math.ceil(spec.connections / spec.threads)) : '0',
  };
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      argv,
      { env, timeout: (spec.seconds + 15) * 1000, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`wrk failed: ${err.message}\n${stderr}`));
        try {
          resolve(spec.plain ? parsePlainWrkOutput(stdout) : parseWrkOutput(stdout));
        } catch (e) {
          reject(e);
        }
      },
    );
  });
}
