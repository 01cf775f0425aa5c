/**
 * deploy/prometheus/alerts.yml: `promtool check rules` is clean, and its unit
 * tests (alerts.test.yml, `promtool test rules`) pass — each alert shown
 * firing and not firing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { promtool, repoRoot } from '@flexilib/test-support';

const dir = path.join(repoRoot, 'deploy', 'prometheus');
const ALERTS = ['FlexilibDown', 'WorkerCrashLoop', 'LibraryQuarantined', 'UpstreamOriginDown', 'UpstreamPoolEmpty', 'HighErrorRate', 'HighLatency', 'PluginFaults', 'ReloadFailed'];

function run(args: string[]): string {
  const r = spawnSync(promtool(), args, { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  const out = `${r.stdout}${r.stderr}`;
  assert.equal(r.status, 0, `promtool ${args.join(' ')} failed:\n${out}`);
  return out;
}

test('promtool check rules: alerts.yml is clean and defines every alert', () => {
  const out = run(['check', 'rules', 'alerts.yml']);
  assert.match(out, /SUCCESS: \d+ rules found/);
  const rules = readFileSync(path.join(dir, 'alerts.yml'), 'utf8');
  for (const name of ALERTS) assert.match(rules, new RegExp(`^\\s+- alert: ${name}$`, 'm'), `${name} is defined`);
});

test('promtool test rules: every alert has a firing and a not-firing case, and all pass', () => {
  const tests = readFileSync(path.join(dir, 'alerts.test.yml'), 'utf8');
  for (const name of ALERTS) {
    assert.match(tests, new RegExp(`alertname: ${name}\\n\\s+exp_alerts:\\n\\s+- exp_labels`), `${name} is tested firing`);
    assert.match(tests, new RegExp(`alertname: ${name}\\n\\s+exp_alerts: \\[\\]`), `${name} is tested not firing`);
  }
  const out = run(['test', 'rules', 'alerts.test.yml']);
  assert.match(out, /SUCCESS/);
});
