/**
 * The issues' targets (#20 for the executors, the 1,000 connections and
 * memory; the access log's cost from before), each taken against the
 * reference it names, paired round by round. Shown in the "Against the
 * targets" table; never asserted in tests (speed is what `pnpm bench` reports).
 */
import type { TargetRun } from './runner.ts';
import { pairedRatio, plainRun, type RunPick, type TargetSummary } from './summary.ts';

export interface GoalResult {
  id: string;
  text: string;
  value: number | null;
  /** null for a figure that is reported, with no limit. */
  limit: number | null;
  op: '>=' | '<=' | 'report';
  unit: string;
  /** Whether the limit was met; null when not measured or only reported. */
  met: boolean | null;
  /** Why there is no value (a scenario skipped or absent). */
  missing?: string;
  /** Said after the value (a reported figure's reference). */
  detail?: string;
}

type Targets = Map<string, TargetSummary>;
type Runs = Map<string, TargetRun>;

interface GoalSpec {
  id: string;
  text: string;
  op: GoalResult['op'];
  limit: number | null;
  unit: string;
  /** Scenario ids the goal needs (the references too). */
  needs: string[];
  value(t: Targets, runs: Runs): number | null;
  detail?(t: Targets, runs: Runs): string | undefined;
}

const GET = 'baseline-node-http';

/** `target`'s requests/s over its own baseline's (the table's ratio column), at least `limit`. */
function ratioGoal(id: string, text: string, limit: number, target: string, baseline = GET): GoalSpec {
  return { id, text, op: '>=', limit, unit: '×', needs: [target, baseline], value: (t) => t.get(target)!.ratio };
}

/** a's requests/s over b's, paired by round (of the run `pick` chooses), at least `limit` (or reported). */
function pairedGoal(id: string, text: string, limit: number | null, a: string, b: string, pick?: RunPick): GoalSpec {
  return { id, text, op: limit === null ? 'report' : '>=', limit, unit: '×', needs: [a, b], value: (_t, runs) => pairedRatio(runs.get(a)!, runs.get(b)!, pick) };
}

/** `target`'s p99 in the paced run, at most `limit` ms. */
function p99Goal(id: string, text: string, limit: number, target: string): GoalSpec {
  return { id, text, op: '<=', limit, unit: 'ms', needs: [target], value: (t) => t.get(target)!.paced.p99 };
}

/** `target`'s largest worker's peak RSS over a bare node:http worker's, at most `limit`. */
function rssGoal(text: string, limit: number, target: string, id = `worker-rss-${target.replace('flexilib-', '')}`): GoalSpec {
  return { id, text: `worker peak RSS, ${text}: vs a bare node:http worker`, op: '<=', limit, unit: '×', needs: [target, GET], value: (t) => t.get(target)!.workerRssRatio };
}

/** `target`'s ratio to its own baseline, reported with no limit. */
function reportedRatio(id: string, text: string, target: string, baseline = GET): GoalSpec {
  return { ...ratioGoal(id, text, 0, target, baseline), op: 'report', limit: null };
}

const C1000 = 'flexilib-inline-c1000';

