/**
 * The ELF completeness check that guards every dlopen: a library cut short at
 * any byte is refused (dlopen of such a file can die of SIGBUS instead of
 * failing), the complete file passes, and a worker asked to load a truncated
 * library answers 502 with the reason instead of crashing.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { elfProblem } from '@flexilib/worker';
import { compilePlugin, fixture, request, startFlexilib, tempDir, waitForAnswers } from '@flexilib/test-support';

test('every truncation of a real library is refused; the whole file passes', { timeout: 20_000 }, async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const bytes = readFileSync(await compilePlugin(fixture('versioned.c'), path.join(dir, 'lib.so'), { defines: ['PAD=4096'] }));
  assert.equal(elfProblem(bytes), null);
  for (let n = 0; n < bytes.length; n += n < 256 ? 1 : 97) {
    assert.notEqual(elfProblem(bytes.subarray(0, n)), null, `truncated to ${n} of ${bytes.length} bytes`);
  }
  assert.notEqual(elfProblem(bytes.subarray(0, bytes.length - 1)), null);
  assert.match(elfProblem(bytes.subarray(0, 3))!, /too short/);
  assert.equal(elfProblem(Buffer.from('#!/bin/sh\necho not a library\n')), 'not an ELF file');
});

test('a worker loading a truncated library answers 502 with the reason and keeps serving', { timeout: 30_000 }, async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const full = readFileSync(await compilePlugin(fixture('versioned.c'), path.join(dir, 'full.so'), { defines: ['VERSION="whole"'] }));
  const lib = path.join(dir, 'libcut.so');
  writeFileSync(lib, full.subarray(0, Math.floor(full.length / 3)));
  const config = path.join(dir, 'proxy.ini');
  writeFileSync(config, '/cut = libcut.so\n');
  // No watcher: the worker's own check on first use is under test.
  const server = await startFlexilib({ config, workers: 1, accessLog: false, args: ['--no-watch'] });
  t.after(() => server.kill());
  const r = await request(server.port, '/cut');
  assert.equal(r.status, 502);
  assert.match(r.body, /^route "\/cut": library .*libcut\.so cannot be loaded: .*ends at byte \d+ but the file has \d+ bytes \(truncated or still being written\?\)\n$/);
  // The next request retries: once the file is whole, it loads.
  writeFileSync(lib, full);
  await waitForAnswers(server.port, '/cut', (x) => x.status === 200 && x.body === 'whole', { n: 2 });
  assert.equal(server.logs.filter((l) => l.code === 'FLX_WORKER_EXIT').length, 0);
});
