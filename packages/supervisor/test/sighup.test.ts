/**
 * SIGHUP: a valid config switches every worker with no request lost and the
 * library watch list follows it; a broken config is refused with every problem
 * logged with its line, and the old config keeps serving.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { compilePlugin, fixture, load, request, sleep, startFlexilib, tempDir, waitForAnswers } from '@flexilib/test-support';

test('SIGHUP with a valid config, then a broken one, under load', { timeout: 40_000 }, async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  mkdirSync(path.join(dir, 'a'));
  mkdirSync(path.join(dir, 'b'));
  await Promise.all([
    compilePlugin(fixture('versioned.c'), path.join(dir, 'a', 'liba.so'), { defines: ['VERSION="a"'] }),
    compilePlugin(fixture('versioned.c'), path.join(dir, 'b', 'libb.so'), { defines: ['VERSION="b1"'] }),
    compilePlugin(fixture('versioned.c'), path.join(dir, 'b2.so'), { defines: ['VERSION="b2"'] }),
  ]);
  const config = path.join(dir, 'proxy.ini');
  writeFileSync(config, '/a = a/liba.so\n');
  const server = await startFlexilib({ config, workers: 2, accessLog: false });
  t.after(() => server.kill());
  assert.equal((await request(server.port, '/b')).status, 404);

  const traffic = load(server.port, '/a', { concurrency: 6, maxMs: 30_000 });
  t.after(() => traffic.stop());
  await sleep(300);

  // Valid: a route to a library in another folder.
  let from = server.logs.length;
  writeFileSync(config, '/a = a/liba.so\n/b = b/libb.so\n');
  server.signal('SIGHUP');
  const reloaded = await server.waitForLog((l) => l.msg === 'config reloaded', { from, timeoutMs: 5000 });
  assert.equal(reloaded.generation, 1);
  assert.equal(reloaded.applied, 2);
  await waitForAnswers(server.port, '/b', (r) => r.status === 200 && r.body === 'b1');

  // The watch list followed: a new build of libb.so is picked up.
  copyFileSync(path.join(dir, 'b2.so'), path.join(dir, 'b', '.tmp'));
  renameSync(path.join(dir, 'b', '.tmp'), path.join(dir, 'b', 'libb.so'));
  await waitForAnswers(server.port, '/b', (r) => r.body === 'b2');

  // Broken: two bad lines; both reported with their line, nothing changes.
  from = server.logs.length;
  writeFileSync(config, '/a = a/liba.so\nthis line has no equals sign\n/c = c.so\n/c = again.so\n');
  server.signal('SIGHUP');
  const refused = await server.waitForLog((l) => /config reload refused/.test(String(l.msg)), { from, timeoutMs: 5000 });
  assert.equal(refused.code, 'FLX_CONFIG_INVALID');
  assert.equal(refused.problems, 2);
  const problems = server.logs.slice(from).filter((l) => l.code === 'FLX_CONFIG_INVALID' && typeof l.line === 'number');
  assert.deepEqual(problems.map((l) => l.line), [2, 4]);
  assert.match(String(problems[0].msg), /proxy\.ini:2: malformed line "this line has no equals sign"/);
  assert.match(String(problems[1].msg), /proxy\.ini:4: duplicate route "\/c"/);
  // Still the old config: /b served, /c unknown.
  assert.equal((await request(server.port, '/b')).body, 'b2');
  assert.equal((await request(server.port, '/c')).status, 404);

  // An unreadable config is refused too.
  from = server.logs.length;
  renameSync(config, `${config}.moved`);
  server.signal('SIGHUP');
  const unreadable = await server.waitForLog((l) => /config reload refused/.test(String(l.msg)), { from, timeoutMs: 5000 });
  assert.equal(unreadable.code, 'FLX_CONFIG_READ');
  renameSync(`${config}.moved`, config);

  // A later valid SIGHUP still works (generation 2; the refused ones did not count).
  from = server.logs.length;
  writeFileSync(config, '/a = a/liba.so\n');
  server.signal('SIGHUP');
  assert.equal((await server.waitForLog((l) => l.msg === 'config reloaded', { from, timeoutMs: 5000 })).generation, 2);
  await waitForAnswers(server.port, '/b', (r) => r.status === 404);

  const res = await traffic.stop();
  assert.equal(res.failed, 0, `failed: ${res.errors.join('; ')}`);
  assert.ok(res.ok > 100, `answers: ${res.ok}`);
  assert.equal(server.logs.filter((l) => l.code === 'FLX_WORKER_EXIT').length, 0);
});
