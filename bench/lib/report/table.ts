/** The results as a table: plain text for stdout, Markdown for docs/performance.md. */
import type { GoalResult, TargetSummary } from '../summary.ts';

const HEAD = ['target', 'req/s', '× baseline', 'plain wrk req/s', 'p50 ms', 'p99 ms', 'p99 ms saturated', 'errors', 'primary RSS MiB', 'worker RSS MiB', 'worker × baseline', 'worker CPU µs/req'];
const RIGHT = [false, true, true, true, true, true, true, true, true, true, true, true];

const fmt = (x: number | null, digits: number) => (x === null || !Number.isFinite(x) ? '–' : x.toFixed(digits));
const thousands = (x: number) => Math.round(x).toLocaleString('en-US');

export function targetRows(targets: TargetSummary[]): string[][] {
  return targets.map((t) => {
    if (t.skipped) return [t.id, 'skipped', '', '', '', '', '', '', '', '', '', ''];
    return [
      t.id,
      thousands(t.rps),
      fmt(t.ratio, 2),
      t.plainRps === null ? '' : thousands(t.plainRps),
      fmt(t.paced.p50, 2),
      fmt(t.paced.p99, 2),
      fmt(t.saturated.p99, 2),
      String(t.errors),
      fmt(t.rssMiB.primary, 1),
      fmt(t.rssMiB.worker, 1),
      fmt(t.workerRssRatio, 2),
      fmt(t.cpuUsPerRequest, 1),
    ];
  });
}

/** 1.2× with the unit "×", 2 ms with "ms", 0 with none. */
const withUnit = (x: number, unit: string) => `${x}${unit === '×' || unit === '' ? unit : ` ${unit}`}`;

export function goalRows(goals: GoalResult[]): string[][] {
  return goals.map((g) => {
    const measured = g.value === null ? (g.missing ?? '–') : `${withUnit(g.value, g.unit)}${g.detail ? ` (${g.detail})` : ''}`;
    if (g.op === 'report' || g.limit === null) return [g.text, 'reported', measured, g.value === null ? 'not measured' : ''];
    return [g.text, `${g.op === '>=' ? '≥' : '≤'} ${withUnit(g.limit, g.unit)}`, measured, g.met === null ? 'not measured' : g.met ? 'met' : 'MISSED'];
  });
}

export function textTable(head: string[], rows: string[][], right: boolean[] = []): string {
  const width = head.map((h, i) => Math.max([...h].length, ...rows.map((r) => [...(r[i] ?? '')].length)));
  const cell = (s: string, i: number) => (right[i] ? s.padStart(width[i]) : s.padEnd(width[i]));
  const line = (r: string[]) => r.map(cell).join('  ').trimEnd();
  return [line(head), width.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function markdownTable(head: string[], rows: string[][], right: boolean[] = []): string {
  const esc = (s: string) => s.replaceAll('|', '\\|');
  return [
    `| ${head.map(esc).join(' | ')} |`,
    `| ${head.map((_, i) => (right[i] ? '---:' : '---')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

export const GOAL_HEAD = ['target', 'goal', 'measured', ''];

export function resultsText(targets: TargetSummary[], goals: GoalResult[]): string {
  return `${textTable(HEAD, targetRows(targets), RIGHT)}\n\n${textTable(GOAL_HEAD, goalRows(goals))}`;
}

export function resultsMarkdown(targets: TargetSummary[]): string {
  return markdownTable(HEAD, targetRows(targets), RIGHT);
}

export function goalsMarkdown(goals: GoalResult[]): string {
  return markdownTable(GOAL_HEAD, goalRows(goals));
}
