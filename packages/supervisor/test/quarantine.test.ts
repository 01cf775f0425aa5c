/**
 * Quarantine: a plugin that segfaults on its route crashes workers until it is
 * quarantined (K crashes); then its route answers 503 + Retry-After in every
 * worker while the other route answers 200 throughout. A new build of the
 * library lifts the quarantine; so does SIGHUP.
 */
import assert from 'node:assert/strict';
import { copyFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { compilePlugin, crashOnce, fixture, type Reply, request, sleep, startFlexilib, tempDir, waitForAnswers } from '@flexilib/test-support';

test('a segfaulting route is quarantined after K crashes, others keep answering, a new build lifts it', { timeout: 40_000 }, async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const crashing = path.join(dir, 'segv-crash.so');
  const fixed = path.join(dir, 'segv-fixed.so');
  await Promise.all([compilePlugin(fixture('segfault.c'), crashing), compilePlugin(fixture('segfault.c'), fixed, { defines: ['FIXED'] }), compilePlugin(fixture('versioned.c'), path.join(dir, 'libok.so'), { defines: ['VERSION="ok"'] })]);
  const lib = path.join(dir, 'libsegv.so');
  copyFileSync(crashing, lib);
  const config = path.join(dir, 'proxy.ini');
  writeFileSync(config, '/crash = libsegv.so\n/ok = libok.so\n');
  const server = await startFlexilib({ config, workers: 2, accessLog: false, args: ['--quarantine-crashes', '3', '--quarantine-window', '60'] });
  t.after(() => server.kill());
  await waitForAnswers(server.port, '/ok', (r) => r.body === 'ok');

  // The healthy route, probed one request at a time all along.
  const okProbe = { ok: 0, failed: 0, running: true };
  const probing = (async () => {
    while (okProbe.running) {
      try {
        const r = await request(server.port, '/ok', { timeoutMs: 3000 });
        if (r.status === 200 && r.body === 'ok') okProbe.ok++;
        else okProbe.failed++;
      } catch {
        okProbe.failed++;
      }
      await sleep(5);
    }
  })();
  t.after(async () => {
    okProbe.running = false;
    await probing;
  });

  // Crash until the route answers 503.
  let crashes = 0;
  let quarantined: Reply | undefined;
  for (let i = 0; i < 10 && !quarantined; i++) {
    const { exit, reply } = await crashOnce(server, '/crash');
    if (exit) {
      crashes++;
      assert.equal(exit.signal, 'SIGSEGV');
      assert.equal(exit.route, '/crash');
    }
    if (reply?.status === 503) quarantined = reply;
  }
  assert.ok(quarantined, 'the route became quarantined');
  assert.equal(crashes, 3, 'exactly K crashes');
  assert.equal(quarantined.headers['retry-after'], '60');
  assert.match(quarantined.body, /^route "\/crash": library libsegv\.so is quarantined: it crashed workers 3 times in 60 s \(last: SIGSEGV\)/);
  assert.equal(quarantined.body.trim().split('\n').length, 1, 'one line');
  const q = await server.waitForLog((l) => l.code === 'FLX_LIB_QUARANTINED');
  assert.deepEqual(q.routes, ['/crash']);
  assert.equal(q.library, lib);

  // Every worker (the one forked after the quarantine too) answers 503, with no new crash.
  await waitForAnswers(server.port, '/crash', (r) => r.status === 503 && r.headers['retry-after'] === '60', { n: 10 });
  const okAtQuarantine = okProbe.ok;
  for (let i = 0; i < 100 && okProbe.ok < okAtQuarantine + 3; i++) await sleep(50);
  assert.ok(okProbe.ok >= okAtQuarantine + 3, 'the other route answers 200 during the quarantine');
  assert.equal(server.logs.filter((l) => l.code === 'FLX_WORKER_EXIT').length, 3);

  // A new build lifts it.
  const from = server.logs.length;
  copyFileSync(fixed, path.join(dir, '.tmp.so'));
  renameSync(path.join(dir, '.tmp.so'), lib);
  await waitForAnswers(server.port, '/crash', (r) => r.status === 200 && r.body === 'fixed');
  const lifted = await server.waitForLog((l) => /quarantine lifted/.test(String(l.msg)) && l.role === 'supervisor', { from, timeoutMs: 1000 });
  assert.equal(lifted.library, lib);

  okProbe.running = false;
  await probing;
  // A sequential probe has one request in flight: it can lose at most that one per crash
  // (a connection node:cluster was handing to the dying worker hangs until the probe's timeout).
  assert.ok(okProbe.failed <= 3, `/ok failures: ${okProbe.failed}`);
  assert.ok(okProbe.ok > 10, `/ok answers: ${okProbe.ok}`);
});

test('SIGHUP lifts a quarantine', { timeout: 40_000 }, async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  await Promise.all([compilePlugin(fixture('abort.c'), path.join(dir, 'libabort.so')), compilePlugin(fixture('versioned.c'), path.join(dir, 'libok.so'), { defines: ['VERSION="ok"'] })]);
  const config = path.join(dir, 'proxy.ini');
  writeFileSync(config, '/abort = libabort.so\n/ok = libok.so\n');
  const server = await startFlexilib({ config, workers: 2, accessLog: false, args: ['--quarantine-crashes', '2', '--quarantine-window', '30'] });
  t.after(() => server.kill());

  let crashes = 0;
  for (let i = 0; i < 10; i++) {
    const { exit, reply } = await crashOnce(server, '/abort');
    if (exit) crashes++;
    if (reply?.status === 503) break;
  }
  assert.equal(crashes, 2);
  await waitForAnswers(server.port, '/abort', (r) => r.status === 503 && r.headers['retry-after'] === '30', { n: 4 });

  const from = server.logs.length;
  server.signal('SIGHUP');
  await server.waitForLog((l) => l.msg === 'quarantine lifted (SIGHUP)', { from, timeoutMs: 5000 });
  await server.waitForLog((l) => l.msg === 'config reloaded', { from, timeoutMs: 5000 });
  // Served again: the library is called, and (still the crashing build) crashes.
  const { exit } = await crashOnce(server, '/abort');
  assert.equal(exit?.signal, 'SIGABRT');
  assert.equal((await request(server.port, '/ok')).body, 'ok');
});
