/**
 * A crash storm costs only the requests in flight on the crashed workers.
 *
 * A segfaulting route and a healthy one, hammered by 12 loops of requests on
 * fresh connections (a refused connection would show at once), with quarantine
 * on: workers die faster than they are replaced — at times none listens (a
 * diagnostic line reports the fewest seen) — until the library is quarantined. The port never refuses
 * a connection (the supervisor holds the socket: clients wait in the kernel's
 * queue for the next worker); a request fails only when the worker it was on
 * died; and the supervisor leaves no zombie child behind.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { childProcesses, compilePlugin, fixture, request, startFlexilib, tempDir, until, waitForAnswers, writeConfig } from '@flexilib/test-support';

const LOOPS = 12;
const CRASHES = 8;

test('crash storm with quarantine: no refused connection, only in-flight requests fail, no zombie', { timeout: 120_000 }, async (t) => {
  const { dir, cleanup } = tempDir('crash-storm');
  t.after(cleanup);
  await Promise.all([
    compilePlugin(fixture('segfault.c'), path.join(dir, 'libsegv.so')),
    compilePlugin(fixture('versioned.c'), path.join(dir, 'libok.so'), { defines: ['VERSION="ok"', 'PAD=16'] }),
  ]);
  const f = await startFlexilib({
    config: writeConfig(dir, '/crash = libsegv.so\n/ok = libok.so\n'),
    workers: 2,
    accessLog: false,
    args: ['--quarantine-crashes', String(CRASHES), '--quarantine-window', '120'],
  });
  t.after(() => f.kill());
  await waitForAnswers(f.port, '/ok', (r) => r.body === 'ok');

  const outcomes = new Map<string, number>();
  const count = (k: string) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
  let quarantinedAt = 0;
  const deadline = Date.now() + 60_000;
  const loop = async (i: number) => {
    for (let n = 0; Date.now() < deadline && !(quarantinedAt && Date.now() > quarantinedAt + 1500); n++) {
      const target = (n + i) % 2 ? '/crash' : '/ok';
      try {
        const r = await request(f.port, target, { timeoutMs: 20_000 });
        count(`${target} ${r.status}`);
        if (target === '/crash' && r.status === 503) quarantinedAt ||= Date.now();
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        count(`${target} ${err.code ?? err.message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: LOOPS }, (_, i) => loop(i)));
  const summary = [...outcomes].map(([k, n]) => `${n} x ${k}`).join(', ');
  t.diagnostic(summary);
  // How low the storm took the listening workers (from the log, in order).
  const live = new Set<number>();
  let fewest = Infinity;
  for (const l of f.logs) {
    if (l.msg === 'worker listening') live.add(l.workerPid as number);
    else if (l.code === 'FLX_WORKER_EXIT' && live.delete(l.workerPid as number)) fewest = Math.min(fewest, live.size);
  }
  t.diagnostic(`fewest workers listening during the storm: ${fewest}`);

  assert.ok(quarantinedAt, `the library was quarantined: ${summary}`);
  const deaths = f.logs.filter((l) => l.code === 'FLX_WORKER_EXIT');
  assert.ok(deaths.filter((l) => l.signal === 'SIGSEGV' && l.route === '/crash').length >= CRASHES, `K crashes in /crash: ${deaths.length} deaths`);
  const failed = [...outcomes].filter(([k]) => !/ (200|503)$/.test(k));
  const refused = [...outcomes].filter(([k]) => k.endsWith('ECONNREFUSED'));
  assert.deepEqual(refused, [], `no connection refused: ${summary}`);
  // A failure is a connection that broke with its worker, never a timeout or an error status.
  for (const [k] of failed) assert.match(k, / (ECONNRESET|socket hang up)$/, `only broken connections fail: ${summary}`);
  const nFailed = failed.reduce((s, [, n]) => s + n, 0);
  assert.ok(nFailed <= deaths.length * LOOPS, `at most the requests in flight on the dead workers failed: ${nFailed} of ${summary} for ${deaths.length} deaths`);
  assert.equal(outcomes.get('/ok 503') ?? 0, 0, summary);
  assert.ok((outcomes.get('/ok 200') ?? 0) > 0, summary);

  // Quarantined: the storm is over, both routes answer, and no child of the supervisor is a zombie.
  await waitForAnswers(f.port, '/crash', (r) => r.status === 503, { timeoutMs: 20_000 });
  await waitForAnswers(f.port, '/ok', (r) => r.status === 200 && r.body === 'ok');
  await until('no zombie child of the supervisor', () => childProcesses(f.proc.pid!).every((p) => p.state !== 'Z'), 5000).catch(() => {
    throw new Error(`zombie children: ${JSON.stringify(childProcesses(f.proc.pid!))}`);
  });
  // The check sees the workers (replacements may still be in their restart backoff).
  assert.ok(childProcesses(f.proc.pid!).some((p) => f.workerPids().includes(p.pid)), 'its serving workers are among its children');
  assert.ok(f.running);
});
