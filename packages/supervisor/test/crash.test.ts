/**
 * Crash recovery: a worker killed with SIGKILL under load is replaced while the
 * other keeps answering; deaths inside plugins (abort, a segfault on a pool
 * thread, a hang) are logged with their signal, route and library.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { compilePlugin, exampleSource, fixture, load, request, sleep, startFlexilib, tempDir, waitForAnswers } from '@flexilib/test-support';


test('kill -9 of a worker under load: replaced, the service answers throughout', { timeout: 40_000 }, async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  await compilePlugin(exampleSource, path.join(dir, 'example.so'));
  const config = path.join(dir, 'proxy.ini');
  writeFileSync(config, '/ = example.so\n');
  const server = await startFlexilib({ config, workers: 2, accessLog: false });
  t.after(() => server.kill());

  const concurrency = 8;
  const traffic = load(server.port, '/', { concurrency, maxMs: 20_000 });
  t.after(() => traffic.stop());
  await sleep(700);
  const [victim] = server.workerPids();
  const okBefore = traffic.result.ok;
  const from = server.logs.length;
  process.kill(victim, 'SIGKILL');

  const exit = await server.waitForLog((l) => l.code === 'FLX_WORKER_EXIT' && l.workerPid === victim, { from, timeoutMs: 5000 });
  assert.equal(exit.signal, 'SIGKILL');
  assert.equal(exit.reason, 'killed');
  assert.equal(exit.restartInMs, 0, 'first death: replaced at once');
  const replaced = await server.waitForLog((l) => l.msg === 'worker listening' && l.workerPid !== victim && typeof l.sinceDeathMs === 'number', { from, timeoutMs: 10_000 });
  await sleep(700);
  const res = await traffic.stop();

  assert.ok(res.ok - okBefore > 100, `answers after the kill: ${res.ok - okBefore}`);
  // Only requests in flight on the dead worker may fail: at most one per connection.
  assert.ok(res.failed <= concurrency, `failed ${res.failed}: ${res.errors.join('; ')}`);
  assert.ok(res.maxGapMs < 2000, `longest stretch without an answer: ${res.maxGapMs} ms`);
  assert.ok([...res.statuses.keys()].length === 0, `no error statuses: ${[...res.statuses]}`);
  assert.equal(server.workerPids().length, 2);
  t.diagnostic(`failed ${res.failed} of ${res.ok + res.failed}; replacement listening ${replaced.sinceDeathMs} ms after the death`);
});

test('deaths inside plugins are attributed: abort, threaded segfault, hang', { timeout: 40_000 }, async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  await Promise.all([
    compilePlugin(exampleSource, path.join(dir, 'example.so')),
    compilePlugin(fixture('abort.c'), path.join(dir, 'libabort.so')),
    compilePlugin(fixture('segfault.c'), path.join(dir, 'libsegv.so')),
    compilePlugin(fixture('hang.c'), path.join(dir, 'libhang.so')),
  ]);
  const config = path.join(dir, 'proxy.ini');
  writeFileSync(
    config,
    ['/abort = libabort.so', '/tsegv = libsegv.so', '/hang = libhang.so', '/ = example.so', '', '[route /tsegv]', 'mode = threaded', 'threads = 2', ''].join('\n'),
  );
  // Quarantine off: this test is about attribution; --hang-timeout short; no spare, so
  // the replacements show the restart backoff.
  const server = await startFlexilib({ config, workers: 2, accessLog: false, args: ['--quarantine-crashes', '0', '--hang-timeout', '800', '--spare-workers', '0'] });
  t.after(() => server.kill());

  const cases = [
    { target: '/abort', signal: 'SIGABRT', reason: 'crash', library: 'libabort.so', mode: 'inline' },
    { target: '/tsegv', signal: 'SIGSEGV', reason: 'crash', library: 'libsegv.so', mode: 'threaded' },
    { target: '/hang', signal: 'SIGKILL', reason: 'hang', library: 'libhang.so', mode: 'inline' },
  ];
  for (const c of cases) {
    const from = server.logs.length;
    await assert.rejects(request(server.port, c.target, { timeoutMs: 8000 }), `${c.target} kills its worker: the request fails`);
    const exit = await server.waitForLog((l) => l.code === 'FLX_WORKER_EXIT', { from, timeoutMs: 5000 });
    assert.equal(exit.signal, c.signal, c.target);
    assert.equal(exit.reason, c.reason, c.target);
    assert.equal(exit.route, c.target);
    assert.equal(exit.library, path.join(dir, c.library));
    assert.deepEqual(exit.inCall, [{ mode: c.mode, route: c.target, library: path.join(dir, c.library) }]);
    assert.match(String(exit.msg), new RegExp(`while calling route "${c.target}"`));
    if (c.reason === 'hang') await server.waitForLog((l) => l.code === 'FLX_WORKER_HANG', { from, timeoutMs: 1000 });
    // The service is whole again: both workers listen and / answers.
    await server.waitForLog((l) => l.msg === 'worker listening', { from, timeoutMs: 10_000 });
    await waitForAnswers(server.port, '/', (r) => r.status === 200, { n: 4 });
    await sleep(50);
  }
  // The backoff grew with the streak of deaths (0, then 100 ms, then 200 ms).
  const delays = server.logs.filter((l) => l.code === 'FLX_WORKER_EXIT').map((l) => l.restartInMs);
  assert.deepEqual(delays, [0, 100, 200]);
});
