/**
 * Runs a plan over the scenarios:
 *
 *   for each round (order alternating, see plan.ts):
 *     for each target:  start fresh ─> conformance check ─> warm-up ─> throughput run
 *                       ─> latency run ─> read peak RSS ─> stop, remove temp folder
 *
 * A target that fails to start or answers other bytes than the baseline stops
 * the whole bench: numbers from a server that is not doing the same work mean
 * nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sortScenarios } from './load-scenarios.ts';
import { peakRssKb } from './proc.ts';
import { compareAnswers, fetchRaw, wrkRequest, type RawResponse } from './probe.ts';
import { roundOrder, type LoadShape, type Plan } from './plan.ts';
import type { Role, Scenario } from './scenario.ts';
import { runWrk, type LoadResult } from './wrk.ts';

export interface RoundResult {
  round: number;
  /** Position of the target within its round (0 = first). */
  position: number;
  throughput: LoadResult;
  latency: LoadResult;
  /** Peak RSS (VmHWM) in KiB of the root process and of each worker, read at the end of the run. */
  rssKb: { primary: number | null; workers: number[] };
  /** Milliseconds from spawn until the server accepted requests. */
  startMs: number;
}

export interface TargetRun {
  id: string;
  title: string;
  role: Role;
  /** Flags and config, from the first start. */
  config?: string;
  note?: string;
  /** Why it did not run. */
  skipped?: string;
  rounds: RoundResult[];
}

export interface RunOptions {
  root: string;
  /** Progress lines (to stderr, so stdout keeps only the table). */
  log?: (line: string) => void;
  /** Extra environment for every server (e.g. NODE_OPTIONS=--cpu-prof). */
  serverEnv?: NodeJS.ProcessEnv;
  /** Keep each run's temp folder (profiles, logs) instead of removing it. */
  keepTemp?: boolean;
  /** Called with each run's temp folder after the server stopped. */
  onStopped?: (id: string, tmp: string, pids: number[]) => void;
}

function toShape(shape: LoadShape, plan: Plan, seconds = shape.seconds) {
  return { ...shape, seconds, cpus: plan.wrkCpus };
}

/** Run one target once, in fresh processes. */
async function runOnce(s: Scenario, plan: Plan, opts: RunOptions, baseline: { answer?: RawResponse }): Promise<{ result: Omit<RoundResult, 'round' | 'position'>; config: string }> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), `flexilib-bench-${s.id}-`));
  const t0 = performance.now();
  let server;
  try {
    server = await s.start({ root: opts.root, tmp, workers: plan.workers, env: opts.serverEnv ?? {} });
  } catch (err) {
    if (!opts.keepTemp) rmSync(tmp, { recursive: true, force: true });
    throw new Error(`${s.id}: could not start: ${(err as Error).message}`);
  }
  const startMs = performance.now() - t0;
  let pids: number[] = [];
  try {
    const answer = await fetchRaw(server.port, wrkRequest(server.port));
    if (s.role === 'baseline') baseline.answer ??= answer;
    else {
      if (!baseline.answer) throw new Error(`${s.id}: ran before the baseline, so its answer cannot be checked`);
      const diff = compareAnswers(baseline.answer, answer, s.conformance);
      if (diff) throw new Error(`${s.id}: ${diff}`);
    }
    if (answer.status !== 200) throw new Error(`${s.id}: answered ${answer.status} to the benchmark request`);
    if (plan.warmupSeconds > 0) await runWrk(server.port, toShape(plan.throughput, plan, plan.warmupSeconds));
    const throughput = await runWrk(server.port, toShape(plan.throughput, plan));
    const latency = await runWrk(server.port, toShape(plan.latency, plan));
    const procs = server.processes();
    pids = procs.map((p) => p.pid);
    const primary = procs.find((p) => p.role === 'primary');
    const rssKb = {
      primary: primary ? (peakRssKb(primary.pid) ?? null) : null,
      workers: procs.filter((p) => p.role === 'worker').map((p) => peakRssKb(p.pid) ?? 0),
    };
    return { result: { throughput, latency, rssKb, startMs: Math.round(startMs) }, config: server.config };
  } finally {
    await server.stop();
    opts.onStopped?.(s.id, tmp, pids);
    if (!opts.keepTemp) rmSync(tmp, { recursive: true, force: true });
  }
}

export async function runBench(unsorted: Scenario[], plan: Plan, opts: RunOptions): Promise<TargetRun[]> {
  const scenarios = sortScenarios(unsorted);
  const log = opts.log ?? (() => {});
  const runs: TargetRun[] = scenarios.map((s) => ({
    id: s.id,
    title: s.title,
    role: s.role,
    note: s.note?.(opts.root),
    skipped: s.unavailable?.(opts.root),
    rounds: [],
  }));
  for (const r of runs) if (r.skipped) log(`${r.id}: ${r.skipped}`);
  const active = runs.map((r, i) => ({ run: r, scenario: scenarios[i] })).filter((x) => !x.run.skipped);
  if (active[0]?.scenario.role !== 'baseline') throw new Error('the baseline scenario cannot run here, so there is nothing to compare with');

  // Round 0 runs forward and the baseline sorts first, so its answer is known
  // before any other target's is checked against it.
  const baseline: { answer?: RawResponse } = {};
  for (let round = 0; round < plan.rounds; round++) {
    const order = roundOrder(active.length, round);
    for (let position = 0; position < order.length; position++) {
      const { run, scenario } = active[order[position]];
      log(`round ${round + 1}/${plan.rounds}  ${run.id} ...`);
      const { result, config } = await runOnce(scenario, plan, opts, baseline);
      run.config ??= config;
      run.rounds.push({ round, position, ...result });
      const t = result.throughput;
      log(`  ${Math.round(t.rps)} req/s, p99 ${result.latency.latencyMs.p99.toFixed(2)} ms (paced), errors ${t.errors.total + result.latency.errors.total}`);
      // Let TIME_WAIT sockets and the last process's exit settle before the next target.
      await sleep(200);
    }
  }
  return runs;
}
