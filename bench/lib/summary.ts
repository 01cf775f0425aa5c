/**
 * From raw rounds to the figures reported: medians over rounds, ratios to the
 * baseline taken round by round (a target against the baseline of the same
 * round, then the median), and the speed targets.
 */
import type { Plan } from './plan.ts';
import type { Machine } from './machine.ts';
import type { NativeSteps } from './native-steps.ts';
import type { Role } from './scenario.ts';
import type { TargetRun } from './runner.ts';

export interface TargetSummary {
  id: string;
  title: string;
  role: Role;
  config?: string;
  note?: string;
  skipped?: string;
  rounds: number;
  /** Throughput run: median requests/s, and the lowest and highest round. */
  rps: number;
  rpsRange: [number, number];
  /** Median over rounds of this target's requests/s divided by the baseline's in the same round. */
  ratio: number | null;
  /** Latency (ms) of the throughput run: 32 connections as fast as the server answers. */
  saturated: { p50: number; p99: number };
  /** Latency (ms) of the paced run, and the rate it achieved. */
  paced: { rps: number; p50: number; p99: number; max: number };
  /** Non-2xx answers plus socket errors (connect, read, write, timeout), all runs of all rounds. */
  errors: number;
  /** Peak RSS in MiB: root process, and the largest worker (highest over rounds). */
  rssMiB: { primary: number | null; worker: number | null };
  /** Largest worker's peak RSS over the baseline's. */
  workerRssRatio: number | null;
  /** Workers' CPU time per request in the throughput run (µs, median over rounds). */
  cpuUsPerRequest: number | null;
}

export interface GoalResult {
  id: string;
  text: string;
  value: number | null;
  limit: number;
  op: '>=' | '<=';
  unit: string;
  met: boolean | null;
  /** Why there is no value (a scenario skipped or absent). */
  missing?: string;
}

