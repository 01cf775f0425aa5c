/**
 * --port 0 keeps its port: every worker (the spare too) SIGKILLed at once, six
 * times over, and the advertised port answers each time — no refused
 * connection, no new port. The supervisor holds the socket (listen-socket.ts):
 * a client that connects while no worker is alive waits for the replacement.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { childProcesses, compilePlugin, fixture, request, startFlexilib, tempDir, until, waitForAnswers, writeConfig } from '@flexilib/test-support';

test('--port 0: all workers SIGKILLed at once, the advertised port keeps answering', { timeout: 90_000 }, async (t) => {
  const { dir, cleanup } = tempDir('port-zero');
  t.after(cleanup);
  await compilePlugin(fixture('versioned.c'), path.join(dir, 'libv.so'), { defines: ['VERSION="here"', 'PAD=16'] });
  const f = await startFlexilib({ config: writeConfig(dir, '/v = libv.so\n'), workers: 2, accessLog: false });
  t.after(() => f.kill());
  const port = f.port;
  assert.notEqual(port, 0);
  await waitForAnswers(port, '/v', (r) => r.body === 'here');

  for (let trial = 1; trial <= 6; trial++) {
    const workers = childProcesses(f.proc.pid!).filter((p) => p.state !== 'Z');
    assert.ok(workers.length >= 2, `trial ${trial}: workers alive: ${JSON.stringify(workers)}`);
    const from = f.logs.length;
    for (const w of workers) process.kill(w.pid, 'SIGKILL');
    // Sent at once, while no worker is alive: answered by the replacement on the same port.
    const r = await request(port, '/v', { timeoutMs: 20_000 });
    assert.equal(r.status, 200, `trial ${trial}`);
    assert.equal(r.body, 'here');
    const relisten = await f.waitForLog((l) => l.msg === 'worker listening', { from, timeoutMs: 20_000 });
    assert.equal(relisten.port, port, `trial ${trial}: the replacement listens on the advertised port`);
    // Both serving again (replacements come later and later: restart backoff) before the next round.
    await until(`trial ${trial}: two workers listen`, () => f.workerPids().length === 2, 30_000);
    await waitForAnswers(port, '/v', (x) => x.body === 'here', { timeoutMs: 20_000 });
  }
  assert.ok(f.running, 'the supervisor is alive');
});
