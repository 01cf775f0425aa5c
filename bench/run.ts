/**
 * pnpm bench [--quick] — flexilib against a bare node:http cluster and nginx.
 *
 * Prints the table on stdout (progress on stderr), writes
 * bench/results/latest.json, bench/results/latest.svg and docs/performance.md.
 * See bench/performance.template.md for what is measured and how.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { callgrindMissing, formatInstructions, measureInstructions } from './lib/callgrind.ts';
import { formatProfile, summarizeProfiles } from './lib/cpu-profile.ts';
import { formatPerf, PERF_NODE_ARGS, perfMissing, removePerfMaps, startPerf } from './lib/perf.ts';
import { loadScenarios } from './lib/load-scenarios.ts';
import { describeMachine, type Machine } from './lib/machine.ts';
import { estimateSeconds, FULL, QUICK, type Plan } from './lib/plan.ts';
import { measureNativeSteps, type NativeSteps } from './lib/native-steps.ts';
import { killAllSpawned } from './lib/proc.ts';
import { flexilibMissing } from './lib/servers/flexilib.ts';
import { resultsText } from './lib/report/table.ts';
import { writeOutputs } from './lib/report/write.ts';
import { runBench } from './lib/runner.ts';
import { evaluateGoals } from './lib/goals.ts';
import { baselineOf, type Scenario } from './lib/scenario.ts';
import { summarize, type Results } from './lib/summary.ts';
import { findWrk } from './lib/wrk.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

type Log = (line: string) => void;

const HELP = `Usage: pnpm bench [options]      (pnpm bench builds first; node --import tsx bench/run.ts does not)

  --quick            one short round (about two minutes): checks the harness, not figures to quote
  --only IDS         comma-separated scenario ids (their baselines run too)
  --rounds N         rounds (default 3; --quick 1)
  --seconds N        seconds of each throughput run (default 6; --quick 2)
  --workers N        workers per server (default: CPU count)
  --pin-wrk CPUS     run wrk under taskset -c CPUS (default: not pinned)
  --out DIR          results folder (default bench/results)
  --doc FILE         generated doc (default docs/performance.md)
  --no-write         print the table only
  --profile IDS      profile the scenarios IDS (comma-separated) and their baselines with node --cpu-prof
                     and print where the workers' time goes (writes no results)
  --perf IDS         the same with Linux perf (on-CPU samples, kernel included; needs linux-perf)
  --instructions IDS instructions per request of IDS and their baselines, counted by valgrind's callgrind
                     (one worker; 20,000 requests of warm-up, then --seconds, default 30, counted):
                     steady figures on a noisy machine, for sizing hot-path changes (writes no results)
  --render           rewrite the chart and the doc from the results JSON (after editing the template)
  -h, --help
`;

function fail(msg: string, code = 1): never {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(code);
}

function positiveInt(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) fail(`--${name}: "${v}" is not a positive integer`, 2);
  return n;
}

type Args = ReturnType<typeof parseBenchArgs>;

function parseBenchArgs() {
  try {
    return parseArgs({
      args: process.argv.slice(2),
      strict: true,
      options: {
        quick: { type: 'boolean' },
        only: { type: 'string' },
        rounds: { type: 'string' },
        seconds: { type: 'string' },
        workers: { type: 'string' },
        'pin-wrk': { type: 'string' },
        out: { type: 'string' },
        doc: { type: 'string' },
        'no-write': { type: 'boolean' },
        profile: { type: 'string' },
        perf: { type: 'string' },
        instructions: { type: 'string' },
        render: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    fail(`${(err as Error).message}\n\n${HELP}`, 2);
  }
}

/** --render: the chart and the doc again from the results JSON, nothing measured. */
function rerender(outDir: string, docFile: string): void {
  const results = JSON.parse(readFileSync(path.join(outDir, 'latest.json'), 'utf8')) as Results;
  // Figures and goals are derived from the runs: re-derived, so a figure or goal added since the run shows too.
  results.targets = summarize(results.raw);
  results.goals = evaluateGoals(results.targets, results.raw);
  writeOutputs(results, outDir, docFile);
  process.stderr.write(`bench: rewrote ${path.relative(process.cwd(), docFile)} and the chart from ${path.relative(process.cwd(), path.join(outDir, 'latest.json'))}\n`);
}

