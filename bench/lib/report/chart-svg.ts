/**
 * The chart, as SVG written by hand (no plotting dependency): requests/s per
 * target on the left (with its ratio to its own baseline), p99 latency per
 * target on the right (paced run solid, saturated run pale), with the issue's
 * goals drawn as dashed lines. The latency axis stops at P99_AXIS_MAX_MS:
 * saturated runs at 1,000 connections wait tens of milliseconds, which would
 * flatten every other bar; longer bars are cut there, their value written.
 */
import { MAIN_BASELINE } from '../scenario.ts';
import type { Results, TargetSummary } from '../summary.ts';

export const P99_AXIS_MAX_MS = 10;

const COLOR = { baseline: '#6b7280', subject: '#2563eb', ceiling: '#059669' } as const;

const esc = (s: string) => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
const num = (x: number, d = 0) => x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });

/** A round step giving about `n` grid lines up to `max`. */
export function niceStep(max: number, n = 5): number {
  if (!(max > 0)) return 1;
  const raw = max / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
}

interface Panel {
  x: number;
  w: number;
  max: number;
  step: number;
}

function grid(p: Panel, top: number, bottom: number, label: (v: number) => string): string {
  let out = '';
  for (let v = 0; v <= p.max + 1e-9; v += p.step) {
    const x = p.x + (v / p.max) * p.w;
    out += `<line x1="${x.toFixed(1)}" y1="${top}" x2="${x.toFixed(1)}" y2="${bottom}" stroke="#e5e7eb"/>`;
    out += `<text x="${x.toFixed(1)}" y="${bottom + 14}" text-anchor="middle" fill="#6b7280">${esc(label(v))}</text>`;
  }
  return out;
}

function goalLine(p: Panel, value: number, top: number, bottom: number, text: string): string {
  if (!(value > 0) || value > p.max) return '';
  const x = (p.x + (value / p.max) * p.w).toFixed(1);
  return `<line x1="${x}" y1="${top - 4}" x2="${x}" y2="${bottom}" stroke="#dc2626" stroke-dasharray="4 3"/>` +
    `<text x="${x}" y="${top - 8}" text-anchor="middle" fill="#dc2626">${esc(text)}</text>`;
}

/** A latency bar's value: after the bar, or inside its end (with "›") when the axis cut it. */
function barValue(p: Panel, v: number, w: number, y: number, color: string): string {
  if (v <= p.max) return `<text x="${(p.x + w + 4).toFixed(1)}" y="${y}" font-size="11" fill="${color}">${v.toFixed(2)}</text>`;
  return `<text x="${(p.x + p.w - 4).toFixed(1)}" y="${y}" font-size="11" text-anchor="end" fill="#111827" font-weight="600">${v.toFixed(1)} ›</text>`;
}

