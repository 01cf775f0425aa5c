/**
 * Runs a plan over the scenarios:
 *
 *   first, every target once: start ─> conformance check ─> stop
 *   then, for each round (order alternating, see plan.ts):
 *     for each target:  start fresh ─> conformance check ─> warm-up ─> throughput run
 *                       [─> plain wrk throughput run] ─> latency run ─> read peak RSS
 *                       ─> stop, remove temp folder
 *
 * Each target sends its workload's request at its connections; it is checked
 * against, and its ratios taken to, its own baseline (scenario.ts). A target
 * that fails to start or answers other bytes than its baseline stops the whole
 * bench: numbers from a server that is not doing the same work mean nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sortScenarios } from './load-scenarios.ts';
import { cpuTimeUs, peakRssKb } from './proc.ts';
import { compareAnswers, fetchRaw, type RawResponse } from './probe.ts';
import { roundOrder, shapesFor, type LoadShape, type Plan } from './plan.ts';
import { baselineOf, type Role, type RunningServer, type Scenario } from './scenario.ts';
import { WORKLOADS, wrkRequest, type WorkloadId } from './workload.ts';
import { runWrk, type LoadResult } from './wrk.ts';

export interface RoundResult {
  round: number;
  /** Position of the target within its round (0 = first). */
  position: number;
  throughput: LoadResult;
  /** The same throughput run with plain wrk (no Lua script), for scenarios that ask for it. */
  plain?: LoadResult;
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
  /** The baseline its ratios are taken against (its own id for a baseline). */
  baseline: string;
  workload: WorkloadId;
  /** Keep-alive connections of its throughput and paced runs. */
  connections: number;
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

/** The baselines' answers, by baseline id, recorded at their first check. */
type Answers = Map<string, RawResponse>;

function toShape(s: Scenario, shape: LoadShape, plan: Plan, seconds = shape.seconds) {
  return { ...shape, seconds, cpus: plan.wrkCpus, workload: WORKLOADS[s.workload ?? 'get'] };
}

/**
 * How long the check waits for the first answer: it is a server's first
 * request, which may start an engine (workerd's cold start once took over
 * 5 s and stopped a full run in its last round); not a measurement.
 */
const CHECK_TIMEOUT_MS = 30_000;

/** The answer of `s` to wrk's request, checked against its baseline's (recorded when `s` is a baseline). */
async function checkAnswer(s: Scenario, port: number, answers: Answers): Promise<void> {
  const answer = await fetchRaw(port, wrkRequest(port, WORKLOADS[s.workload ?? 'get']), CHECK_TIMEOUT_MS);
  if (s.role === 'baseline') {
    if (!answers.has(s.id)) answers.set(s.id, answer);
  } else {
    const base = answers.get(baselineOf(s));
    if (!base) throw new Error(`${s.id}: checked before its baseline ${baselineOf(s)}, so its answer cannot be compared`);
    const diff = compareAnswers(base, answer, s.conformance);
    if (diff) throw new Error(`${s.id}: ${diff} (against ${baselineOf(s)})`);
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
async function checkOnce(s: Scenario, plan: Plan, opts: RunOptions, answers: Answers): Promise<void> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), `flexilib-bench-${s.id}-`));
  try {
    const server = await startFresh(s, plan, opts, tmp);
    try {
      await checkAnswer(s, server.port, answers);
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Run one target once, in fresh processes. */
async function runOnce(s: Scenario, plan: Plan, opts: RunOptions, answers: Answers): Promise<{ result: Omit<RoundResult, 'round' | 'position'>; config: string }> {
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
    await checkAnswer(s, server.port, answers);
    const shapes = shapesFor(plan, s.connections);
    const warmup = plan.warmupSeconds > 0 ? await runWrk(server.port, toShape(s, shapes.throughput, plan, plan.warmupSeconds)) : undefined;
    const workerPids = server.processes().filter((p) => p.role === 'worker').map((p) => p.pid);
    const cpu = () => workerPids.reduce((sum, pid) => sum + (cpuTimeUs(pid) ?? NaN), 0);
    const finishProbe = opts.aroundThroughput?.(s.id, workerPids);
    const cpuBefore = cpu();
    const throughput = await runWrk(server.port, toShape(s, shapes.throughput, plan));
    const cpuUs = cpu() - cpuBefore;
    await finishProbe?.();
    const workerCpuUsPerRequest = Number.isFinite(cpuUs) && throughput.requests > 0 ? Math.round((cpuUs / throughput.requests) * 100) / 100 : null;
    const plain = s.plainWrk ? await runWrk(server.port, { ...toShape(s, shapes.throughput, plan), plain: true }) : undefined;
    const latency = await runWrk(server.port, toShape(s, shapes.latency, plan));
    const procs = server.processes();
    pids = procs.map((p) => p.pid);
    const primary = procs.find((p) => p.role === 'primary');
    const rssKb = {
      primary: primary ? (peakRssKb(primary.pid) ?? null) : null,
      workers: procs.filter((p) => p.role === 'worker').map((p) => peakRssKb(p.pid) ?? 0),
    };
    return { result: { throughput, ...(plain ? { plain } : {}), latency, rssKb, startMs: Math.round(startMs), warmupRequests: warmup?.requests ?? 0, workerCpuUsPerRequest }, config: server.config };
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
    baseline: baselineOf(s),
    workload: s.workload ?? 'get',
    connections: shapesFor(plan, s.connections).throughput.connections,
    note: s.note?.(opts.root),
    skipped: s.unavailable?.(opts.root),
    rounds: [],
  }));
  for (const r of runs) if (r.skipped) log(`${r.id}: ${r.skipped}`);
  const active = runs.map((r, i) => ({ run: r, scenario: scenarios[i] })).filter((x) => !x.run.skipped);
  for (const { run } of active) {
    if (!active.some((x) => x.run.id === run.baseline && x.scenario.role === 'baseline')) {
      throw new Error(`${run.id}: its baseline ${run.baseline} is not in this run, so there is nothing to compare it with`);
    }
  }

  // Before measuring anything (when there are several rounds): start every
  // target once and check its answer, so that a misconfigured target stops
  // the bench at once, not minutes in. With one round, round 0 checks each
  // target right before measuring it anyway.
  // The order puts baselines first, so each answer is recorded before it is compared with.
  const answers: Answers = new Map();
  for (const { scenario } of plan.rounds > 1 ? active : []) {
    log(`checking ${scenario.id}'s answer ...`);
    await checkOnce(scenario, plan, opts, answers);
  }
  for (let round = 0; round < plan.rounds; round++) {
    const order = roundOrder(active.length, round);
    for (let position = 0; position < order.length; position++) {
      const { run, scenario } = active[order[position]];
      log(`round ${round + 1}/${plan.rounds}  ${run.id} ...`);
      const { result, config } = await runOnce(scenario, plan, opts, answers);
      run.config ??= config;
      run.rounds.push({ round, position, ...result });
      const t = result.throughput;
      const plain = result.plain ? `, plain wrk ${Math.round(result.plain.rps)} req/s` : '';
      log(`  ${Math.round(t.rps)} req/s${plain}, p99 ${result.latency.latencyMs.p99.toFixed(2)} ms (paced), errors ${t.errors.total + result.latency.errors.total + (result.plain?.errors.total ?? 0)}`);
      // Let TIME_WAIT sockets and the last process's exit settle before the next target.
      await sleep(200);
    }
  }
  return runs;
}
