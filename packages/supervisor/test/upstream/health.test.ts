/**
 * Health: an origin killed (SIGKILL) under load drops out of the pool (GETs
 * are retried on another origin, so none fails; of the POSTs only those in
 * flight to it may), is marked down after `fall`, and comes back after `rise`
 * successful checks once it listens again.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { admin, eventually, load, request, sleep, startFlexilib, tempDir, until, writeConfig } from '@flexilib/test-support';
import { startChildOrigin } from './origins.js';

test('an origin killed under load drops out, and returns after `rise` successes', { timeout: 60_000 }, async (t) => {
  const tmp = tempDir('upstream');
  t.after(() => tmp.cleanup());
  const dir = tmp.dir;
  const a = await startChildOrigin(t, 'a');
  const b = await startChildOrigin(t, 'b');
  const c = await startChildOrigin(t, 'c');
  const config = writeConfig(dir, `/api = upstream:api

[upstream.api]
servers = ${a.url}, ${b.url}, ${c.url}
health_path = /health
health_interval = 200ms
health_timeout = 2s ; the machine may be busy: only a dead origin should fail a check
fall = 3
rise = 3
`);
  const fx = await startFlexilib({ config, workers: 2, accessLog: false });
  t.after(() => fx.kill());
  const concurrency = 8;
  const gets = load(fx.port, '/api/get', { concurrency, maxMs: 30_000, countHeader: 'x-origin' });
  const posts = load(fx.port, '/api/post', { concurrency, maxMs: 30_000, method: 'POST', body: 'payload', countHeader: 'x-origin' });
  await until('traffic on b', () => (gets.result.byHeader.get('b') ?? 0) > 50 && (posts.result.byHeader.get('b') ?? 0) > 50, 10_000);

  await b.kill();
  const killedAt = { gets: gets.result.ok, posts: posts.result.ok };
  const down = await fx.waitForLog((l) => l.msg === 'upstream origin down' && l.origin === b.url, { timeoutMs: 10_000 });
  assert.equal(down.pool, 'api');
  const servers = await admin(fx.adminPort, 'GET', '/servers');
  const bState = servers.json.pools[0].servers.find((s: { url: string }) => s.url === b.url);
  assert.equal(bState.healthy, false);
  // Load continues on a and c only.
  const before = { a: gets.result.byHeader.get('a') ?? 0, c: gets.result.byHeader.get('c') ?? 0 };
  await until('traffic on a and c', () => (gets.result.byHeader.get('a') ?? 0) > before.a + 100 && (gets.result.byHeader.get('c') ?? 0) > before.c + 100, 10_000);

  // GETs that hit the dead origin were retried elsewhere: not one failed.
  assert.equal(gets.result.failed, 0, gets.result.errors.join('\n'));
  // POSTs are not retried: only those in flight to b may fail, each with a 502 — the ones sent when
  // it died, and in a worker that had none in flight then, those it sent before its first refusal
  // came back (each worker ejects b on its first failure): at most two rounds of the client's requests.
  assert.ok(posts.result.failed <= 2 * concurrency, `${posts.result.failed} POSTs failed: ${posts.result.errors.join('\n')}`);
  for (const e of posts.result.errors) assert.match(e, /^502 route "\/api" \(pool "api"\): origin http:\/\/127\.0\.0\.1:\d+ /);
  assert.ok(gets.result.ok > killedAt.gets && posts.result.ok > killedAt.posts);

  // Bring b back on the same port: after `rise` (3) successful checks it takes traffic again.
  const b2 = await startChildOrigin(t, 'b', b.port);
  const up = await fx.waitForLog((l) => l.msg === 'upstream origin up' && l.origin === b2.url, { timeoutMs: 10_000 });
  assert.equal(up.successes, 3);
  const bHits = gets.result.byHeader.get('b') ?? 0;
  await until('traffic back on b', () => (gets.result.byHeader.get('b') ?? 0) > bHits + 50, 10_000);

  const [g, p] = await Promise.all([gets.stop(), posts.stop()]);
  t.diagnostic(`GETs ${g.ok} ok / ${g.failed} failed; POSTs ${p.ok} ok / ${p.failed} failed (in flight to the killed origin)`);
  assert.equal(g.failed, 0, g.errors.join('\n'));
  assert.ok(p.failed <= 2 * concurrency);

  // The stats saw it all: client successes and the origin failures of b.
  const stats = await eventually('/stats to catch up', async () => {
    const s = await admin(fx.adminPort, 'GET', '/stats');
    return s.json.client.success === g.ok + p.ok ? s.json : undefined;
  }, 5000);
  assert.equal(stats.client.failed, p.failed);
  const detail = (await admin(fx.adminPort, 'GET', '/stats/detail')).json as Array<{ url: string; failed: number; passiveFailures: number; checks: { failed: number } }>;
  const bDetail = detail.find((d) => d.url === b.url)!;
  assert.ok(bDetail.failed >= 1 && bDetail.passiveFailures >= 1 && bDetail.checks.failed >= 1, JSON.stringify(bDetail));
  await sleep(0);
});

test('a late worker starts with the current health; a pool with every origin down answers 503 at once', { timeout: 60_000 }, async (t) => {
  const tmp = tempDir('upstream');
  t.after(() => tmp.cleanup());
  const dir = tmp.dir;
  const a = await startChildOrigin(t, 'a');
  const config = writeConfig(dir, `/api = upstream:api
[upstream.api]
servers = ${a.url}
health_path = /health
health_interval = 100ms
health_timeout = 2s ; the machine may be busy: only a dead origin should fail a check
fall = 2
rise = 2
`);
  const fx = await startFlexilib({ config, workers: 1, accessLog: false });
  t.after(() => fx.kill());
  assert.equal((await request(fx.port, '/api/x')).status, 200);
  await a.kill();
  await fx.waitForLog((l) => l.msg === 'upstream origin down');
  // Replace the only worker: the new one must know `a` is down without waiting for anything.
  const old = fx.logs.find((l) => l.msg === 'worker listening')!.workerPid as number;
  process.kill(old, 'SIGKILL');
  const fresh = await fx.waitForLog((l) => l.msg === 'worker listening' && l.workerPid !== old);
  // (With --port 0 and one worker, node:cluster closes the handle when the worker dies: the new one has a new port.)
  const t0 = performance.now();
  const r = await request(fresh.port as number, '/api/x', { agent: false });
  assert.equal(r.status, 503);
  assert.equal(r.body, 'route "/api" (pool "api"): no healthy origin (0 of 1 healthy)\n');
  assert.ok(performance.now() - t0 < 1000);
});

test('an origin that does not accept connections: 504 after connect_timeout, then down', { timeout: 60_000 }, async (t) => {
  const tmp = tempDir('upstream');
  t.after(() => tmp.cleanup());
  const dir = tmp.dir;
  // A stopped process with a full accept queue: the kernel drops further SYNs, so connects hang.
  const frozen = await startChildOrigin(t, 'frozen', 0, 1);
  frozen.proc.kill('SIGSTOP');
  t.after(() => void frozen.proc.kill('SIGCONT'));
  const fillers: net.Socket[] = [];
  t.after(() => fillers.forEach((s) => s.destroy()));
  for (let i = 0; i < 4; i++) fillers.push(net.connect(frozen.port, '127.0.0.1').on('error', () => {}));
  await sleep(200);
  const config = writeConfig(dir, `/api = upstream:api
[upstream.api]
servers = ${frozen.url}
connect_timeout = 300ms
health_path = /health
health_interval = 30s
health_timeout = 300ms
fall = 2
`);
  // fall = 2 with 30 s between checks: the start-up check is one failure, so the first request
  // still goes to the origin (504) and its passive report is the second.
  const fx = await startFlexilib({ config, workers: 1, accessLog: false });
  t.after(() => fx.kill());
  const r = await request(fx.port, '/api/x', { agent: false });
  assert.equal(r.status, 504);
  assert.equal(r.headers['x-flexilib-error'], 'FLX_UPSTREAM_TIMEOUT');
  assert.equal(r.body, `route "/api" (pool "api"): origin ${frozen.url} did not accept a connection within 300 ms (connect_timeout)\n`);
  const down = await fx.waitForLog((l) => l.msg === 'upstream origin down', { timeoutMs: 10_000 });
  assert.match(String(down.reason), /no answer within 300 ms|passive: UND_ERR_CONNECT_TIMEOUT/);
  assert.equal((await request(fx.port, '/api/x', { agent: false })).status, 503);
});
