/**
 * From raw rounds to the figures reported: medians over rounds, ratios to
 * each target's own baseline taken round by round (a target against its
 * baseline of the same round, then the median), and the targets
 * (lib/goals.ts).
 */
import type { Plan } from './plan.ts';
import type { Machine } from './machine.ts';
import type { NativeSteps } from './native-steps.ts';
import type { Role } from './scenario.ts';
import type { RoundResult, TargetRun } from './runner.ts';
import { MAIN_BASELINE } from './scenario.ts';
import type { WorkloadId } from './workload.ts';
import type { GoalResult } from './goals.ts';

export type { GoalResult };

export interface TargetSummary {
  id: string;
  title: string;
  role: Role;
  /** The baseline its ratios are taken against (its own id for a baseline). */
  baseline: string;
  workload: WorkloadId;
  connections: number;
  config?: string;
  note?: string;
  skipped?: string;
  rounds: number;
  /** Throughput run: median requests/s, and the lowest and highest round. */
  rps: number;
  rpsRange: [number, number];
  /** Median over rounds of this target's requests/s divided by its baseline's in the same round. */
  ratio: number | null;
  /** Median requests/s of the plain wrk run (no Lua script), for targets that have one. */
  plainRps: number | null;
  /** Latency (ms) of the throughput run: 32 connections as fast as the server answers. */
  saturated: { p50: number; p99: number };
  /** Latency (ms) of the paced run, and the rate it achieved. */
  paced: { rps: number; p50: number; p99: number; max: number };
  /** Non-2xx answers plus socket errors (connect, read, write, timeout), all runs (plain wrk's too) of all rounds. */
  errors: number;
  /** Peak RSS in MiB: root process, and the largest worker (highest over rounds). */
  rssMiB: { primary: number | null; worker: number | null };
  /** Largest worker's peak RSS over its baseline's. */
  workerRssRatio: number | null;
  /** Workers' CPU time per request in the throughput run (µs, median over rounds). */
  cpuUsPerRequest: number | null;
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

/** Which run of a round a ratio is taken from: the throughput run (wrk with its script) by default. */
export type RunPick = (r: RoundResult) => { rps: number } | undefined;
const throughputRun: RunPick = (r) => r.throughput;
export const plainRun: RunPick = (r) => r.plain;

/** Median over shared rounds of a's req/s over b's (of the run `pick` chooses). */
export function pairedRatio(a: TargetRun, b: TargetRun, pick: RunPick = throughputRun): number | null {
  const ratios: number[] = [];
  for (const ra of a.rounds) {
    const rb = b.rounds.find((x) => x.round === ra.round);
    const x = pick(ra);
    const y = rb && pick(rb);
    if (x && y && y.rps > 0) ratios.push(x.rps / y.rps);
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

/** Results written before targets had baselines of their own were all against MAIN_BASELINE, GET, 32 connections. */
function baselineId(r: TargetRun): string {
  return r.baseline ?? (r.role === 'baseline' ? r.id : MAIN_BASELINE);
}

export function summarize(runs: TargetRun[]): TargetSummary[] {
  const byId = new Map(runs.map((r) => [r.id, r]));
  const workerKb = (r: TargetRun | undefined) => (r ? maxOf(r.rounds.flatMap((x) => x.rssKb.workers)) : null);
  return runs.map((r): TargetSummary => {
    const ids = { id: r.id, title: r.title, role: r.role, baseline: baselineId(r), workload: r.workload ?? 'get', connections: r.connections ?? 32 };
    if (r.rounds.length === 0) {
      return {
        ...ids, config: r.config, note: r.note, skipped: r.skipped ?? 'did not run',
        rounds: 0, rps: 0, rpsRange: [0, 0], ratio: null, plainRps: null, saturated: { p50: 0, p99: 0 }, paced: { rps: 0, p50: 0, p99: 0, max: 0 },
        errors: 0, rssMiB: { primary: null, worker: null }, workerRssRatio: null, cpuUsPerRequest: null,
      };
    }
    const base = byId.get(ids.baseline);
    const baseWorker = workerKb(base);
    const rps = r.rounds.map((x) => x.throughput.rps);
    const plain = r.rounds.flatMap((x) => (x.plain ? [x.plain.rps] : []));
    const worker = workerKb(r);
    const primary = maxOf(r.rounds.map((x) => x.rssKb.primary));
    return {
      ...ids,
      config: r.config,
      note: r.note,
      skipped: r.skipped,
      rounds: r.rounds.length,
      rps: Math.round(median(rps)),
      rpsRange: [Math.round(Math.min(...rps)), Math.round(Math.max(...rps))],
      ratio: base && r.rounds.length ? pairedRatio(r, base) : null,
      plainRps: plain.length ? Math.round(median(plain)) : null,
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
      errors: r.rounds.reduce((n, x) => n + x.throughput.errors.total + x.latency.errors.total + (x.plain?.errors.total ?? 0), 0),
      rssMiB: { primary: primary === null ? null : mib(primary), worker: worker === null ? null : mib(worker) },
      workerRssRatio: worker !== null && baseWorker ? round(worker / baseWorker, 3) : null,
      cpuUsPerRequest: cpuPerRequest(r),
    };
  });
}

