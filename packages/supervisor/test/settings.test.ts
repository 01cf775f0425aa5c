/** The supervision flags and their environment variables: defaults, overrides, bad values (exit 2). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { resolveSettings } from '../src/settings.js';
import { repoRoot } from '@flexilib/test-support';

test('defaults', () => {
  assert.deepEqual(resolveSettings([], {}).supervision, {
    spareWorkers: 1,
    drainTimeoutMs: 10_000,
    quarantineCrashes: 3,
    quarantineWindowS: 60,
    hangTimeoutMs: 30_000,
    reloadDebounceMs: 150,
    watch: true,
  });
});

test('flags override environment variables', () => {
  const env = { DRAIN_TIMEOUT_MS: '5000', QUARANTINE_CRASHES: '5', QUARANTINE_WINDOW_S: '10', HANG_TIMEOUT_MS: '0', RELOAD_DEBOUNCE_MS: '50', WATCH_LIBRARIES: '0', SPARE_WORKERS: '0' };
  assert.deepEqual(resolveSettings([], env).supervision, { spareWorkers: 0, drainTimeoutMs: 5000, quarantineCrashes: 5, quarantineWindowS: 10, hangTimeoutMs: 0, reloadDebounceMs: 50, watch: false });
  const s = resolveSettings(['--drain-timeout', '100', '--quarantine-crashes', '0', '--quarantine-window', '1', '--hang-timeout', '2000', '--reload-debounce', '0', '--spare-workers', '1'], env).supervision;
  assert.deepEqual(s, { spareWorkers: 1, drainTimeoutMs: 100, quarantineCrashes: 0, quarantineWindowS: 1, hangTimeoutMs: 2000, reloadDebounceMs: 0, watch: false });
  assert.equal(resolveSettings(['--no-watch'], {}).supervision.watch, false);
});

test('bad values name the flag or variable and exit 2', () => {
  for (const [args, env, what] of [
    [['--drain-timeout', 'soon'], {}, /--drain-timeout: "soon" is not an integer/],
    [['--quarantine-window', '0'], {}, /--quarantine-window: "0" is not an integer from 1 to 86400/],
    [[], { QUARANTINE_CRASHES: '-1' }, /QUARANTINE_CRASHES: "-1"/],
    [[], { WATCH_LIBRARIES: 'maybe' }, /WATCH_LIBRARIES: "maybe" is not one of 0, 1, true, false/],
    [['--spare-workers', '2'], {}, /--spare-workers: "2" is not an integer from 0 to 1/],
  ] as const) {
    assert.throws(() => resolveSettings([...args], { ...env }), (e: Error & { code?: string }) => e.code === 'FLX_USAGE' && what.test(e.message));
  }
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'packages/supervisor/bin/flexilib'), '--hang-timeout', 'x'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--hang-timeout: "x"/);
});

test('--help documents every supervision flag and the signals', () => {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'packages/supervisor/bin/flexilib'), '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  for (const flag of ['--spare-workers', '--drain-timeout', '--quarantine-crashes', '--quarantine-window', '--hang-timeout', '--reload-debounce', '--no-watch', 'SIGHUP', 'SIGTERM', 'NOTIFY']) {
    assert.ok(r.stdout.includes(flag), flag);
  }
});

test('--send-timeout (SEND_TIMEOUT_MS, default 60 s) and the threaded call timeout (--hang-timeout)', () => {
  const d = resolveSettings([], {}).worker;
  assert.equal(d.sendTimeoutMs, 60_000);
  assert.equal(d.callTimeoutMs, 30_000);
  assert.equal(resolveSettings([], { SEND_TIMEOUT_MS: '0' }).worker.sendTimeoutMs, 0);
  assert.equal(resolveSettings(['--send-timeout', '1500'], { SEND_TIMEOUT_MS: '0' }).worker.sendTimeoutMs, 1500);
  assert.equal(resolveSettings(['--hang-timeout', '2000'], {}).worker.callTimeoutMs, 2000);
  assert.throws(() => resolveSettings(['--send-timeout', 'later'], {}), (e: Error & { code?: string }) => e.code === 'FLX_USAGE' && /--send-timeout: "later" is not an integer/.test(e.message));
  assert.throws(() => resolveSettings([], { SEND_TIMEOUT_MS: '-5' }), (e: Error & { code?: string }) => e.code === 'FLX_USAGE' && /SEND_TIMEOUT_MS: "-5"/.test(e.message));
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'packages/supervisor/bin/flexilib'), '--help'], { encoding: 'utf8' });
  assert.match(r.stdout, /--send-timeout MS .*\n.*\[SEND_TIMEOUT_MS, default 60000; 0 = never\]/);
});
