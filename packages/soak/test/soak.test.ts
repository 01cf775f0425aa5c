/**
 * The fault suite, short: 30 s of mixed load while the faults run in turn,
 * then every goal of `pnpm soak` (docs/operations.md, "Fault suite").
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FAULT_KINDS } from '../src/faults.js';
import { formatReport, runSoak } from '../src/soak.js';

// Fault kinds and goals whose defects other branches of issue 15 fix; switch them
// on (empty these lists) once those are merged: reload-slow-kill = item 2 (a spare
// loading a half-written library), crash-storm and stray = item 10 (refused
// connections while every worker is dead; the supervisor's zombie `sh` child).
const PENDING_FAULTS: string[] = ['reload-slow-kill', 'crash-storm'];
const PENDING_GOALS: string[] = ['stray'];

test('30 s of faults under load: no failed request, exact counts, no growth', { timeout: 180_000 }, async (t) => {
  const faults = FAULT_KINDS.filter((k) => !PENDING_FAULTS.includes(k));
  const report = await runSoak({ seconds: 30, faults });
  const text = formatReport(report);
  for (const line of text.split('\n')) t.diagnostic(line);
  for (const route of Object.keys(report.routes)) assert.ok(report.routes[route].ok > 100, `${route} carried load\n${text}`);
  for (const g of report.goals) {
    if (PENDING_GOALS.includes(g.id)) continue;
    assert.ok(g.met, `goal not met: [${g.id}] ${g.goal}: ${g.detail}\n\n${text}`);
  }
});
