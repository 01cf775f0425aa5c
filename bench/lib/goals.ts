/**
 * The issues' targets (#20 for the executors, the 1,000 connections and
 * memory; the access log's cost from before), each taken against the
 * reference it names, paired round by round. Shown in the "Against the
 * targets" table; never asserted in tests (speed is what `pnpm bench` reports).
 */
import type { TargetRun } from './runner.ts';
import { pairedRatio, plainRun, type TargetSummary } from './summary.ts';

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

/** A target's requests/s over its own baseline's (the ratio column of the table). */
const ratioOf = (id: string) => (t: Targets) => t.get(id)!.ratio;
/** a's requests/s over b's, paired by round. */
const ratioTo = (a: string, b: string) => (_t: Targets, runs: Runs) => pairedRatio(runs.get(a)!, runs.get(b)!);
const pacedP99 = (id: string) => (t: Targets) => t.get(id)!.paced.p99;
const workerRss = (id: string) => (t: Targets) => t.get(id)!.workerRssRatio;

const GET = 'baseline-node-http';

export const GOALS: GoalSpec[] = [
  {
    id: 'native-throughput',
    text: 'native inline GET: req/s vs bare node:http (same bytes)',
    op: '>=', limit: 1.0, unit: '×',
    needs: ['flexilib-inline', GET],
    value: ratioOf('flexilib-inline'),
  },
  {
    id: 'native-ceiling',
    text: 'native inline GET: req/s vs nginx return 200 (the ceiling), both driven by plain wrk',
    op: '>=', limit: 0.8, unit: '×',
    needs: ['flexilib-inline', 'nginx-return-200'],
    value: (_t, runs) => pairedRatio(runs.get('flexilib-inline')!, runs.get('nginx-return-200')!, plainRun),
  },
  {
    id: 'native-plain',
    text: 'native inline GET: req/s vs bare node:http, both driven by plain wrk',
    op: 'report', limit: null, unit: '×',
    needs: ['flexilib-inline', GET],
    value: (_t, runs) => pairedRatio(runs.get('flexilib-inline')!, runs.get(GET)!, plainRun),
  },
  {
    id: 'p99',
    text: 'native inline GET: p99 latency at 32 connections (paced run)',
    op: '<=', limit: 2, unit: 'ms',
    needs: ['flexilib-inline'],
    value: pacedP99('flexilib-inline'),
  },
  {
    id: 'post-1k',
    text: 'native POST /echo, 1 KiB body: req/s vs bare node:http reading the same body',
    op: '>=', limit: 1.0, unit: '×',
    needs: ['flexilib-post-1k', 'baseline-node-http-post-1k'],
    value: ratioOf('flexilib-post-1k'),
  },
  {
    id: 'post-64k',
    text: 'native POST /echo, 64 KiB body: req/s vs bare node:http reading the same body',
    op: '>=', limit: 1.0, unit: '×',
    needs: ['flexilib-post-64k', 'baseline-node-http-post-64k'],
    value: ratioOf('flexilib-post-64k'),
  },
  {
    id: 'threaded-throughput',
    text: 'threaded native route: req/s vs bare node:http',
    op: '>=', limit: 0.8, unit: '×',
    needs: ['flexilib-threaded', GET],
    value: ratioOf('flexilib-threaded'),
  },
  {
    id: 'proxy-throughput',
    text: 'upstream route: req/s vs nginx proxy_pass to the same origin (nginx return 200)',
    op: '>=', limit: 0.75, unit: '×',
    needs: ['flexilib-upstream', 'nginx-proxy-pass'],
    value: ratioTo('flexilib-upstream', 'nginx-proxy-pass'),
  },
  {
    id: 'wasm-throughput',
    text: 'WASM route: req/s vs bare node:http',
    op: '>=', limit: 0.8, unit: '×',
    needs: ['flexilib-wasm', GET],
    value: ratioOf('flexilib-wasm'),
  },
  {
    id: 'wasm-p99',
    text: 'WASM route: p99 latency at 32 connections (paced run)',
    op: '<=', limit: 2, unit: 'ms',
    needs: ['flexilib-wasm'],
    value: pacedP99('flexilib-wasm'),
  },
  {
    id: 'worker-rss',
    text: 'worker peak RSS, inline route: vs a bare node:http worker',
    op: '<=', limit: 1.2, unit: '×',
    needs: ['flexilib-inline', GET],
    value: workerRss('flexilib-inline'),
  },
  {
    id: 'worker-rss-upstream',
    text: 'worker peak RSS, upstream route: vs a bare node:http worker',
    op: '<=', limit: 1.3, unit: '×',
    needs: ['flexilib-upstream', GET],
    value: workerRss('flexilib-upstream'),
  },
  {
    id: 'worker-rss-wasm',
    text: 'worker peak RSS, WASM route: vs a bare node:http worker',
    op: '<=', limit: 1.3, unit: '×',
    needs: ['flexilib-wasm', GET],
    value: workerRss('flexilib-wasm'),
  },
  {
    id: 'c1000-errors',
    text: '1,000 keep-alive connections, inline GET: errors (non-2xx and socket), all runs',
    op: '<=', limit: 0, unit: '',
    needs: ['flexilib-inline-c1000'],
    value: (t) => t.get('flexilib-inline-c1000')!.errors,
  },
  {
    id: 'c1000-p99',
    text: '1,000 keep-alive connections, inline GET: p99 latency (paced run, the same offered rate)',
    op: '<=', limit: 20, unit: 'ms',
    needs: ['flexilib-inline-c1000'],
    value: pacedP99('flexilib-inline-c1000'),
  },
  {
    id: 'c1000-rss',
    text: '1,000 keep-alive connections, inline GET: largest worker\'s peak RSS',
    op: 'report', limit: null, unit: 'MiB',
    needs: ['flexilib-inline-c1000', 'baseline-node-http-c1000'],
    value: (t) => t.get('flexilib-inline-c1000')!.rssMiB.worker,
    detail: (t) => {
      const b = t.get('baseline-node-http-c1000')!.rssMiB.worker;
      const r = t.get('flexilib-inline-c1000')!.workerRssRatio;
      return b === null || r === null ? undefined : `${r}× bare node:http's ${b} MiB at 1,000 connections`;
    },
  },
  {
    id: 'c1000-throughput',
    text: '1,000 keep-alive connections, inline GET: req/s vs bare node:http at 1,000 connections',
    op: 'report', limit: null, unit: '×',
    needs: ['flexilib-inline-c1000', 'baseline-node-http-c1000'],
    value: ratioOf('flexilib-inline-c1000'),
  },
  {
    id: 'lambda-throughput',
    text: 'Node Lambda route (Runtime API): req/s vs bare node:http',
    op: 'report', limit: null, unit: '×',
    needs: ['flexilib-lambda-node', GET],
    value: ratioOf('flexilib-lambda-node'),
  },
  {
    id: 'worker-route-throughput',
    text: 'Cloudflare Worker route (workerd): req/s vs bare node:http',
    op: 'report', limit: null, unit: '×',
    needs: ['flexilib-worker', GET],
    value: ratioOf('flexilib-worker'),
  },
  {
    id: 'observability-cost',
    text: 'access log and metrics on vs off: req/s',
    op: '>=', limit: 0.9, unit: '×',
    needs: ['flexilib-logs-metrics-on', 'flexilib-logs-metrics-off'],
    value: ratioTo('flexilib-logs-metrics-on', 'flexilib-logs-metrics-off'),
  },
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