export function chartSvg(results: Results): string {
  const targets = results.targets;
  const rowH = 34;
  const top = 92;
  const labelW = 230;
  const bottom = top + targets.length * rowH;
  const width = 1000;
  const height = bottom + 62;
  const ran = targets.filter((t) => !t.skipped);
  const base = targets.find((t) => t.id === MAIN_BASELINE);

  const maxRps = Math.max(1, ...ran.map((t) => t.rps));
  const s1 = niceStep(maxRps * 1.05);
  const p1: Panel = { x: labelW + 10, w: 330, max: Math.ceil((maxRps * 1.05) / s1) * s1, step: s1 };
  const maxP99 = Math.max(2.2, ...ran.map((t) => Math.max(t.paced.p99, t.saturated.p99)));
  const p99Top = maxP99 * 1.05 >= P99_AXIS_MAX_MS ? P99_AXIS_MAX_MS : maxP99 * 1.05;
  const s2 = niceStep(p99Top);
  const p2: Panel = { x: p1.x + p1.w + 120, w: 300, max: Math.ceil(p99Top / s2) * s2, step: s2 };

  const m = results.machine;
  const subtitle = `${results.mode} run, ${results.plan.rounds} round(s), medians · ${m.cpus} × ${m.cpuModel} · node ${m.node} · wrk ${results.plan.throughput.connections} connections · load average ${m.loadAvg.start} at start · ${results.generatedAt.slice(0, 10)} · ${m.commit}`;

  let body = '';
  body += `<text x="16" y="26" font-size="17" font-weight="600" fill="#111827">flexilib benchmark: ${esc(results.plan.workers + ' workers')}, loopback</text>`;
  body += `<text x="16" y="46" fill="#4b5563">${esc(subtitle)}</text>`;
  body += `<text x="${p1.x}" y="${top - 26}" font-weight="600" fill="#111827">requests/s (× its baseline), keep-alive</text>`;
  body += `<text x="${p2.x}" y="${top - 26}" font-weight="600" fill="#111827">p99 latency, ms</text>`;
  body += grid(p1, top, bottom, (v) => (v >= 1000 ? `${num(v / 1000, v % 1000 ? 1 : 0)}k` : num(v)));
  body += grid(p2, top, bottom, (v) => num(v, Number.isInteger(p2.step) ? 0 : 1));

  targets.forEach((t: TargetSummary, i) => {
    const y = top + i * rowH;
    const cy = y + rowH / 2;
    body += `<text x="${labelW}" y="${cy + 4}" text-anchor="end" fill="#111827">${esc(t.id)}</text>`;
    if (t.skipped) {
      body += `<text x="${p1.x + 6}" y="${cy + 4}" fill="#9ca3af" font-style="italic">skipped: ${esc(t.skipped)}</text>`;
      return;
    }
    const c = COLOR[t.role];
    const w1 = (t.rps / p1.max) * p1.w;
    body += `<rect x="${p1.x}" y="${y + 7}" width="${w1.toFixed(1)}" height="${rowH - 14}" fill="${c}" rx="2"/>`;
    const ratio = t.ratio === null ? '' : ` (${t.ratio.toFixed(2)}×)`;
    body += `<text x="${(p1.x + w1 + 5).toFixed(1)}" y="${cy + 4}" fill="#111827">${esc(num(t.rps) + ratio)}</text>`;
    const cut = (v: number) => (Math.min(v, p2.max) / p2.max) * p2.w;
    const wPaced = cut(t.paced.p99);
    const wSat = cut(t.saturated.p99);
    body += `<rect x="${p2.x}" y="${y + 5}" width="${wPaced.toFixed(1)}" height="11" fill="${c}" rx="2"/>`;
    body += `<rect x="${p2.x}" y="${y + 18}" width="${wSat.toFixed(1)}" height="11" fill="${c}" fill-opacity="0.35" rx="2"/>`;
    body += barValue(p2, t.paced.p99, wPaced, y + 14, '#111827');
    body += barValue(p2, t.saturated.p99, wSat, y + 27, '#6b7280');
  });

  if (base && base.rps > 0) body += goalLine(p1, base.rps, top, bottom, `goal: ${MAIN_BASELINE}`);
  body += goalLine(p2, 2, top, bottom, 'goal 2 ms');

  const ly = bottom + 36;
  body += `<rect x="${p2.x}" y="${ly - 9}" width="14" height="10" fill="#374151"/><text x="${p2.x + 19}" y="${ly}" fill="#374151">paced ≈ ${num((results.plan.latency.connections * 1000) / Math.max(1, results.plan.latency.delayMs))} req/s offered</text>`;
  body += `<rect x="${p2.x}" y="${ly + 5}" width="14" height="10" fill="#374151" fill-opacity="0.35"/><text x="${p2.x + 19}" y="${ly + 14}" fill="#374151">saturated (throughput run)</text>`;
  let lx = p1.x;
  for (const [role, c] of Object.entries(COLOR)) {
    body += `<rect x="${lx}" y="${ly - 9}" width="14" height="10" fill="${c}"/><text x="${lx + 19}" y="${ly}" fill="#374151">${role}</text>`;
    lx += 90;
  }

  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#ffffff"/>
${body}
</svg>
`;
}