export interface Results {
  schema: 1;
  generatedAt: string;
  mode: Plan['mode'];
  command: string;
  plan: Plan;
  machine: Machine;
  elapsedSeconds: number;
  targets: TargetSummary[];
  goals: GoalResult[];
  /** The native route's steps timed alone (bench/micro/native-path.ts); absent when flexilib is not built. */
  nativeSteps?: NativeSteps;
  raw: TargetRun[];
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const round = (x: number, digits: number) => (Number.isFinite(x) ? Math.round(x * 10 ** digits) / 10 ** digits : x);
const mib = (kb: number) => round(kb / 1024, 1);

/** Median over shared rounds of a.rps / b.rps. */
export function pairedRatio(a: TargetRun, b: TargetRun): number | null {
  const ratios: number[] = [];
  for (const ra of a.rounds) {
    const rb = b.rounds.find((x) => x.round === ra.round);
    if (rb && rb.throughput.rps > 0) ratios.push(ra.throughput.rps / rb.throughput.rps);
  }
  return ratios.length ? round(median(ratios), 3) : null;
}

function cpuPerRequest(r: TargetRun): number | null {
  const xs = r.rounds.map((x) => x.workerCpuUsPerRequest).filter((x): x is number => x !== null);
  return xs.length ? round(median(xs), 1) : null;
}

function maxOf(xs: Array<number | null>): number | null {
  const v = xs.filter((x): x is number => x !== null && x > 0);
  return v.length ? Math.max(...v) : null;
}

export function summarize(runs: TargetRun[]): TargetSummary[] {
  const base = runs.find((r) => r.role === 'baseline');
  const baseWorker = base ? maxOf(base.rounds.flatMap((r) => r.rssKb.workers)) : null;
  return runs.map((r): TargetSummary => {
    if (r.rounds.length === 0) {
      return {
        id: r.id, title: r.title, role: r.role, config: r.config, note: r.note, skipped: r.skipped ?? 'did not run',
        rounds: 0, rps: 0, rpsRange: [0, 0], ratio: null, saturated: { p50: 0, p99: 0 }, paced: { rps: 0, p50: 0, p99: 0, max: 0 },
        errors: 0, rssMiB: { primary: null, worker: null }, workerRssRatio: null, cpuUsPerRequest: null,
      };
    }
    const rps = r.rounds.map((x) => x.throughput.rps);
    const worker = maxOf(r.rounds.flatMap((x) => x.rssKb.workers));
    const primary = maxOf(r.rounds.map((x) => x.rssKb.primary));
    return {
      id: r.id,
      title: r.title,
      role: r.role,
      config: r.config,
      note: r.note,
      skipped: r.skipped,
      rounds: r.rounds.length,
      rps: Math.round(median(rps)),
      rpsRange: [Math.round(Math.min(...rps)), Math.round(Math.max(...rps))],
      ratio: base && r.rounds.length ? pairedRatio(r, base) : null,
      saturated: {
        p50: round(median(r.rounds.map((x) => x.throughput.latencyMs.p50)), 3),
        p99: round(median(r.rounds.map((x) => x.throughput.latencyMs.p99)), 3),
      },
      paced: {
        rps: Math.round(median(r.rounds.map((x) => x.latency.rps))),
        p50: round(median(r.rounds.map((x) => x.latency.latencyMs.p50)), 3),
        p99: round(median(r.rounds.map((x) => x.latency.latencyMs.p99)), 3),
        max: round(Math.max(...r.rounds.map((x) => x.latency.latencyMs.max)), 3),
      },
      errors: r.rounds.reduce((n, x) => n + x.throughput.errors.total + x.latency.errors.total, 0),
      rssMiB: { primary: primary === null ? null : mib(primary), worker: worker === null ? null : mib(worker) },
      workerRssRatio: worker !== null && baseWorker ? round(worker / baseWorker, 3) : null,
      cpuUsPerRequest: cpuPerRequest(r),
    };
  });
}

interface GoalSpec {
  id: string;
  text: string;
  op: '>=' | '<=';
  limit: number;
  unit: string;
  /** Scenario ids the goal needs. */
  needs: string[];
  value(t: Map<string, TargetSummary>, runs: Map<string, TargetRun>): number | null;
}

/** The speed targets. Shown, never asserted in tests. */
export const GOALS: GoalSpec[] = [
  {
    id: 'native-throughput',
    text: 'native route (inline) requests/s vs bare node:http',
    op: '>=', limit: 0.95, unit: '×',
    needs: ['flexilib-inline'],
    value: (t) => t.get('flexilib-inline')!.ratio,
  },
  {
    id: 'p99',
    text: 'native route p99 latency at 32 connections (paced run)',
    op: '<=', limit: 2, unit: 'ms',
    needs: ['flexilib-inline'],
    value: (t) => t.get('flexilib-inline')!.paced.p99,
  },
  {
    id: 'worker-rss',
    text: 'flexilib worker peak RSS vs a bare node:http worker',
    op: '<=', limit: 1.2, unit: '×',
    needs: ['flexilib-inline'],
    value: (t) => t.get('flexilib-inline')!.workerRssRatio,
  },
  {
    id: 'observability-cost',
    text: 'access log and metrics on vs off, requests/s',
    op: '>=', limit: 0.9, unit: '×',
    needs: ['flexilib-logs-metrics-on', 'flexilib-logs-metrics-off'],
    value: (_t, runs) => pairedRatio(runs.get('flexilib-logs-metrics-on')!, runs.get('flexilib-logs-metrics-off')!),
  },
  {
    id: 'proxy-throughput',
    text: 'upstream route requests/s vs nginx proxy_pass (same origin)',
    op: '>=', limit: 0.5, unit: '×',
    needs: ['flexilib-upstream', 'nginx-proxy-pass'],
    value: (_t, runs) => pairedRatio(runs.get('flexilib-upstream')!, runs.get('nginx-proxy-pass')!),
  },
];

export function evaluateGoals(targets: TargetSummary[], runs: TargetRun[]): GoalResult[] {
  const t = new Map(targets.map((x) => [x.id, x]));
  const r = new Map(runs.map((x) => [x.id, x]));
  return GOALS.map((g) => {
    const absent = g.needs.find((id) => !t.has(id) || t.get(id)!.rounds === 0);
    const base = { id: g.id, text: g.text, limit: g.limit, op: g.op, unit: g.unit };
    if (absent) return { ...base, value: null, met: null, missing: `${absent} did not run` };
    const value = g.value(t, r);
    const met = value === null ? null : g.op === '>=' ? value >= g.limit : value <= g.limit;
    return { ...base, value, met };
  });
}