/** The quick or full plan with the rounds, seconds, workers and wrk pinning given on the command line. */
function planOf(args: Args): Plan {
  const base = args.quick ? QUICK : FULL;
  const rounds = positiveInt('rounds', args.rounds);
  const seconds = positiveInt('seconds', args.seconds);
  const workers = positiveInt('workers', args.workers);
  return {
    ...base,
    mode: rounds || seconds || workers || args['pin-wrk'] || args.only ? 'custom' : base.mode,
    rounds: rounds ?? base.rounds,
    workers: workers ?? base.workers,
    throughput: { ...base.throughput, seconds: seconds ?? base.throughput.seconds },
    wrkCpus: args['pin-wrk'],
  };
}

/** Every scenario, or those named by --profile, --perf, --instructions or --only and their baselines. */
async function selectScenarios(args: Args): Promise<Scenario[]> {
  const scenarios = await loadScenarios();
  const only = (args.profile ?? args.perf ?? args.instructions ?? args.only)?.split(',').map((s) => s.trim()).filter(Boolean);
  if (!only) return scenarios;
  const unknown = only.filter((id) => !scenarios.some((s) => s.id === id));
  if (unknown.length) fail(`unknown scenario(s) ${unknown.join(', ')}; there are: ${scenarios.map((s) => s.id).join(', ')}`, 2);
  const wanted = new Set(scenarios.filter((s) => only.includes(s.id)).flatMap((s) => [s.id, baselineOf(s)]));
  return scenarios.filter((s) => wanted.has(s.id));
}

/** --instructions: callgrind's instructions per request of each scenario. */
async function countInstructions(scenarios: Scenario[], seconds: number | undefined, log: Log): Promise<void> {
  const missing = callgrindMissing();
  if (missing) fail(missing);
  const counts = await measureInstructions(scenarios, { root: ROOT, seconds: seconds ?? 30, log });
  for (const c of counts) {
    const s = scenarios.find((x) => x.id === c.id)!;
    process.stdout.write(`\n${formatInstructions(c, counts.find((b) => b.id === baselineOf(s)))}\n`);
  }
}

/** --perf: one round under Linux perf, and where each scenario's CPU time went. */
async function perfRun(scenarios: Scenario[], plan: Plan, log: Log): Promise<void> {
  const missing = perfMissing();
  if (missing) fail(missing);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'flexilib-bench-perf-'));
  const perfPlan: Plan = { ...plan, mode: 'custom', rounds: 1 };
  const pidsOf: number[] = [];
  log(`perf on ${scenarios.map((s) => s.id).join(' and ')} (about ${estimateSeconds(perfPlan, scenarios.length, plainCount(scenarios))} s); data in ${dir}`);
  try {
    const runs = await runBench(scenarios, perfPlan, {
      root: ROOT,
      log,
      nodeArgs: PERF_NODE_ARGS,
      aroundThroughput: (id, pids) => startPerf(path.join(dir, `${id}.data`), pids),
      // Every node process of the run writes a symbol map, the primary too.
      onStopped: (_id, _tmp, pids) => pidsOf.push(...pids),
    });
    for (const r of runs) {
      if (!r.rounds.length) continue;
      process.stdout.write(`\n${formatPerf(r.id, path.join(dir, `${r.id}.data`), r.rounds[0].throughput.requests)}\n`);
    }
  } finally {
    removePerfMaps(pidsOf);
  }
}

