/**
 * Threaded calls that never return: past the route's `timeout` each client
 * gets a 504 naming the route and library, the route keeps answering, the
 * worker holding the stuck threads is replaced and exits once its other
 * requests are done, and a graceful stop waits for a stuck call no longer than
 * its timeout (not the whole --drain-timeout).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { compilePlugin, eventually, exampleSource, fixture, request, scrape, startFlexilib, tempDir, waitForAnswers, writeConfig } from '@flexilib/test-support';

test('12 threaded calls stuck forever: 504 each, the route keeps answering, workers replaced, SIGTERM does not wait the drain', { timeout: 60_000 }, async (t) => {
  const { dir, cleanup } = tempDir('threaded-timeout');
  t.after(cleanup);
  await Promise.all([compilePlugin(fixture('stuck.c'), path.join(dir, 'stuck.so')), compilePlugin(exampleSource, path.join(dir, 'example.so'))]);
  const config = writeConfig(dir, '/stuck = stuck.so\n/ = example.so\n\n[route /stuck]\nmode = threaded\ntimeout = 1s\n');
  // A drain deadline far beyond the test's: a stop that waited for the stuck calls would time the test out.
  const server = await startFlexilib({ config, workers: 2, accessLog: false, args: ['--drain-timeout', '600000'] });
  t.after(() => server.kill());

  const stuck = () => request(server.port, '/stuck', { headers: { 'x-stuck': '1' }, timeoutMs: 20_000 });
  const replies = await Promise.all(Array.from({ length: 12 }, stuck));
  for (const r of replies) {
    assert.equal(r.status, 504);
    assert.match(r.body, /^route "\/stuck": library .*stuck\.so did not answer within 1000 ms/);
    assert.equal(r.headers['x-flexilib-error'], 'FLX_PLUGIN_TIMEOUT');
  }
  // The route and the others keep answering.
  await waitForAnswers(server.port, '/stuck', (r) => r.status === 200 && r.body === 'awake', { n: 10 });
  assert.equal((await request(server.port, '/')).status, 200);

  // Each worker that held a stuck thread asked to be replaced, and exited once drained.
  const retired = server.logs.filter((l) => l.event === 'worker-retire').map((l) => l.workerPid);
  assert.ok(retired.length >= 1, 'a worker with stuck calls was replaced');
  for (const pid of retired) {
    const exit = await server.waitForLog((l) => l.event === 'worker-exit' && l.workerPid === pid, { timeoutMs: 20_000 });
    assert.equal(exit.reason, 'retired', `worker ${pid} exited as retired, not as a crash`);
  }
  assert.equal(server.logs.filter((l) => l.code === 'FLX_WORKER_EXIT').length, 0, 'no worker died unexpectedly');
  await waitForAnswers(server.port, '/stuck', (r) => r.status === 200 && r.body === 'awake', { n: 10 });

  // Stuck again, and a graceful stop before the calls time out: the stop waits for their
  // timeout (their clients get 504), not for the drain deadline.
  const again = Array.from({ length: 4 }, stuck);
  await eventually('4 stuck calls in flight', async () => ((await scrape(server.adminPort)).sum('flexilib_requests_in_flight') >= 4 ? true : undefined));
  server.signal('SIGTERM');
  for (const r of await Promise.all(again)) assert.equal(r.status, 504);
  const exit = await server.exited;
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.equal(server.logs.filter((l) => l.code === 'FLX_DRAIN_TIMEOUT').length, 0, 'the stop did not wait for the drain deadline');
  assert.ok(server.logs.some((l) => /plugin call\(s\) never returned: ending with SIGKILL/.test(String(l.msg))), 'a drained worker with stuck threads ended itself');
});
