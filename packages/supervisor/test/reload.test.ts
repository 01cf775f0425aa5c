/**
 * Hot reload under continuous load: the library file replaced by rename,
 * overwritten in place with cp, and written slowly in several steps; then
 * broken builds (wrong ABI, missing handle_request) that must leave the old
 * version serving. Not one request may fail, and every new version must be
 * served.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, openSync, readFileSync, renameSync, writeFileSync, writeSync, closeSync, fsyncSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { compilePlugin, fixture, load, sleep, startFlexilib, tempDir, waitForAnswers } from '@flexilib/test-support';

const run = promisify(execFile);

test('reload by rename, in-place cp and slow write under load: zero failed requests', { timeout: 60_000 }, async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const builds = path.join(dir, 'builds');
  const libs = path.join(dir, 'libs');
  mkdirSync(builds);
  mkdirSync(libs);
  const b = (name: string) => path.join(builds, `${name}.so`);
  await Promise.all([
    compilePlugin(fixture('versioned.c'), b('v1'), { defines: ['VERSION="v1"'] }),
    compilePlugin(fixture('versioned.c'), b('v2'), { defines: ['VERSION="v2"'] }),
    compilePlugin(fixture('versioned.c'), b('v3'), { defines: ['VERSION="v3"'] }),
    compilePlugin(fixture('versioned.c'), b('v4'), { defines: ['VERSION="v4"'] }),
    compilePlugin(fixture('versioned.c'), b('v5'), { defines: ['VERSION="v5"'] }),
    compilePlugin(fixture('versioned.c'), b('wrong-abi'), { defines: ['VERSION="bad"', 'WRONG_ABI'] }),
    compilePlugin(fixture('versioned.c'), b('no-handler'), { defines: ['VERSION="bad"', 'NO_HANDLER'] }),
  ]);
  const lib = path.join(libs, 'libversioned.so');
  copyFileSync(b('v1'), lib);
  const config = path.join(dir, 'proxy.ini');
  writeFileSync(config, `/v = libs/libversioned.so\n`);

  const server = await startFlexilib({ config, workers: 2, accessLog: false });
  t.after(() => server.kill());
  await waitForAnswers(server.port, '/v', (r) => r.body === 'v1');

  const traffic = load(server.port, '/v', { concurrency: 8, maxMs: 45_000 });
  t.after(() => traffic.stop());
  await sleep(300);

  // 1. Replaced by rename (the safe way to publish a build).
  copyFileSync(b('v2'), path.join(libs, '.libversioned.so.tmp'));
  renameSync(path.join(libs, '.libversioned.so.tmp'), lib);
  await waitForAnswers(server.port, '/v', (r) => r.body === 'v2');

  // 2. Overwritten in place: cp truncates the file and writes into the same inode.
  await run('cp', [b('v3'), lib]);
  await waitForAnswers(server.port, '/v', (r) => r.body === 'v3');

  // 3. A slow writer: truncate, then four chunks with pauses longer than the debounce.
  const logsBefore = server.logs.length;
  const v4 = readFileSync(b('v4'));
  const fd = openSync(lib, 'w');
  const step = Math.ceil(v4.length / 4);
  for (let off = 0; off < v4.length; off += step) {
    writeSync(fd, v4, off, Math.min(step, v4.length - off), off);
    fsyncSync(fd);
    await sleep(400);
  }
  closeSync(fd);
  await waitForAnswers(server.port, '/v', (r) => r.body === 'v4');
  const incomplete = server.logs.slice(logsBefore).filter((l) => l.code === 'FLX_LIB_INCOMPLETE');
  assert.ok(incomplete.length >= 1, 'the partial file was seen and refused');
  assert.match(String(incomplete[0].problem), /truncated or still being written|too short/);

  // 4. Builds that fail to load keep the old version serving and say why.
  for (const [build, why] of [
    ['wrong-abi', /plugin ABI 2\.0/],
    ['no-handler', /does not export handle_request/],
  ] as const) {
    const from = server.logs.length;
    copyFileSync(b(build), path.join(libs, '.tmp'));
    renameSync(path.join(libs, '.tmp'), lib);
    const failed = await server.waitForLog((l) => l.code === 'FLX_LIB_RELOAD_FAILED', { from, timeoutMs: 5000 });
    assert.match(String(failed.err), why);
    assert.match(String(failed.msg), /old version keeps serving/);
    await waitForAnswers(server.port, '/v', (r) => r.body === 'v4', { n: 10 });
  }

  // 5. The next good build is picked up again.
  copyFileSync(b('v5'), path.join(libs, '.tmp'));
  renameSync(path.join(libs, '.tmp'), lib);
  await waitForAnswers(server.port, '/v', (r) => r.body === 'v5');
  await sleep(200);

  const res = await traffic.stop();
  assert.equal(res.failed, 0, `failed requests: ${res.errors.join('; ')}`);
  for (const v of ['v1', 'v2', 'v3', 'v4', 'v5']) assert.ok((res.bodies.get(v) ?? 0) > 0, `load saw ${v}: ${[...res.bodies.entries()]}`);
  assert.equal(res.bodies.get('bad'), undefined, 'broken builds never served');
  assert.ok(res.ok > 200, `enough load: ${res.ok}`);
  // No worker crashed along the way.
  assert.equal(server.logs.filter((l) => l.code === 'FLX_WORKER_EXIT').length, 0);
  const reloaded = server.logs.filter((l) => l.msg === 'library reloaded');
  assert.ok(reloaded.length >= 4, `reloads: ${reloaded.length}`);
});