/** --profile: one round under node --cpu-prof, and where the workers' time went. */
async function profileRun(scenarios: Scenario[], plan: Plan, log: Log): Promise<void> {
  const profDir = mkdtempSync(path.join(os.tmpdir(), 'flexilib-bench-profile-'));
  const pidsOf = new Map<string, number[]>();
  const profPlan: Plan = { ...plan, mode: 'custom', rounds: 1 };
  log(`profiling ${scenarios.map((s) => s.id).join(' and ')} (about ${estimateSeconds(profPlan, scenarios.length, plainCount(scenarios))} s); profiles in ${profDir}`);
  const runs = await runBench(scenarios, profPlan, {
    root: ROOT,
    log,
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`],
    onStopped: (id, _tmp, pids) => pidsOf.set(id, pids.slice(1)),
  });
  const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
  const HOT = ['onRequest', 'dispatch', 'match', 'handle', 'call', 'fillRequest', 'resetResponse', 'handle_request', 'finish', 'readResponse', 'writeHead', 'end', 'access', 'parserOnIncoming', 'parserOnHeadersComplete', 'resOnFinish', 'onStreamRead'];
  for (const [id, pids] of pidsOf) {
    const mine = files.filter((f) => pids.some((pid) => f.includes(`.${pid}.`))).map((f) => path.join(profDir, f));
    if (mine.length === 0) {
      log(`${id}: no worker profiles found`);
      continue;
    }
    const r = runs.find((x) => x.id === id)!.rounds[0];
    // Every request the workers answered while profiled: the check, warm-up, throughput (both) and latency runs.
    const requests = 1 + r.warmupRequests + r.throughput.requests + (r.plain?.requests ?? 0) + r.latency.requests;
    process.stdout.write(`\n${formatProfile(`${id} (${mine.length} workers)`, summarizeProfiles(mine), HOT, requests)}\n`);
  }
}

/** How many of the scenarios also run with plain wrk. */
function plainCount(scenarios: Scenario[]): number {
  return scenarios.filter((s) => s.plainWrk).length;
}

/** The flags that shape the measurement (not where results were written: no machine paths in the results). */
function measurementCommand(args: Args): string {
  const flags = [
    args.quick ? '--quick' : '',
    args.only ? `--only ${args.only}` : '',
    args.rounds ? `--rounds ${positiveInt('rounds', args.rounds)}` : '',
    args.seconds ? `--seconds ${positiveInt('seconds', args.seconds)}` : '',
    args.workers ? `--workers ${positiveInt('workers', args.workers)}` : '',
    args['pin-wrk'] ? `--pin-wrk ${args['pin-wrk']}` : '',
  ].filter(Boolean).join(' ');
  return `pnpm bench${flags ? ` ${flags}` : ''}`;
}

/** The measured run: every scenario × rounds, the native route's steps, the results. */
async function measure(args: Args, scenarios: Scenario[], plan: Plan, machine: Machine, log: Log): Promise<Results> {
  log(`${plan.mode} run: ${scenarios.length} targets × ${plan.rounds} round(s), about ${estimateSeconds(plan, scenarios.length, plainCount(scenarios))} s`);
  const started = performance.now();
  const runs = await runBench(scenarios, plan, { root: ROOT, log });
  machine.loadAvg.end = Math.round(os.loadavg()[0] * 100) / 100;
  let nativeSteps: NativeSteps | undefined;
  if (!flexilibMissing(ROOT)) {
    log('timing the native route\'s steps (bench/micro/native-path.ts) ...');
    nativeSteps = measureNativeSteps(ROOT, plan.mode === 'quick');
  }
  const targets = summarize(runs);
  return {
    schema: 1,
    generatedAt: new Date().toISOString(),
    mode: plan.mode,
    command: measurementCommand(args),
    plan,
    machine,
    elapsedSeconds: Math.round((performance.now() - started) / 100) / 10,
    targets,
    goals: evaluateGoals(targets, runs),
    nativeSteps,
    raw: runs,
  };
}

async function main(): Promise<void> {
  const args = parseBenchArgs();
  if (args.help) {
    process.stdout.write(HELP);
    return;
  }
  const outDir = path.resolve(args.out ?? path.join(ROOT, 'bench/results'));
  const docFile = path.resolve(args.doc ?? path.join(ROOT, 'docs/performance.md'));
  if (args.render) return rerender(outDir, docFile);
  if (!findWrk()) fail('wrk is not installed; install it with: apt-get install -y wrk');

  const plan = planOf(args);
  const scenarios = await selectScenarios(args);

  const interrupted = (sig: NodeJS.Signals) => {
    killAllSpawned();
    fail(`interrupted by ${sig}; servers stopped`, 130);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);

  const machine = describeMachine(ROOT);
  const log: Log = (line) => process.stderr.write(`${line}\n`);
  log(`bench: ${machine.cpus} × ${machine.cpuModel}, node ${machine.node}, wrk ${machine.wrk}, load average ${machine.loadAvg.start}`);

  if (args.instructions) return countInstructions(scenarios, positiveInt('seconds', args.seconds), log);
  if (args.perf) return perfRun(scenarios, plan, log);
  if (args.profile) return profileRun(scenarios, plan, log);

  const results = await measure(args, scenarios, plan, machine, log);
  process.stdout.write(`\n${resultsText(results.targets, results.goals)}\n`);
  if (!args['no-write']) {
    const out = writeOutputs(results, outDir, docFile);
    log(`\nwrote ${[out.json, out.svg, out.doc].filter(Boolean).map((f) => path.relative(process.cwd(), f!)).join(', ')} (${results.elapsedSeconds} s)`);
  }
}

main().catch((err: Error) => {
  killAllSpawned();
  fail(err.message);
});
