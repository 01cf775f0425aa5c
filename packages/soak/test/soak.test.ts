/**
 * The fault suite, short: 30 s of mixed load while the faults run in turn,
 * then every goal of `pnpm soak` (docs/operations.md, "Fault suite").
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FAULT_KINDS } from '../src/faults.js';
import { formatReport, runSoak } from '../src/soak.js';

test('30 s of faults under load: no failed request, exact counts, no growth', { timeout: 180_000 }, async (t) => {
  // wholeRound: every kind runs once even when a busy machine slows the faults past 30 s.
  const report = await runSoak({ seconds: 30, faults: [...FAULT_KINDS], wholeRound: true });
  const text = formatReport(report);
  for (const line of text.split('\n')) t.diagnostic(line);
  for (const route of Object.keys(report.routes)) assert.ok(report.routes[route].ok > 100, `${route} carried load\n${text}`);
  for (const g of report.goals) {
    assert.ok(g.met, `goal not met: [${g.id}] ${g.goal}: ${g.detail}\n\n${text}`);
  }
});
