/**
 * Calls in flight together on one instance thread (channel.ts's ring): each
 * answer is its own request's, with request and response bodies of every
 * size crossing in whichever slot they land (some larger than a slot's first
 * buffer, so slots are replaced while others are in use); one instance serves
 * every call exactly once; and calls queued behind a slow call move to
 * another instance instead of waiting for it.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { compileWasm, exampleSource, request, scrape, startFlexilib, tempDir, writeConfig } from '@flexilib/test-support';
import { FIXTURES } from './wasm-fixtures.js';

/** A body of `n` bytes that differs per request (`seed`), so a mix-up between slots cannot go unseen. */
function bodyOf(seed: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = 97 + ((seed * 7 + i) % 26);
  return b;
}

test('calls in flight at once on one instance each get their own answer', { timeout: 120_000 }, async (t) => {
  const dirTmp = tempDir('wasm-ring');
  t.after(() => dirTmp.cleanup());
  const dir = dirTmp.dir;
  const example = await compileWasm(exampleSource, path.join(dir, 'example.wasm'));
  const bad = await compileWasm(path.join(FIXTURES, 'misbehave.c'), path.join(dir, 'misbehave.wasm'));
  const config = writeConfig(
    dir,
    [`/echo = ${example}`, `/sleep = ${bad}`, `/ = ${bad}`, '', '[route /echo]', 'instances = 1', 'run = thread', '[route /]', 'instances = 1', 'run = thread', '[route /sleep]', 'instances = 4', 'run = thread', ''].join('\n'),
  );
  // One worker: every request below goes to the same pools.
  const server = await startFlexilib({ config, workers: 1 });
  t.after(() => server.kill());
  const port = server.port;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 24 });
  t.after(() => agent.destroy());

  // 96 POSTs at once over 24 connections, bodies from empty to 300 KiB (a slot starts at 64 KiB).
  const sizes = [0, 1, 1000, 65_000, 70_000, 300_000];
  const echoes = await Promise.all(
    Array.from({ length: 96 }, (_, i) => {
      const body = bodyOf(i, sizes[i % sizes.length]);
      return request(port, `/echo/${i}`, { method: 'POST', body, agent, timeoutMs: 60_000 }).then((r) => ({ i, body, r }));
    }),
  );
  for (const { i, body, r } of echoes) {
    assert.equal(r.status, 200, `/echo/${i}: ${r.body.slice(0, 200)}`);
    assert.ok(r.bytes.equals(Buffer.concat([Buffer.from(`POST /echo/${i}\n`), body])), `/echo/${i} got its own answer (${body.length} bytes)`);
  }

  // /count answers how many calls its instance served: with one instance, 200 calls at
  // once must be answered 1..200 exactly once each (none lost, none served twice).
  const counts = await Promise.all(Array.from({ length: 200 }, () => request(port, '/count', { agent, timeoutMs: 60_000 })));
  assert.deepEqual(counts.map((r) => r.status).filter((s) => s !== 200), []);
  const seen = counts.map((r) => Number(r.body)).sort((a, b) => a - b);
  assert.deepEqual(seen, Array.from({ length: 200 }, (_, i) => i + 1));
  const s = await scrape(server.adminPort);
  assert.equal(s.sum('flexilib_wasm_cold_starts_total', { route: '/' }), 1, 'one instance served them all');
  assert.equal(s.sum('flexilib_wasm_cold_starts_total', { route: '/echo' }), 1);

  // Calls behind a slow one: warm /sleep's pool (its calls are measured quick), start a
  // 8 s call (the test server's call limit is 10 s), and once the module says it is
  // sleeping send quick calls to the same pool. (8 s: the stall is seen after 100 ms, and
  // another instance starts in tens of milliseconds, but on a machine loaded by other
  // tests the quick calls once took more than the 3 s this call used to sleep.)
  for (let i = 0; i < 3; i++) assert.equal((await request(port, '/sleep/x', { agent })).body, 'ok');
  let slowDone = false;
  const slow = request(port, '/sleep?ms=8000', { agent, timeoutMs: 30_000 }).then((r) => {
    slowDone = true;
    return r;
  });
  await server.waitForLog((l) => l.msg === 'sleeping', { timeoutMs: 20_000 });
  // Each answers its own target: a call taken back from the stuck instance and
  // served by another still has its own request (not the lane's next one).
  const sent = performance.now();
  const quick = await Promise.all(Array.from({ length: 4 }, (_, i) => request(port, `/sleep/echo-q${i}`, { agent, timeoutMs: 30_000 })));
  const tookMs = Math.round(performance.now() - sent);
  assert.deepEqual(quick.map((r) => r.body), ['/sleep/echo-q0', '/sleep/echo-q1', '/sleep/echo-q2', '/sleep/echo-q3']);
  assert.equal(slowDone, false, `the quick calls were answered by another instance while the slow one still ran (they took ${tookMs} ms)`);
  const r = await slow;
  assert.equal(r.status, 200);
  assert.equal(r.body, 'slept');
  assert.equal(server.proc.exitCode, null);
});
