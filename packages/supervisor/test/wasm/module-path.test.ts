/**
 * POST /services {"path"} reads a file on the server, so it is confined: only
 * regular files, within the module size limit, inside the config file's folder
 * (or --modules-dir / FLEXILIB_MODULES_DIR). /dev/zero (which grew the
 * supervisor without bound), a FIFO (which hung the call), /etc/passwd (whose
 * first bytes came back in the error), a path or a symlink leading out of the
 * folder, a directory and a sparse file over the limit are each a 400 on field
 * "path" naming the cause, never quoting the file. Through the real admin API;
 * the supervisor answers /healthz after every refusal.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { MAX_MODULE_BYTES } from '@flexilib/worker';
import { admin, compilePlugin, compileWasm, exampleSource, rawRequest, repoRoot, runFlexilib, startFlexilib, tempDir, writeConfig } from '@flexilib/test-support';

const HELLO = path.join(repoRoot, 'packages/worker/test/wasm/fixtures/hello.c');
const H: Array<[string, string]> = [['Host', 'localhost']];

test('module paths: only regular files, within the limit, inside the modules folder', { timeout: 120_000 }, async (t) => {
  const { dir, cleanup } = tempDir('module-path');
  t.after(cleanup);
  const conf = path.join(dir, 'conf');
  const mods = path.join(dir, 'mods');
  mkdirSync(conf);
  mkdirSync(mods);
  const outside = await compileWasm(HELLO, path.join(dir, 'outside.wasm'));
  copyFileSync(outside, path.join(conf, 'hello.wasm'));
  copyFileSync(outside, path.join(mods, 'other.wasm'));
  execFileSync('mkfifo', [path.join(conf, 'fifo.wasm')]);
  symlinkSync(outside, path.join(conf, 'escape.wasm'));
  symlinkSync('/dev/zero', path.join(conf, 'zero.wasm'));
  symlinkSync('hello.wasm', path.join(conf, 'inside-link.wasm'));
  mkdirSync(path.join(conf, 'sub.wasm'));
  writeFileSync(path.join(conf, 'big.wasm'), '');
  truncateSync(path.join(conf, 'big.wasm'), MAX_MODULE_BYTES + 1);
  writeFileSync(path.join(conf, 'notes.wasm'), 'SECRET-CONTENT of a file that is no module\n');
  const so = await compilePlugin(exampleSource, path.join(dir, 'example.so'));
  const config = writeConfig(conf, `/ = ${so}\n`);

  const server = await startFlexilib({ config, workers: 1 });
  t.after(() => server.kill());
  const post = (name: string, p: unknown) => admin(server.adminPort, 'POST', '/services', { name, prefix: `/${name}`, path: p });

  const outsideWhy = /is outside the modules folder .*conf \(the config file's folder, or --modules-dir\)/;
  const refused: Array<[unknown, string, RegExp]> = [
    ['/dev/zero', 'FLX_SERVICE_PATH_REFUSED', outsideWhy],
    ['/etc/passwd', 'FLX_SERVICE_PATH_REFUSED', outsideWhy],
    ['../outside.wasm', 'FLX_SERVICE_PATH_REFUSED', outsideWhy],
    [outside, 'FLX_SERVICE_PATH_REFUSED', outsideWhy],
    ['escape.wasm', 'FLX_SERVICE_PATH_REFUSED', outsideWhy],
    ['zero.wasm', 'FLX_SERVICE_PATH_REFUSED', outsideWhy],
    ['fifo.wasm', 'FLX_SERVICE_PATH_REFUSED', /"fifo\.wasm": the file is not a regular file \(a FIFO\)/],
    ['sub.wasm', 'FLX_SERVICE_PATH_REFUSED', /"sub\.wasm": the file is not a regular file \(a directory\)/],
    ['big.wasm', 'FLX_SERVICE_PATH_REFUSED', new RegExp(`"big\\.wasm": the file is ${MAX_MODULE_BYTES + 1} bytes, over the limit of ${MAX_MODULE_BYTES} bytes`)],
    ['nope.wasm', 'FLX_SERVICE_PATH_REFUSED', /"nope\.wasm": no such file in the modules folder/],
    ['', 'FLX_SERVICE_INVALID', /path: expected the path of a \.wasm file/],
    [42, 'FLX_SERVICE_INVALID', /path: expected the path of a \.wasm file/],
    ['a'.repeat(5000), 'FLX_SERVICE_INVALID', /at most 4096 characters/],
    ['notes.wasm', 'FLX_SERVICE_MODULE_INVALID', /is not a valid WebAssembly module: expected magic word 00 61 73 6d/],
  ];
  for (const [p, code, why] of refused) {
    const started = Date.now();
    const r = await post('s', p);
    const label = `path ${JSON.stringify(p).slice(0, 60)}`;
    assert.equal(r.status, 400, `${label}: ${JSON.stringify(r.json).slice(0, 300)}`);
    assert.equal(r.json.error.code, code, label);
    assert.equal(r.json.error.field, 'path', label);
    assert.match(r.json.error.message, why, label);
    assert.doesNotMatch(r.json.error.message, /root:|SECRET|53 45 43 52/, `${label}: no file contents in the answer`);
    assert.ok(Date.now() - started < 20_000, `${label}: answered, not hung`);
    assert.equal((await admin(server.adminPort, 'GET', '/healthz')).status, 200, `${label}: the supervisor is alive`);
  }
  // Inside the folder, also through a symlink that stays inside: accepted and served.
  for (const [name, p] of [['in', 'hello.wasm'], ['link', 'inside-link.wasm'], ['abs', path.join(conf, 'hello.wasm')]]) {
    const r = await post(name, p);
    assert.equal(r.status, 201, `${p}: ${JSON.stringify(r.json)}`);
    assert.equal((await rawRequest(server.port, { target: `/${name}/x`, headers: H })).body.toString(), `hello from /${name}/x`);
  }
  await server.stop();

  // --modules-dir (here through FLEXILIB_MODULES_DIR) moves the folder: the config's own is outside now.
  const moved = await startFlexilib({ config, workers: 1, env: { FLEXILIB_MODULES_DIR: mods } });
  t.after(() => moved.kill());
  const inMods = await admin(moved.adminPort, 'POST', '/services', { name: 'm', prefix: '/m', path: 'other.wasm' });
  assert.equal(inMods.status, 201, JSON.stringify(inMods.json));
  const confFile = await admin(moved.adminPort, 'POST', '/services', { name: 'c', prefix: '/c', path: '../conf/hello.wasm' });
  assert.equal(confFile.status, 400);
  assert.equal(confFile.json.error.field, 'path');
  assert.match(confFile.json.error.message, /is outside the modules folder .*mods/);

  const bad = runFlexilib(['--config', config, '--modules-dir', path.join(dir, 'no-such-dir')]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--modules-dir: ".*no-such-dir" is not a folder/);
});