export const GOALS: GoalSpec[] = [
  ratioGoal('native-throughput', 'native inline GET: req/s vs bare node:http (same bytes)', 1.0, 'flexilib-inline'),
  pairedGoal('native-ceiling', 'native inline GET: req/s vs nginx return 200 (the ceiling), both driven by plain wrk', 0.8, 'flexilib-inline', 'nginx-return-200', plainRun),
  pairedGoal('node-floor-ceiling', 'the Node.js floor (bare node:net, fixed answer, no parsing): req/s vs nginx return 200, both driven by plain wrk', null, 'node-net-floor', 'nginx-return-200', plainRun),
  pairedGoal('native-floor', 'native inline GET: req/s vs the Node.js floor (bare node:net), both driven by plain wrk', null, 'flexilib-inline', 'node-net-floor', plainRun),
  pairedGoal('native-plain', 'native inline GET: req/s vs bare node:http, both driven by plain wrk', null, 'flexilib-inline', GET, plainRun),
  p99Goal('p99', 'native inline GET: p99 latency at 32 connections (paced run)', 2, 'flexilib-inline'),
  ratioGoal('post-1k', 'native POST /echo, 1 KiB body: req/s vs bare node:http reading the same body', 1.0, 'flexilib-post-1k', 'baseline-node-http-post-1k'),
  ratioGoal('post-64k', 'native POST /echo, 64 KiB body: req/s vs bare node:http reading the same body', 1.0, 'flexilib-post-64k', 'baseline-node-http-post-64k'),
  ratioGoal('threaded-throughput', 'threaded native route: req/s vs bare node:http', 0.8, 'flexilib-threaded'),
  pairedGoal('proxy-throughput', 'upstream route: req/s vs nginx proxy_pass to the same origin (nginx return 200)', 0.75, 'flexilib-upstream', 'nginx-proxy-pass'),
  pairedGoal('proxy-floor-ceiling', 'the Node.js proxy floor (bare node:net forwarding bytes, no HTTP): req/s vs nginx proxy_pass to the same origin', null, 'node-net-proxy-floor', 'nginx-proxy-pass'),
  pairedGoal('proxy-floor', 'upstream route: req/s vs the Node.js proxy floor (bare node:net)', null, 'flexilib-upstream', 'node-net-proxy-floor'),
  ratioGoal('wasm-throughput', 'WASM route: req/s vs bare node:http', 0.8, 'flexilib-wasm'),
  p99Goal('wasm-p99', 'WASM route: p99 latency at 32 connections (paced run)', 2, 'flexilib-wasm'),
  rssGoal('inline route', 1.2, 'flexilib-inline', 'worker-rss'),
  rssGoal('upstream route', 1.3, 'flexilib-upstream'),
  rssGoal('WASM route', 1.3, 'flexilib-wasm'),
  {
    id: 'c1000-errors',
    text: '1,000 keep-alive connections, inline GET: errors (non-2xx and socket), all runs',
    op: '<=', limit: 0, unit: '',
    needs: [C1000],
    value: (t) => t.get(C1000)!.errors,
  },
  p99Goal('c1000-p99', '1,000 keep-alive connections, inline GET: p99 latency (paced run, the same offered rate)', 20, C1000),
  {
    id: 'c1000-rss',
    text: '1,000 keep-alive connections, inline GET: largest worker\'s peak RSS',
    op: 'report', limit: null, unit: 'MiB',
    needs: [C1000, 'baseline-node-http-c1000'],
    value: (t) => t.get(C1000)!.rssMiB.worker,
    detail: (t) => {
      const b = t.get('baseline-node-http-c1000')!.rssMiB.worker;
      const r = t.get(C1000)!.workerRssRatio;
      return b === null || r === null ? undefined : `${r}× bare node:http's ${b} MiB at 1,000 connections`;
    },
  },
  reportedRatio('c1000-throughput', '1,000 keep-alive connections, inline GET: req/s vs bare node:http at 1,000 connections', C1000, 'baseline-node-http-c1000'),
  reportedRatio('lambda-throughput', 'Node Lambda route (Runtime API): req/s vs bare node:http', 'flexilib-lambda-node'),
  reportedRatio('worker-route-throughput', 'Cloudflare Worker route (workerd): req/s vs bare node:http', 'flexilib-worker'),
  pairedGoal('observability-cost', 'access log and metrics on vs off: req/s', 0.9, 'flexilib-logs-metrics-on', 'flexilib-logs-metrics-off'),
];

export function evaluateGoals(targets: TargetSummary[], runs: TargetRun[], goals: GoalSpec[] = GOALS): GoalResult[] {
  const t: Targets = new Map(targets.map((x) => [x.id, x]));
  const r: Runs = new Map(runs.map((x) => [x.id, x]));
  return goals.map((g) => {
    const absent = g.needs.find((id) => !t.has(id) || t.get(id)!.rounds === 0);
    const base = { id: g.id, text: g.text, limit: g.limit, op: g.op, unit: g.unit };
    if (absent) return { ...base, value: null, met: null, missing: `${absent} did not run` };
    const value = g.value(t, r);
    const detail = g.detail?.(t, r);
    const met = value === null || g.limit === null || g.op === 'report' ? null : g.op === '>=' ? value >= g.limit : value <= g.limit;
    return { ...base, value, met, ...(detail ? { detail } : {}) };
  });
}
