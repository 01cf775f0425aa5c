/**
 * Runs a plan over the scenarios:
 *
 *   first, every target once: start ─> conformance check ─> stop
 *   then, for each round (order alternating, see plan.ts):
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
import { cpuTimeUs, peakRssKb } from './proc.ts';
import { compareAnswers, fetchRaw, wrkRequest, type RawResponse } from './probe.ts';
import { roundOrder, type LoadShape, type Plan } from './plan.ts';
import type { Role, RunningServer, Scenario } from './scenario.ts';
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
  /** Requests of the discarded warm-up run. */
  warmupRequests: number;
  /**
   * CPU time (user + system) the workers spent per request during the
   * throughput run, in microseconds. Less sensitive than req/s to other work
   * on the machine, since it counts the server's own CPU time only.
   */
  workerCpuUsPerRequest: number | null;
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
  /** Extra flags for every node server (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Keep each run's temp folder (profiles, logs) instead of removing it. */
  keepTemp?: boolean;
  /** Called with each run's temp folder after the server stopped. */
  onStopped?: (id: string, tmp: string, pids: number[]) => void;
  /**
   * Called just before the throughput run with the workers' pids (e.g. to
   * start perf on them); the function it returns is awaited once the run ends.
   */
  aroundThroughput?: (id: string, workerPids: number[]) => () => Promise<void>;
}

function toShape(shape: LoadShape, plan: Plan, seconds = shape.seconds) {
  return { ...shape, seconds, cpus: plan.wrkCpus };
}

/** The answer of `s` to wrk's request, checked against the baseline's (recorded when `s` is the baseline). */
async function checkAnswer(s: Scenario, port: number, baseline: { answer?: RawResponse }): Promise<void> {
  const answer = await fetchRaw(port, wrkRequest(port));
  if (s.role === 'baseline') baseline.answer ??= answer;
  else {
    if (!baseline.answer) throw new Error(`${s.id}: checked before the baseline, so its answer cannot be compared`);
    const diff = compareAnswers(baseline.answer, answer, s.conformance);
    if (diff) throw new Error(`${s.id}: ${diff}`);
  }
  if (answer.status !== 200) throw new Error(`${s.id}: answered ${answer.status} to the benchmark request`);
}

async function startFresh(s: Scenario, plan: Plan, opts: RunOptions, tmp: string): Promise<RunningServer> {
  try {
    return await s.start({ root: opts.root, tmp, workers: plan.workers, env: {}, nodeArgs: opts.nodeArgs ?? [] });
  } catch (err) {
    throw new Error(`${s.id}: could not start: ${(err as Error).message}`);
  }
}

/** Start `s`, check its answer, stop it. */
async function checkOnce(s: Scenario, plan: Plan, opts: RunOptions, baseline: { answer?: RawResponse }): Promise<void> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), `flexilib-bench-${s.id}-`));
  try {
    const server = await startFresh(s, plan, opts, tmp);
    try {
      await checkAnswer(s, server.port, baseline);
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Run one target once, in fresh processes. */
async function runOnce(s: Scenario, plan: Plan, opts: RunOptions, baseline: { answer?: RawResponse }): Promise<{ result: Omit<RoundResult, 'round' | 'position'>; config: string }> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), `flexilib-bench-${s.id}-`));
  const t0 = performance.now();
  let server: RunningServer;
  try {
    server = await startFresh(s, plan, opts, tmp);
  } catch (err) {
    if (!opts.keepTemp) rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  const startMs = performance.now() - t0;
  let pids: number[] = [];
  try {
    // Every fresh start is checked again: the bytes measured are the bytes checked.
    await checkAnswer(s, server.port, baseline);
    const warmup = plan.warmupSeconds > 0 ? await runWrk(server.port, toShape(plan.throughput, plan, plan.warmupSeconds)) : undefined;
    const workerPids = server.processes().filter((p) => p.role === 'worker').map((p) => p.pid);
    const cpu = () => workerPids.reduce((sum, pid) => sum + (cpuTimeUs(pid) ?? NaN), 0);
    const finishProbe = opts.aroundThroughput?.(s.id, workerPids);
    const cpuBefore = cpu();
    const throughput = await runWrk(server.port, toShape(plan.throughput, plan));
    const cpuUs = cpu() - cpuBefore;
    await finishProbe?.();
    const workerCpuUsPerRequest = Number.isFinite(cpuUs) && throughput.requests > 0 ? Math.round((cpuUs / throughput.requests) * 100) / 100 : null;
    const latency = await runWrk(server.port, toShape(plan.latency, plan));
    const procs = server.processes();
    pids = procs.map((p) => p.pid);
    const primary = procs.find((p) => p.role === 'primary');
    const rssKb = {
      primary: primary ? (peakRssKb(primary.pid) ?? null) : null,
      workers: procs.filter((p) => p.role === 'worker').map((p) => peakRssKb(p.pid) ?? 0),
    };
    return { result: { throughput, latency, rssKb, startMs: Math.round(startMs), warmupRequests: warmup?.requests ?? 0, workerCpuUsPerRequest }, config: server.config };
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

  // Before measuring anything (when there are several rounds): start every
  // target once and check its answer, so that a misconfigured target stops
  // the bench at once, not minutes in. With one round, round 0 checks each
  // target right before measuring it anyway.
  const baseline: { answer?: RawResponse } = {};
  for (const { scenario } of plan.rounds > 1 ? active : []) {
    log(`checking ${scenario.id}'s answer ...`);
    await checkOnce(scenario, plan, opts, baseline);
  }
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
