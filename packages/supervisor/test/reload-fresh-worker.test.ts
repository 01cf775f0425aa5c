/**
 * Hot reload and workers that meet the library for the first time: while the
 * library file is written slowly in place, a worker that had not loaded it yet
 * (the spare that replaced a SIGKILLed worker) must serve the last complete
 * version, as the workers that had it loaded do — not a 502 for the
 * half-written file. Workers load the supervisor's verified copy, never the
 * file being written.
 *
 * The kills happen while no load runs: requests in flight on a killed worker
 * are lost by the kill itself, which is not what this test is about.
 */
import assert from 'node:assert/strict';
import { closeSync, copyFileSync, fsyncSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { compilePlugin, fixture, load, sleep, startFlexilib, tempDir, waitForAnswers, type Flexilib, type LoadResult } from '@flexilib/test-support';

/** SIGKILL one listening worker and wait until the spare that replaces it listens. */
async function killOne(server: Flexilib): Promise<void> {
  const exited = new Set(server.logs.filter((l) => l.event === 'worker-exit').map((l) => l.workerPid));
  const victim = server.logs.filter((l) => l.msg === 'worker listening' && !exited.has(l.workerPid)).at(-1)?.workerPid as number;
  assert.ok(victim > 0, 'a listening worker to kill');
  const from = server.logs.length;
  process.kill(victim, 'SIGKILL');
  await server.waitForLog((l) => l.msg === 'worker listening' && typeof l.sinceDeathMs === 'number', { from, timeoutMs: 15_000 });
}

function add(total: LoadResult, r: LoadResult): void {
  total.ok += r.ok;
  total.failed += r.failed;
  total.errors.push(...r.errors);
  for (const [k, v] of r.bodies) total.bodies.set(k, (total.bodies.get(k) ?? 0) + v);
}

test('slow in-place write while fresh workers meet the route: zero failed requests', { timeout: 90_000 }, async (t) => {
  const { dir, cleanup } = tempDir('fresh-reload');
  t.after(cleanup);
  const libs = path.join(dir, 'libs');
  mkdirSync(libs);
  const v1 = path.join(dir, 'v1.so');
  const v2 = path.join(dir, 'v2.so');
  // 1 MiB of padding: the file takes several writes.
  await Promise.all([
    compilePlugin(fixture('versioned.c'), v1, { defines: ['VERSION="v1"', 'PAD=(1024*1024)'] }),
    compilePlugin(fixture('versioned.c'), v2, { defines: ['VERSION="v2"', 'PAD=(1024*1024)'] }),
  ]);
  const lib = path.join(libs, 'libversioned.so');
  copyFileSync(v1, lib);
  const config = path.join(dir, 'proxy.ini');
  writeFileSync(config, '/v = libs/libversioned.so\n');
  const server = await startFlexilib({ config, workers: 2, accessLog: false });
  t.after(() => server.kill());
  await waitForAnswers(server.port, '/v', (r) => r.body === 'v1', { n: 20 });

  // A worker that has not loaded the library yet: the spare, after a kill.
  await killOne(server);

  const total: LoadResult = { ok: 0, failed: 0, errors: [], bodies: new Map(), statuses: new Map(), maxGapMs: 0, failedByLoop: [], byHeader: new Map() };
  const bytes = readFileSync(v2);
  const fd = openSync(lib, 'w'); // truncated: the file is incomplete from now on
  t.after(() => {
    try {
      closeSync(fd);
    } catch {
      /* closed */
    }
  });
  const chunks = 6;
  const step = Math.ceil(bytes.length / chunks);
  let traffic = load(server.port, '/v', { concurrency: 8, maxMs: 60_000 });
  t.after(() => traffic.stop());
  for (let i = 0, off = 0; off < bytes.length; i++, off += step) {
    writeSync(fd, bytes, off, Math.min(step, bytes.length - off), off);
    fsyncSync(fd);
    // Pauses longer than the reload debounce: the supervisor sees the partial file.
    await sleep(400);
    if (i === 2) {
      // Mid-write, another fresh worker: the other one killed, its spare takes over.
      add(total, await traffic.stop());
      await killOne(server);
      traffic = load(server.port, '/v', { concurrency: 8, maxMs: 60_000 });
      await sleep(400);
    }
  }
  closeSync(fd);
  await waitForAnswers(server.port, '/v', (r) => r.body === 'v2', { n: 20 });
  add(total, await traffic.stop());

  assert.equal(total.failed, 0, `failed requests: ${total.errors.slice(0, 5).join('; ')}`);
  assert.ok((total.bodies.get('v1') ?? 0) > 0, `the last complete version served during the write: ${[...total.bodies]}`);
  assert.ok((total.bodies.get('v2') ?? 0) > 0, `the new version served once complete: ${[...total.bodies]}`);
  assert.ok(server.logs.some((l) => l.code === 'FLX_LIB_INCOMPLETE'), 'the supervisor saw the partial file and kept the old version');
  assert.equal(server.logs.filter((l) => l.msg === 'library unavailable' || String(l.msg).startsWith('library unavailable')).length, 0, 'no worker failed to load the library');
});
