/**
 * docs/performance.md is generated: bench/performance.template.md holds the
 * prose, {{name}} placeholders take the latest figures. Edit the template, not
 * the doc; `pnpm bench` rewrites it.
 */
import { shapesFor } from '../plan.ts';
import { MAIN_BASELINE } from '../scenario.ts';
import type { Results } from '../summary.ts';
import { WORKLOADS } from '../workload.ts';
import { goalsMarkdown, markdownTable, resultsMarkdown } from './table.ts';

function machineList(r: Results): string {
  const m = r.machine;
  return [
    `- CPU: ${m.cpus} × ${m.cpuModel}; memory ${m.memoryGiB} GiB; ${m.kernel}`,
    `- Node.js ${m.node}; wrk ${m.wrk}; nginx ${m.nginx ?? 'not installed'}`,
    `- code: commit ${m.commit}`,
    `- 1-minute load average: ${m.loadAvg.start} when the run started (other work: it should be well under ${m.cpus / 2}), ${m.loadAvg.end ?? '?'} at the end (the bench's own load included)`,
  ].join('\n');
}

/** The targets measured with plain wrk too. */
function plainIds(r: Results): string {
  const ids = r.targets.filter((t) => t.plainRps !== null).map((t) => t.id);
  return ids.length ? ids.join(', ') : 'no target';
}

function planList(r: Results): string {
  const p = r.plan;
  const offered = Math.round((p.latency.connections * 1000) / Math.max(1, p.latency.delayMs));
  return [
    `- ${p.rounds} round(s); in each, every target in fresh processes, ${p.workers} workers each; order alternating between rounds`,
    `- per run: ${p.warmupSeconds} s warm-up (discarded), ${p.throughput.seconds} s throughput (wrk -t${p.throughput.threads} -c${p.throughput.connections}), ${p.latency.seconds} s latency (wrk -t${p.latency.threads} -c${p.latency.connections}, ${p.latency.delayMs} ms pause per connection: at most ≈ ${offered.toLocaleString('en-US')} req/s offered)`,
    `- ${plainIds(r)}: a second ${p.throughput.seconds} s throughput run with wrk and no Lua script (\`wrk -t${p.throughput.threads} -c${p.throughput.connections} --latency\`, the plain wrk column)`,
    `- the -c1000 targets: ${p.throughput.seconds} s throughput at 1,000 connections, ${p.latency.seconds} s latency at 1,000 connections pausing ${shapesFor(p, 1000).latency.delayMs} ms each, first pauses staggered (the same ≈ ${offered.toLocaleString('en-US')} req/s offered)`,
    `- wrk ${p.wrkCpus ? `pinned to CPU ${p.wrkCpus} (taskset)` : 'not pinned: wrk and the servers share all CPUs'}`,
    `- the whole run took ${Math.round(r.elapsedSeconds)} s`,
  ].join('\n');
}

function configs(r: Results): string {
  return r.targets
    .filter((t) => t.config)
    .map((t) => {
      const load = `${WORKLOADS[t.workload].text}, ${t.connections.toLocaleString('en-US')} connections; ${t.role === 'baseline' ? 'a baseline' : `against ${t.baseline}`}`;
      return `- **${t.id}** — ${t.title} (${load}):\n\n  \`\`\`\n${t.config!.split('\n').map((l) => `  ${l}`).join('\n')}\n  \`\`\``;
    })
    .join('\n');
}

function notes(r: Results): string {
  const n = r.targets.flatMap((t) => [t.skipped ? `- ${t.id} skipped: ${t.skipped}` : '', t.note ? `- ${t.id}: ${t.note}` : '']).filter(Boolean);
  if (r.mode === 'quick') n.unshift('- a quick run (one short round): a smoke test of the harness, not figures to quote');
  // The load at the start is other work; by the end the bench's own load (wrk, workers) is in it.
  const load = r.machine.loadAvg.start;
  if (load > r.machine.cpus / 2) {
    n.unshift(`- **the machine was busy** (load average ${load} on ${r.machine.cpus} CPUs when the run started): figures are noisy; rerun \`pnpm bench\` on a quiet machine before quoting them`);
  }
  return n.length ? n.join('\n') : '- none';
}

function nativeSteps(r: Results): string {
  const n = r.nativeSteps;
  if (!n) return '(not measured: flexilib was not built)';
  const base = r.targets.find((t) => t.id === MAIN_BASELINE)?.cpuUsPerRequest ?? null;
  const rows = n.steps.map((s) => {
    const share = base ? `${((s.ns / 10 / base)).toFixed(1)} %` : '–';
    return [s.step.trim().startsWith('of which') ? `&nbsp;&nbsp;${s.step.trim()}` : s.step, String(s.ns), share];
  });
  const note = base
    ? `Share: of the baseline worker's CPU time per request in this run (${base} µs).`
    : 'Share: not available (the baseline did not run).';
  return `${markdownTable(['step (CPU time per call)', 'ns', 'share'], rows, [false, true, true])}\n\n${note} Least of ${n.repeats} × ${n.calls.toLocaleString('en-US')} calls each.`;
}

export function renderDoc(template: string, r: Results): string {
  const values: Record<string, string> = {
    command: r.command,
    mode: r.mode,
    date: r.generatedAt,
    machine: machineList(r),
    plan: planList(r),
    results: resultsMarkdown(r.targets),
    goals: goalsMarkdown(r.goals),
    notes: notes(r),
    configs: configs(r),
    native_steps: nativeSteps(r),
  };
  return template.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
    const v = values[name];
    if (v === undefined) throw new Error(`performance template: unknown placeholder {{${name}}}`);
    return v;
  });
}
