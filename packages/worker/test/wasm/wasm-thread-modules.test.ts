/**
 * What an instance thread loads is heap of its own isolate (docs/memory.md):
 * a real worker serves a WASM route (GETs and POSTs through the instance
 * thread, which ends after each call with idle = 0), and the node modules
 * each instance thread loaded, recorded by a preload in that thread
 * (fixtures/record-thread-modules.mjs), hold none the thread does not need.
 * The test fails naming the module. No memory figure is asserted.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig, type ToWorker } from '@flexilib/contract';
import { compileWasm, eventually, exampleSource, request, tempDir, writeConfig } from '@flexilib/test-support';
import { forkWorker } from '../worker-process.js';

const recorder = fileURLToPath(new URL('../fixtures/record-thread-modules.mjs', import.meta.url));

/** Modules an instance thread must not load, by what they are (moduleLoadList entries). */
const NOT_IN_THREAD: Array<[string, RegExp]> = [
  ['node:crypto (loaded on the first random_get only)', /^NativeModule (crypto|internal\/crypto\/)/],
  ['node:http', /^NativeModule (_http_|http$)/],
  ['node:net', /^NativeModule net$/],
  ['node:zlib', /^NativeModule zlib$/],
  ['node:child_process', /^NativeModule child_process$/],
];

test('an instance thread loads only what it serves with', { timeout: 60_000 }, async (t) => {
  const tmp = tempDir('wasm-thread-modules');
  t.after(() => tmp.cleanup());
  const wasm = await compileWasm(exampleSource, path.join(tmp.dir, 'example.wasm'));
  const list = path.join(tmp.dir, 'thread.modules');
  const w = await forkWorker(loadConfig(writeConfig(tmp.dir, `/ = ${wasm}\n[route /]\nidle = 0\nrun = thread\n`)), {
    execArgv: ['--import', recorder],
    env: { FLEXILIB_TEST_THREAD_MODULES: list, NODE_OPTIONS: '' },
  });
  t.after(() => w.child.kill('SIGKILL'));
  assert.equal((await request(w.port, '/')).status, 200);
  assert.equal((await request(w.port, '/echo', { method: 'POST', body: 'x'.repeat(2000) })).status, 200);
  // idle = 0: each instance ends after its call, and its thread writes its list as it goes.
  const entries = await eventually('an instance thread recorded its modules', () => {
    if (!existsSync(list)) return undefined;
    const lines = readFileSync(list, 'utf8').split('\n').filter(Boolean);
    return lines.some((l) => / NativeModule internal\/worker\//.test(l) || / NativeModule worker_threads$/.test(l)) ? lines : undefined;
  });
  const exited = once(w.child, 'exit');
  w.child.send({ type: 'stop' } satisfies ToWorker);
  await exited;

  const modules = entries.map((l) => l.slice(l.indexOf(' ') + 1));
  // The recorder saw the thread's own modules (else the absences below prove nothing).
  assert.ok(modules.includes('NativeModule worker_threads'), 'worker_threads is in the thread\'s list');
  for (const [what, re] of NOT_IN_THREAD) {
    assert.deepEqual(modules.filter((m) => re.test(m)), [], `an instance thread loaded ${what}`);
  }
});
