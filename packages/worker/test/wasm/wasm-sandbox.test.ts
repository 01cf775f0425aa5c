/**
 * The sandbox holds and the worker keeps serving: a module in an infinite
 * loop answers 504 at its time limit while other routes keep answering; a
 * trap answers 500 with the trap's reason; a memory blow-up answers 500 naming
 * the cap; proc_exit, a response pointing outside memory, no filesystem; and
 * after each, the module serves again from a fresh instance.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { compilePlugin, compileWasm, exampleSource, rawRequest, startFlexilib, tempDir, until, writeConfig } from '@flexilib/test-support';
import { FIXTURES } from './wasm-fixtures.js';

const H: Array<[string, string]> = [['Host', 'localhost']];

test('misbehaving modules are contained and the worker keeps serving', { timeout: 120_000 }, async (t) => {
  const dirTmp = tempDir('wasm-sandbox');
  t.after(() => dirTmp.cleanup());
  const dir = dirTmp.dir;
  const bad = await compileWasm(path.join(FIXTURES, 'misbehave.c'), path.join(dir, 'misbehave.wasm'));
  const example = await compileWasm(exampleSource, path.join(dir, 'example.wasm'));
  const so = await compilePlugin(exampleSource, path.join(dir, 'example.so'));
  const config = writeConfig(
    dir,
    [
      `/native = ${so}`,
      `/example = ${example}`,
      `/loop = ${bad}`,
      `/blowup = ${bad}`,
      `/ = ${bad}`,
      '',
      // On instance threads: what is checked here is that nothing waits for a thread
      // (wasm-loop.test.ts has the event loop's own checks).
      '[route /loop]',
      'timeout = 1500ms',
      'run = thread',
      '[route /blowup]',
      'memory = 16m',
      'run = thread',
      '[route /]',
      'run = thread',
      '',
    ].join('\n'),
  );
  // One worker: everything below shares one event loop, so "keeps serving" means something.
  const server = await startFlexilib({ config, workers: 1 });
  t.after(() => server.kill());
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

  const trap = await rawRequest(port, { target: '/trap', headers: H });
  assert.equal(trap.status, 500);
  assert.match(trap.body.toString(), /route "\/": WASM module .*misbehave\.wasm trapped: unreachable/);

  const blow = await rawRequest(port, { target: '/blowup', headers: H });
  assert.equal(blow.status, 500);
  assert.match(blow.body.toString(), /trapped: unreachable \(linear memory at \d+(\.\d)? MiB of its 16 MiB cap\)/);
  const soft = await rawRequest(port, { target: '/blowup-soft', headers: H });
  assert.equal(soft.status, 500);
  assert.match(soft.body.toString(), /handle_request returned 1 with its linear memory at \d+(\.\d)? MiB of its 16 MiB cap; a request probably needed more/);

  const exit = await rawRequest(port, { target: '/exit', headers: H });
  assert.equal(exit.status, 500);
  assert.match(exit.body.toString(), /called proc_exit\(3\)/);

  const badPtr = await rawRequest(port, { target: '/bad-pointer', headers: H });
  assert.equal(badPtr.status, 502);
  assert.match(badPtr.body.toString(), /returned an invalid response: the body \(4096 bytes at 4294963200\) lies outside the module's memory/);

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
  for (const code of ['FLX_WASM_TIMEOUT', 'FLX_WASM_TRAP', 'FLX_WASM_MEMORY', 'FLX_WASM_EXIT', 'FLX_WASM_BAD_RESPONSE']) {
    await until(`${code} logged with its route`, () => server.logs.some((l) => l.code === code && typeof l.route === 'string'));
  }
  assert.equal(server.proc.exitCode, null, 'the server is still running');
  assert.ok(!server.logs.some((l) => l.msg && String(l.msg).includes('replacing it')), 'no worker died');
});
