/**
 * A library that fails to load is not tried again on every request: requests
 * answer the failure (502, route and library named) while the worker backs off,
 * and the error is logged once per attempt, not once per request. The next
 * change of the file is tried at once.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { compilePlugin, fixture, load, startFlexilib, tempDir, waitForAnswers } from '@flexilib/test-support';

test('a broken library under 400 requests: a bounded number of load attempts; fixed, the route serves', { timeout: 60_000 }, async (t) => {
  const { dir, cleanup } = tempDir('load-backoff');
  t.after(cleanup);
  const libs = path.join(dir, 'libs');
  mkdirSync(libs);
  const broken = path.join(dir, 'broken.so');
  const good = path.join(dir, 'good.so');
  await Promise.all([
    compilePlugin(fixture('versioned.c'), broken, { defines: ['VERSION="bad"', 'NO_HANDLER'] }),
    compilePlugin(fixture('versioned.c'), good, { defines: ['VERSION="good"'] }),
  ]);
  const lib = path.join(libs, 'libplugin.so');
  copyFileSync(broken, lib);
  const config = path.join(dir, 'proxy.ini');
  writeFileSync(config, '/p = libs/libplugin.so\n');
  const workers = 2;
  const server = await startFlexilib({ config, workers, accessLog: false });
  t.after(() => server.kill());

  const started = Date.now();
  const res = await load(server.port, '/p', { concurrency: 8, maxRequests: 400 }).done;
  const elapsedS = (Date.now() - started) / 1000;
  assert.equal(res.ok, 0);
  assert.equal(res.statuses.get(502), 400, `every request answered 502: ${[...res.statuses]}`);
  assert.match(res.errors[0], /route "\/p": library .*libplugin\.so does not export handle_request/);
  const attempts = server.logs.filter((l) => l.code === 'FLX_LIB_NO_HANDLER' && l.route === '/p');
  // Backoff 1 s, 2 s, 4 s ...: per worker at most 1 + log2(elapsed + 1) attempts in `elapsedS` seconds.
  const bound = workers * (1 + Math.ceil(Math.log2(elapsedS + 1)));
  assert.ok(attempts.length >= 1 && attempts.length <= bound, `${attempts.length} load attempts logged for 400 requests in ${elapsedS.toFixed(1)} s (at most ${bound})`);

  // Fixed: the change is tried at once, whatever is left of the backoff.
  copyFileSync(good, path.join(libs, '.tmp'));
  renameSync(path.join(libs, '.tmp'), lib);
  await waitForAnswers(server.port, '/p', (r) => r.status === 200 && r.body === 'good', { n: 20 });
});
