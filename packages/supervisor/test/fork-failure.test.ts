/**
 * A fork that fails never takes the supervisor down: it is logged
 * (FLX_WORKER_FORK), retried with growing delays, and the worker still alive
 * serves meanwhile. The failure is real: a preload (fixtures/grow-env.mjs)
 * gives the supervisor's environment a 256 KiB variable on SIGUSR2, which
 * cluster.fork passes on to every worker, and spawn fails with E2BIG until a
 * second SIGUSR2 removes it.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { compilePlugin, fixture, request, sleep, startFlexilib, tempDir, waitForAnswers, writeConfig } from '@flexilib/test-support';

test('spawn E2BIG on replacing a dead worker: logged, retried, the other worker serves, recovered when spawn works again', { timeout: 60_000 }, async (t) => {
  const { dir, cleanup } = tempDir('fork-failure');
  t.after(cleanup);
  await compilePlugin(fixture('versioned.c'), path.join(dir, 'libv.so'), { defines: ['VERSION="up"', 'PAD=16'] });
  const config = writeConfig(dir, '/v = libv.so\n');
  const f = await startFlexilib({
    config,
    workers: 2,
    accessLog: false,
    args: ['--spare-workers', '0'],
    env: { NODE_OPTIONS: `--import=${pathToFileURL(fixture('grow-env.mjs')).href}` },
  });
  t.after(() => f.kill());
  await waitForAnswers(f.port, '/v', (r) => r.body === 'up');

  let from = f.logs.length;
  f.signal('SIGUSR2');
  await f.waitForLog((l) => l.msg === 'test environment' && l.padBytes === 256 * 1024, { from });

  const [victim, survivor] = f.workerPids();
  from = f.logs.length;
  process.kill(victim, 'SIGKILL');
  const first = await f.waitForLog((l) => l.code === 'FLX_WORKER_FORK', { from });
  assert.equal(first.errno, 'E2BIG');
  assert.match(String(first.msg), /cannot start a worker process: spawn E2BIG; retrying in \d+ ms \(1 worker\(s\) serving meanwhile\)/);
  // Retried, again and again, with a growing delay.
  const failures = [first];
  for (let i = 0; i < 2; i++) failures.push(await f.waitForLog((l) => l.code === 'FLX_WORKER_FORK' && (l.failures as number) === i + 2, { from }));
  const delays = failures.map((l) => l.retryInMs as number);
  assert.ok(delays[0] < delays[1] && delays[1] < delays[2], `growing delays: ${delays}`);

  // Meanwhile the supervisor lives and the other worker answers every request.
  assert.ok(f.running, 'the supervisor is alive');
  for (let i = 0; i < 20; i++) {
    const r = await request(f.port, '/v');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'up');
  }
  assert.deepEqual(f.workerPids(), [survivor]);

  // Spawn works again: the next retry brings the pool back to two workers.
  from = f.logs.length;
  f.signal('SIGUSR2');
  await f.waitForLog((l) => l.msg === 'test environment' && l.padBytes === 0, { from });
  const back = await f.waitForLog((l) => l.msg === 'worker listening' && (l.replaces as { pid: number } | undefined)?.pid === victim, { from, timeoutMs: 20_000 });
  assert.equal(f.workerPids().length, 2);
  assert.ok(f.workerPids().includes(back.workerPid as number));
  await sleep(50);
  await waitForAnswers(f.port, '/v', (r) => r.body === 'up');
  assert.doesNotMatch(f.stderr(), /uncaught|Error: spawn/i);
});
