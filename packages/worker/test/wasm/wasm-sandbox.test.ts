/**
 * The sandbox holds and the worker keeps serving: a module in an infinite
 * loop answers 504 at its time limit while other routes keep answering; a
 * trap answers 500 with the trap's reason; a memory blow-up answers 500 naming
 * the cap; proc_exit, a response pointing outside memory, no filesystem; and
 * after each, the module serves again from a fresh instance.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rawRequest } from '@flexilib/test-support';
import { H, assertFailuresAnswered, assertFailuresLogged, misbehavingServer } from './wasm-fixtures.js';

test('misbehaving modules are contained and the worker keeps serving', { timeout: 120_000 }, async (t) => {
  // On instance threads: what is checked here is that nothing waits for a thread
  // (wasm-loop.test.ts has the event loop's own checks).
  const server = await misbehavingServer(t, 'thread');
  const port = server.port;

  // Warm the other routes, then start the loop and keep the other routes busy until it is answered.
  for (const target of ['/example', '/ok', '/native']) assert.equal((await rawRequest(port, { target, headers: H })).status, 200);
  const loop = rawRequest(port, { target: '/loop', headers: H });
  let answered = false;
  void loop.then(() => (answered = true));
  let rounds = 0;
  while (!answered) {
    const [a, b, c] = await Promise.all([
      rawRequest(port, { target: '/native', headers: H }),
      rawRequest(port, { target: '/example', headers: H }),
      rawRequest(port, { target: '/ok', headers: H }),
    ]);
    assert.deepEqual([a.status, b.status, c.status], [200, 200, 200]);
    assert.equal(c.body.toString(), 'ok', 'the same module keeps serving from another instance');
    if (!answered) rounds++;
  }
  const looped = await loop;
  assert.equal(looped.status, 504);
  assert.match(looped.body.toString(), /route "\/loop": WASM module .*misbehave\.wasm did not answer within 1500 ms; its instance was stopped/);
  assert.ok(looped.ms >= 1400, `answered at the limit, not before (${looped.ms} ms)`);
  assert.ok(rounds >= 1, 'other routes (native, another module, the same module) answered while the loop ran');
  // The route works again after its instance was stopped.
  assert.equal((await rawRequest(port, { target: '/loop?again', headers: H })).status, 504, 'a second loop is stopped too');

  await assertFailuresAnswered(port);

  const files = await rawRequest(port, { target: '/files', headers: H });
  assert.equal(files.body.toString(), 'denied', 'no filesystem: fopen fails inside the sandbox');

  // random_get reads the kernel's random bytes (wasi-shim.ts): 32 of them, different each call.
  const r1 = (await rawRequest(port, { target: '/random', headers: H })).body.toString();
  const r2 = (await rawRequest(port, { target: '/random', headers: H })).body.toString();
  assert.match(r1, /^[0-9a-f]{64}$/, 'getentropy answered 32 bytes');
  assert.notEqual(r1, r2, 'random bytes differ between calls');
  assert.notEqual(r1, '0'.repeat(64));

  const print = await rawRequest(port, { target: '/print', headers: H });
  assert.equal(print.body.toString(), 'printed');
  const out = await server.waitForLog((l) => l.msg === 'hello from the module\'s stdout');
  assert.equal(out.stream, 'stdout');
  assert.match(String(out.module), /misbehave\.wasm/);
  const err = await server.waitForLog((l) => l.msg === 'and from its stderr');
  assert.equal(err.stream, 'stderr');

  // After all that, every route still answers, and the trap routes were logged with their codes.
  for (const target of ['/ok', '/blowup/ok', '/example', '/native']) {
    const r = await rawRequest(port, { target, headers: H });
    assert.equal(r.status, 200, target);
  }
  await assertFailuresLogged(server);
  assert.equal(server.proc.exitCode, null, 'the server is still running');
  assert.ok(!server.logs.some((l) => l.msg && String(l.msg).includes('replacing it')), 'no worker died');
});
