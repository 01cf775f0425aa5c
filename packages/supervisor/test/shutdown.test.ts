/**
 * SIGTERM/SIGINT: requests in flight finish, new connections are refused, the
 * process exits 0; past --drain-timeout the workers are killed (exit 1); a
 * second signal stops at once.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { compilePlugin, exampleSource, type Reply, request, sleep, startFlexilib, tempDir } from '@flexilib/test-support';


async function setup(t: { after: (fn: () => unknown) => void }) {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  await compilePlugin(exampleSource, path.join(dir, 'example.so'));
  const config = path.join(dir, 'proxy.ini');
  // /t runs on the thread pool (the worker's event loop stays free during the call); / runs inline.
  writeFileSync(config, '/t = example.so\n/ = example.so\n\n[route /t]\nmode = threaded\n');
  return config;
}

for (const [signal, target] of [
  ['SIGTERM', '/t'],
  ['SIGINT', '/'],
] as const) {
  test(`${signal} with a slow request in flight on ${target === '/t' ? 'a threaded' : 'an inline'} route: it completes, exit 0`, { timeout: 30_000 }, async (t) => {
    const config = await setup(t);
    const server = await startFlexilib({ config, workers: 2, accessLog: false });
    t.after(() => server.kill());
    // A keep-alive connection that is idle at the signal must not hold the stop up.
    const agent = new http.Agent({ keepAlive: true });
    t.after(() => agent.destroy());
    assert.equal((await request(server.port, '/', { agent })).status, 200);

    const slow = request(server.port, target, { headers: { 'x-slow': '1500' }, timeoutMs: 10_000 });
    await sleep(400);
    const sentAt = Date.now();
    server.signal(signal);
    if (target === '/t') {
      // Every worker's event loop is free: all stop listening at once, new connections are refused.
      await server.waitForLog((l) => l.msg === 'worker draining: finishing requests in flight', { timeoutMs: 3000 });
      await sleep(300);
      await assert.rejects(request(server.port, '/', { timeoutMs: 2000 }), /ECONNREFUSED/);
    }
    const reply: Reply = await slow;
    assert.equal(reply.status, 200);
    assert.equal(reply.body, 'i am slow');
    assert.equal(reply.headers.connection, 'close', 'the connection closes after the last response');
    const exit = await server.exited;
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(Date.now() - sentAt < 5000, 'it did not wait for the idle keep-alive connection to time out');
    const stopping = server.logs.find((l) => l.msg === 'stopping: letting requests in flight finish');
    assert.equal(stopping?.signal, signal);
    assert.equal(server.logs.find((l) => l.msg === 'stopped')?.code, 0);
    await assert.rejects(request(server.port, '/', { timeoutMs: 2000 }), /ECONNREFUSED/);
  });
}

test('past --drain-timeout the workers are killed: exit 1', { timeout: 30_000 }, async (t) => {
  const config = await setup(t);
  const server = await startFlexilib({ config, workers: 1, accessLog: false, args: ['--drain-timeout', '500'] });
  t.after(() => server.kill());
  const slow = request(server.port, '/t', { headers: { 'x-slow': '8000' }, timeoutMs: 10_000 }).catch((e: Error) => e);
  await sleep(300);
  const sentAt = Date.now();
  server.signal('SIGTERM');
  const exit = await server.exited;
  assert.equal(exit.code, 1);
  assert.ok(Date.now() - sentAt < 3000, `stopped at the deadline (${Date.now() - sentAt} ms)`);
  assert.ok((await slow) instanceof Error, 'the request past the deadline is cut');
  assert.ok(server.logs.some((l) => l.code === 'FLX_DRAIN_TIMEOUT'));
});

test('a second signal stops at once', { timeout: 30_000 }, async (t) => {
  const config = await setup(t);
  const server = await startFlexilib({ config, workers: 2, accessLog: false, args: ['--drain-timeout', '20000'] });
  t.after(() => server.kill());
  const slow = request(server.port, '/', { headers: { 'x-slow': '8000' }, timeoutMs: 10_000 }).catch((e: Error) => e);
  await sleep(300);
  server.signal('SIGTERM');
  await server.waitForLog((l) => l.msg === 'stopping: letting requests in flight finish', { timeoutMs: 3000 });
  const sentAt = Date.now();
  server.signal('SIGTERM');
  const exit = await server.exited;
  assert.equal(exit.code, 1);
  assert.ok(Date.now() - sentAt < 2000, `exited ${Date.now() - sentAt} ms after the second signal`);
  assert.ok(server.logs.some((l) => l.msg === 'second signal: stopping at once'));
  assert.ok((await slow) instanceof Error);
});
