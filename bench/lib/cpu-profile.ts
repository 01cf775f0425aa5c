/**
 * Where a worker's CPU time goes, from the .cpuprofile files that
 * `node --cpu-prof` writes: self time by function and by file, and the
 * inclusive time of named functions of the hot path.
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  /** Microseconds sampled, in all merged profiles. */
  totalUs: number;
  /** Microseconds outside idle. */
  busyUs: number;
  /** Self time by function ("name file:line"), busy time only. */
  byFunction: Map<string, number>;
  /** Self time by file or category. */
  byFile: Map<string, number>;
  /** Inclusive time by function name (outermost frame of each name counted once per stack). */
  inclusive: Map<string, number>;
}

/** A short name for where a frame's code lives. */
export function fileOf(cf: CallFrame): string {
  const u = cf.url;
  if (!u) {
    if (cf.functionName.startsWith('(')) return cf.functionName;
    return '(native)';
  }
  if (u.startsWith('node:')) return u;
  const pkg = /\/node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)\//.exec(u);
  if (pkg) return `npm:${pkg[1]}`;
  const own = /\/packages\/([^/]+)\/dist\/(.+)$/.exec(u);
  if (own) return `${own[1]}/${own[2]}`;
  return u.replace(/^file:\/\//, '').split('/').slice(-2).join('/');
}

function add<K>(m: Map<K, number>, k: K, v: number): void {
  m.set(k, (m.get(k) ?? 0) + v);
}

export function summarizeProfiles(files: string[]): ProfileSummary {
  const s: ProfileSummary = { totalUs: 0, busyUs: 0, byFunction: new Map(), byFile: new Map(), inclusive: new Map() };
  for (const f of files) {
    const p = JSON.parse(readFileSync(f, 'utf8')) as CpuProfile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const self = new Map<number, number>();
    // timeDeltas[i] is the time from sample i-1 to sample i; charge it to sample i.
    for (let i = 0; i < p.samples.length; i++) add(self, p.samples[i], p.timeDeltas[i] ?? 0);
    for (const [id, us] of self) {
      const n = byId.get(id)!;
      const cf = n.callFrame;
      s.totalUs += us;
      if (cf.functionName === '(idle)') continue;
      s.busyUs += us;
      const file = fileOf(cf);
      add(s.byFile, file, us);
      add(s.byFunction, `${cf.functionName || '(anonymous)'} ${file}:${cf.lineNumber + 1}`, us);
      // Inclusive: walk up once, counting each function name once per stack.
      const seen = new Set<string>();
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const c = byId.get(cur)!.callFrame;
        const name = c.functionName || '(anonymous)';
        if (seen.has(name)) continue;
        seen.add(name);
        add(s.inclusive, name, us);
      }
    }
  }
  return s;
}

function top(m: Map<string, number>, n: number): Array<[string, number]> {
  return [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n);
}

/**
 * A readable report: shares of busy (non-idle) time and, when the number of
 * requests served is known, microseconds per request.
 */
export function formatProfile(title: string, s: ProfileSummary, hotPath: string[] = [], requests = 0): string {
  const perReq = (us: number) => (requests > 0 ? `${(us / requests).toFixed(2).padStart(7)} µs/req ` : '');
  const pct = (us: number) => `${((100 * us) / Math.max(1, s.busyUs)).toFixed(1).padStart(5)} % ${perReq(us)}`;
  const lines = [
    `${title}: ${(s.busyUs / 1e6).toFixed(2)} s busy of ${(s.totalUs / 1e6).toFixed(2)} s sampled (${((100 * s.busyUs) / Math.max(1, s.totalUs)).toFixed(0)} % busy)` +
      (requests > 0 ? `, ${requests} requests: ${(s.busyUs / requests).toFixed(2)} µs of JS-visible CPU per request` : ''),
    '',
    '  self time by file:',
    ...top(s.byFile, 18).map(([k, v]) => `    ${pct(v)}  ${k}`),
    '',
    '  self time by function:',
    ...top(s.byFunction, 25).map(([k, v]) => `    ${pct(v)}  ${k}`),
  ];
  const inc = hotPath.filter((n) => s.inclusive.has(n));
  if (inc.length) {
    lines.push('', '  inclusive time of hot-path functions:');
    for (const n of inc) lines.push(`    ${pct(s.inclusive.get(n)!)}  ${n}`);
  }
  return lines.join('\n');
}
