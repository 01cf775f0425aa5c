/**
 * Any config size: the route table reaches workers over IPC, not in their
 * environment (where ~700 routes failed to spawn with E2BIG, and a SIGHUP to
 * 1,000 routes took the supervisor down at the next worker death).
 *
 * 10,000 routes start and serve a route near the end; SIGHUP to another
 * 10,000-route config is accepted; workers killed afterwards are replaced and
 * serve the new routes.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { compilePlugin, fixture, request, startFlexilib, tempDir, waitForAnswers, writeConfig } from '@flexilib/test-support';

const ROUTES = 10_000;
const routes = (prefix: string) => Array.from({ length: ROUTES }, (_, i) => `/${prefix}${i} = libv.so`).join('\n') + '\n';

test('10,000 routes: start, serve, SIGHUP to 10,000 others, workers killed afterwards are replaced', { timeout: 90_000 }, async (t) => {
  const { dir, cleanup } = tempDir('big-config');
  t.after(cleanup);
  await compilePlugin(fixture('versioned.c'), path.join(dir, 'libv.so'), { defines: ['VERSION="big"', 'PAD=16'] });
  const config = writeConfig(dir, routes('a'));
  const f = await startFlexilib({ config, workers: 2, accessLog: false, timeoutMs: 60_000 });
  t.after(() => f.kill());

  const r = await request(f.port, `/a${ROUTES - 2}`);
  assert.equal(r.status, 200, r.body);
  assert.equal(r.body, 'big');

  let from = f.logs.length;
  writeFileSync(config, routes('b'));
  f.signal('SIGHUP');
  const reloaded = await f.waitForLog((l) => l.msg === 'config reloaded', { from, timeoutMs: 30_000 });
  assert.equal(reloaded.routes, ROUTES);
  assert.equal(reloaded.applied, 2, 'both workers took the new config');
  await waitForAnswers(f.port, `/b${ROUTES - 1}`, (x) => x.status === 200 && x.body === 'big');

  // Every serving worker dies: the replacements start with the 10,000-route config.
  const victims = f.workerPids();
  assert.equal(victims.length, 2);
  from = f.logs.length;
  for (const pid of victims) process.kill(pid, 'SIGKILL');
  for (const pid of victims) {
    await f.waitForLog((l) => l.msg === 'worker listening' && (l.replaces as { pid: number } | undefined)?.pid === pid, { from, timeoutMs: 30_000, what: `the replacement of worker ${pid}` });
  }
  await waitForAnswers(f.port, `/b${ROUTES - 1}`, (x) => x.status === 200 && x.body === 'big');
  assert.ok(f.running, 'the supervisor is alive');
  assert.equal(f.logs.filter((l) => l.code === 'FLX_WORKER_FORK').length, 0, 'no fork failed');
  assert.doesNotMatch(f.stderr(), /E2BIG/);
});
