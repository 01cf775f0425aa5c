/**
 * The management API (Weldr's shape) on the admin listener: add and remove
 * origins under load, in-flight requests of a removed origin finish, bad
 * input gets 400 with the field, changes persist across a restart, and the
 * bearer token guards mutations.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { admin, load, request, sleep, startFlexilib, tempDir, until, writeConfig } from '@flexilib/test-support';
import { startOrigin } from './origins.js';

test('add and remove origins under load; persist across a restart', { timeout: 60_000 }, async (t) => {
  const tmp = tempDir('upstream');
  t.after(() => tmp.cleanup());
  const dir = tmp.dir;
  const a = await startOrigin(t, 'a');
  const b = await startOrigin(t, 'b');
  const held: Array<() => void> = [];
  const c = await startOrigin(t, 'c', (req, res) => {
    req.resume();
    if (req.url === '/api/slow') {
      // Held until the test releases it: proves a removed origin's in-flight request finishes.
      held.push(() => res.end('slow done'));
      return;
    }
    res.end('c');
  });
  const config = writeConfig(dir, `/api = upstream:api
/other = upstream:other

[upstream.api]
servers = ${a.url}
health_path = /health
health_interval = 300ms
health_timeout = 2s ; the machine may be busy: only a dead origin should fail a check

[upstream.other]
servers = ${a.url}
health_path = /health
`);
  let fx = await startFlexilib({ config, workers: 2, accessLog: false });
  t.after(() => fx.kill());
  const traffic = load(fx.port, '/api/x', { concurrency: 6, maxMs: 40_000 });
  await until('traffic', () => traffic.result.ok > 100, 10_000);

  // Add b: every worker sends it traffic within a second.
  const added = await admin(fx.adminPort, 'POST', '/servers', { url: b.url, pool: 'api' });
  assert.equal(added.status, 201);
  assert.equal(added.json.created, true);
  assert.deepEqual(
    { url: added.json.server.url, ip: added.json.server.ip, port: added.json.server.port, source: added.json.server.source, healthy: added.json.server.healthy },
    { url: b.url, ip: '127.0.0.1', port: b.port, source: 'api', healthy: true },
  );
  await until('b to get traffic within 1 s', () => b.hits > 0, 1000);
  const bBefore = b.hits;
  await until('b to keep getting traffic', () => b.hits > bBefore + 20, 5000);

  // Adding it again changes nothing (200, created false).
  const again = await admin(fx.adminPort, 'POST', '/servers', { url: `${b.url}/`, pool: 'api' });
  assert.equal(again.status, 200);
  assert.equal(again.json.created, false);

  // Add c, start a slow request, then remove c: the slow request still completes.
  assert.equal((await admin(fx.adminPort, 'POST', '/servers', { url: c.url, pool: 'api' })).status, 201);
  await until('c to get traffic', () => c.hits > 0, 1000);
  const slowReplies: Array<Promise<{ status: number; body: string }>> = [];
  // Slow requests until one is held on c (a and b answer them at once).
  for (let i = 0; i < 60 && held.length === 0; i++) {
    slowReplies.push(request(fx.port, '/api/slow', { agent: false }));
    await sleep(20);
  }
  await until('a slow request held on c', () => held.length > 0, 5000);
  const removedC = await admin(fx.adminPort, 'DELETE', `/servers/127.0.0.1/${c.port}`);
  assert.equal(removedC.status, 200);
  assert.deepEqual(removedC.json.removed, [{ pool: 'api', url: c.url }]);
  await sleep(200);
  const cHits = c.hits;
  for (const release of held) release();
  const slowDone = await Promise.all(slowReplies);
  assert.ok(slowDone.some((r) => r.status === 200 && r.body === 'slow done'), JSON.stringify(slowDone));
  for (const r of slowDone) assert.equal(r.status, 200);
  await sleep(300);
  assert.equal(c.hits, cHits, 'a removed origin gets no new requests');

  // Remove a (configured) from pool api only: within a second it gets no more of /api.
  const removedA = await admin(fx.adminPort, 'DELETE', `/servers/127.0.0.1/${a.port}?pool=api`);
  assert.deepEqual(removedA.json.removed, [{ pool: 'api', url: a.url }]);
  await sleep(1000);
  const aHits = a.hits;
  await sleep(500);
  assert.equal(a.hits, aHits, 'a still got /api traffic after its removal');
  assert.equal((await request(fx.port, '/other/x')).headers['x-origin'], 'a', 'pool "other" keeps a');

  const r = await traffic.stop();
  assert.equal(r.failed, 0, r.errors.join('\n'));

  // GET /servers shows the result, and the state file holds the API's changes.
  const servers = await admin(fx.adminPort, 'GET', '/servers');
  const api = servers.json.pools.find((p: { name: string }) => p.name === 'api');
  assert.deepEqual(api.servers.map((s: { url: string }) => s.url), [b.url]);
  const state = JSON.parse(readFileSync(`${config}.upstreams.json`, 'utf8'));
  assert.deepEqual(state, { version: 1, pools: { api: { added: [b.url], removed: [a.url] } } });

  // Restart: the changes survive.
  await fx.stop();
  fx = await startFlexilib({ config, workers: 2, accessLog: false });
  t.after(() => fx.kill());
  const after = await admin(fx.adminPort, 'GET', '/servers');
  assert.deepEqual(after.json.pools.find((p: { name: string }) => p.name === 'api').servers.map((s: { url: string; source: string }) => [s.url, s.source]), [[b.url, 'api']]);
  const seen = new Set<string>();
  for (let i = 0; i < 20; i++) seen.add(String((await request(fx.port, '/api/x')).headers['x-origin']));
  assert.deepEqual([...seen], ['b']);

  // Re-adding the configured origin clears its removal in the state file.
  assert.equal((await admin(fx.adminPort, 'POST', '/servers', { url: a.url, pool: 'api' })).status, 201);
  assert.deepEqual(JSON.parse(readFileSync(`${config}.upstreams.json`, 'utf8')), { version: 1, pools: { api: { added: [b.url], removed: [] } } });
});

test('bad input answers 400 with the reason and the field', { timeout: 30_000 }, async (t) => {
  const tmp = tempDir('upstream');
  t.after(() => tmp.cleanup());
  const dir = tmp.dir;
  const a = await startOrigin(t, 'a');
  const config = writeConfig(dir, `/api = upstream:api
/two = upstream:two
[upstream.api]
servers = ${a.url}
[upstream.two]
servers = ${a.url}
`);
  const fx = await startFlexilib({ config, workers: 1, accessLog: false });
  t.after(() => fx.kill());
  const cases: Array<[string, string, unknown, number, string, string | undefined, RegExp]> = [
    ['POST', '/servers', '{"url": ', 400, 'FLX_ADMIN_BAD_JSON', 'body', /malformed JSON/],
    ['POST', '/servers', '[1]', 400, 'FLX_UPSTREAM_BAD_REQUEST', 'body', /expected a JSON object/],
    ['POST', '/servers', { url: 'http://127.0.0.1:1', pool: 'nope' }, 400, 'FLX_UPSTREAM_UNKNOWN_POOL', 'pool', /unknown pool "nope" \(configured: api, two\)/],
    ['POST', '/servers', { url: 'http://127.0.0.1:1' }, 400, 'FLX_UPSTREAM_UNKNOWN_POOL', 'pool', /"pool" is required when the config has 2 pools/],
    ['POST', '/servers', { url: 'ftp://127.0.0.1:21', pool: 'api' }, 400, 'FLX_UPSTREAM_BAD_URL', 'url', /not an http\(s\) URL/],
    ['POST', '/servers', { url: 'not a url', pool: 'api' }, 400, 'FLX_UPSTREAM_BAD_URL', 'url', /is not a URL/],
    ['POST', '/servers', { url: 'http://127.0.0.1:1/path', pool: 'api' }, 400, 'FLX_UPSTREAM_BAD_URL', 'url', /has a path/],
    ['POST', '/servers', { pool: 'api' }, 400, 'FLX_UPSTREAM_BAD_URL', 'url', /"url" is required/],
    ['POST', '/servers', { url: 'http://127.0.0.1:1', pool: 'api', weight: 3 }, 400, 'FLX_UPSTREAM_BAD_REQUEST', 'weight', /unknown field "weight"/],
    ['DELETE', '/servers/127.0.0.1/http', undefined, 400, 'FLX_UPSTREAM_BAD_REQUEST', 'port', /port "http" is not an integer/],
    ['DELETE', '/servers/127.0.0.1/1', undefined, 404, 'FLX_UPSTREAM_NOT_FOUND', 'ip', /no origin 127\.0\.0\.1:1 in any pool/],
    ['DELETE', `/servers/127.0.0.1/${a.port}?pool=zzz`, undefined, 400, 'FLX_UPSTREAM_UNKNOWN_POOL', 'pool', /unknown pool "zzz"/],
  ];
  for (const [method, p, body, status, code, field, message] of cases) {
    const r = await admin(fx.adminPort, method, p, body);
    assert.equal(r.status, status, `${method} ${p} ${JSON.stringify(body)}: ${JSON.stringify(r.json)}`);
    assert.equal(r.json.error.code, code);
    assert.equal(r.json.error.field, field);
    assert.match(r.json.error.message, message);
  }
  // Nothing changed, and the proxy still serves.
  const servers = await admin(fx.adminPort, 'GET', '/servers');
  assert.deepEqual(servers.json.pools.map((p: { servers: unknown[] }) => p.servers.length), [1, 1]);
  assert.equal((await request(fx.port, '/api/x')).status, 200);
});

test('with ADMIN_TOKEN, mutations need the bearer token; reads do not', { timeout: 30_000 }, async (t) => {
  const tmp = tempDir('upstream');
  t.after(() => tmp.cleanup());
  const dir = tmp.dir;
  const a = await startOrigin(t, 'a');
  const b = await startOrigin(t, 'b');
  const config = writeConfig(dir, `/api = upstream:api
[upstream.api]
servers = ${a.url}
`);
  const token = 'test-token-0123456789';
  const fx = await startFlexilib({ config, workers: 1, env: { ADMIN_TOKEN: token }, accessLog: false });
  t.after(() => fx.kill());
  const body = { url: b.url, pool: 'api' };
  const none = await admin(fx.adminPort, 'POST', '/servers', body);
  assert.equal(none.status, 401);
  assert.equal(none.json.error.code, 'FLX_ADMIN_UNAUTHORIZED');
  assert.equal((await admin(fx.adminPort, 'POST', '/servers', body, 'wrong-token-0123456789')).status, 401);
  assert.equal((await admin(fx.adminPort, 'DELETE', `/servers/127.0.0.1/${a.port}`)).status, 401);
  assert.equal((await admin(fx.adminPort, 'GET', '/servers')).status, 200);
  assert.equal((await admin(fx.adminPort, 'GET', '/stats')).status, 200);
  assert.equal((await admin(fx.adminPort, 'GET', '/stats/detail')).status, 200);
  assert.equal((await admin(fx.adminPort, 'POST', '/servers', body, token)).status, 201);
  assert.equal((await admin(fx.adminPort, 'DELETE', `/servers/127.0.0.1/${a.port}`, undefined, token)).status, 200);
  await until('b to serve', async () => (await request(fx.port, '/api/x')).headers['x-origin'] === 'b', 2000);
});

test('the admin listener refuses to start beyond loopback without a token', { timeout: 30_000 }, async (t) => {
  const tmp = tempDir('upstream');
  t.after(() => tmp.cleanup());
  const dir = tmp.dir;
  const config = writeConfig(dir, `/api = upstream:api
[upstream.api]
servers = http://127.0.0.1:9
`);
  await assert.rejects(startFlexilib({ config, workers: 1, args: ['--admin-host', '0.0.0.0'], accessLog: false }), /beyond loopback: set ADMIN_TOKEN/);
});
