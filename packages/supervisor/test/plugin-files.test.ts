/**
 * What a proxy.ini route may name as its plugin file, and what happens when it
 * names something that is not one: /dev/zero (reading it never ends), a FIFO
 * (opening it waits for a writer forever), a sparse file over the size limit,
 * and a real library cross-built for another architecture (dlopen's own
 * answer, "No such file or directory", hides the cause). Each answers 502 at
 * once naming the route and the cause, for native and WASM routes alike, and
 * the same worker goes on serving the healthy route.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { MAX_LIBRARY_BYTES, MAX_MODULE_BYTES, elfArchProblem, elfProblem } from '@flexilib/worker';
import { compilePlugin, compilePluginFor, exampleSource, rawRequest, startFlexilib, tempDir, writeConfig } from '@flexilib/test-support';

const H: Array<[string, string]> = [['Host', 'localhost']];

test('a library cross-built for aarch64 is named as such, not as a missing file', { timeout: 60_000 }, async (t) => {
  const { dir, cleanup } = tempDir('foreign-arch');
  t.after(cleanup);
  const arm = readFileSync(await compilePluginFor('aarch64-linux-gnu', exampleSource, path.join(dir, 'arm64.so')));
  const x86 = readFileSync(await compilePluginFor('x86-linux-gnu', exampleSource, path.join(dir, 'x86.so')));
  assert.equal(elfProblem(arm), null, 'a complete ELF file');
  assert.match(elfArchProblem(arm, 'x64')!, /built for AArch64 \(arm64\), but this host is x86-64, 64-bit, little-endian \(x64\)/);
  assert.equal(elfArchProblem(arm, 'arm64'), null);
  assert.match(elfArchProblem(x86, 'x64')!, /built for x86 \(i386\)/);
  const native = readFileSync(await compilePlugin(exampleSource, path.join(dir, 'native.so')));
  assert.equal(elfArchProblem(native), null, `the host's own build passes on ${process.arch}`);
});

test('routes to /dev/zero, FIFOs, oversized and foreign files answer 502 naming the cause; the worker keeps serving', { timeout: 120_000 }, async (t) => {
  const { dir, cleanup } = tempDir('plugin-files');
  t.after(cleanup);
  await compilePlugin(exampleSource, path.join(dir, 'example.so'));
  await compilePluginFor('aarch64-linux-gnu', exampleSource, path.join(dir, 'arm64.so'));
  execFileSync('mkfifo', [path.join(dir, 'fifo.so'), path.join(dir, 'fifo.wasm')]);
  symlinkSync('/dev/zero', path.join(dir, 'zero.wasm'));
  // Sparse: over the limit on paper, no disk used.
  writeFileSync(path.join(dir, 'big.so'), '');
  truncateSync(path.join(dir, 'big.so'), MAX_LIBRARY_BYTES + 1);
  writeFileSync(path.join(dir, 'big.wasm'), '');
  truncateSync(path.join(dir, 'big.wasm'), MAX_MODULE_BYTES + 1);
  const config = writeConfig(
    dir,
    ['/zero = /dev/zero', '/fifo = fifo.so', '/big = big.so', '/arm = arm64.so', '/wzero = zero.wasm', '/wfifo = fifo.wasm', '/wbig = big.wasm', '/ = example.so', ''].join('\n'),
  );
  const server = await startFlexilib({ config, workers: 1 });
  t.after(() => server.kill());

  const cases: Array<[string, RegExp]> = [
    ['/zero', /route "\/zero": cannot read library \/dev\/zero is not a regular file \(a character device\)/],
    ['/fifo', /route "\/fifo": cannot read library .*fifo\.so is not a regular file \(a FIFO\)/],
    ['/big', new RegExp(`big\\.so is ${MAX_LIBRARY_BYTES + 1} bytes, over the limit of ${MAX_LIBRARY_BYTES} bytes`)],
    ['/arm', /arm64\.so cannot be loaded: built for AArch64 \(arm64\), but this host is/],
    ['/wzero', /zero\.wasm is not a regular file \(a character device\)/],
    ['/wfifo', /fifo\.wasm is not a regular file \(a FIFO\)/],
    ['/wbig', new RegExp(`big\\.wasm is ${MAX_MODULE_BYTES + 1} bytes, over the limit of ${MAX_MODULE_BYTES} bytes`)],
  ];
  for (const [target, reason] of cases) {
    const r = await rawRequest(server.port, { target, headers: H });
    assert.equal(r.status, 502, `${target}: ${r.body.toString()}`);
    assert.match(r.body.toString(), reason, target);
    const ok = await rawRequest(server.port, { target: '/', headers: H });
    assert.equal(ok.status, 200, `the worker serves on after ${target}`);
  }
  const archLog = await server.waitForLog((o) => o.msg === 'library unavailable' && o.route === '/arm');
  assert.equal(archLog.code, 'FLX_LIB_WRONG_ARCH');
  assert.equal(server.logs.filter((o) => o.code === 'FLX_WORKER_EXIT').length, 0, 'no worker died');
});
