/**
 * The admin API's edges, through the real listener: a malformed percent-escape
 * in a path parameter, a target that is no path, a body over the limit (with
 * and without Content-Length), origins on port 0 or with a 100 KB host name.
 * Each is a 4xx naming the field, never a 500 or a reset, and the supervisor
 * answers /healthz after each.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { admin, compilePlugin, exampleSource, rawRequest, request, startFlexilib, tempDir, writeConfig } from '@flexilib/test-support';

/** The admin listener's default body limit (admin-server.ts). */
const LIMIT = 16 * 1024 * 1024;

test('admin API edges answer 4xx naming the field, never 500 or a reset', { timeout: 60_000 }, async (t) => {
  const { dir, cleanup } = tempDir('admin-edges');
  t.after(cleanup);
  const so = await compilePlugin(exampleSource, path.join(dir, 'example.so'));
  const config = writeConfig(dir, `/api = upstream:api\n/ = ${so}\n[upstream.api]\nservers = http://127.0.0.1:9\n`);
  const server = await startFlexilib({ config, workers: 1, accessLog: false });
  t.after(() => server.kill());
  const alive = async (label: string) => assert.equal((await admin(server.adminPort, 'GET', '/healthz')).status, 200, `${label}: the supervisor answers`);

  const cases: Array<[string, string, unknown, number, string, string, RegExp]> = [
    ['DELETE', '/servers/%zz/80', undefined, 400, 'FLX_ADMIN_BAD_TARGET', 'ip', /ip: malformed percent-encoding/],
    ['DELETE', '/servers/127.0.0.1/%E0%A4%A', undefined, 400, 'FLX_ADMIN_BAD_TARGET', 'port', /port: malformed percent-encoding/],
    ['GET', '/services/%', undefined, 400, 'FLX_ADMIN_BAD_TARGET', 'name', /name: malformed percent-encoding/],
    ['DELETE', '/services/%c0%af', undefined, 400, 'FLX_ADMIN_BAD_TARGET', 'name', /malformed percent-encoding/],
    ['POST', '/servers', { url: 'http://127.0.0.1:0', pool: 'api' }, 400, 'FLX_UPSTREAM_BAD_URL', 'url', /port 0 is not a port/],
    ['POST', '/servers', { url: `http://${'a'.repeat(100_000)}:80`, pool: 'api' }, 400, 'FLX_UPSTREAM_BAD_URL', 'url', /100010 characters long: an origin is at most 512/],
    ['POST', '/servers', { url: `http://${'a'.repeat(64)}.example:80`, pool: 'api' }, 400, 'FLX_UPSTREAM_BAD_URL', 'url', /longer than DNS allows/],
    ['POST', '/servers', { url: `http://${'abcdefgh.'.repeat(30)}x:80`, pool: 'api' }, 400, 'FLX_UPSTREAM_BAD_URL', 'url', /longer than DNS allows/],
    ['POST', '/services', '', 400, 'FLX_ADMIN_BAD_JSON', 'body', /empty/],
    ['PUT', '/servers', undefined, 405, 'FLX_ADMIN_METHOD', 'method', /PUT is not allowed on \/servers/],
    ['GET', '/nope', undefined, 404, 'FLX_ADMIN_NOT_FOUND', 'path', /no admin endpoint \/nope/],
  ];
  for (const [method, target, body, status, code, field, why] of cases) {
    const label = `${method} ${target.slice(0, 40)} ${JSON.stringify(body)?.slice(0, 40)}`;
    const r = await admin(server.adminPort, method, target, body);
    assert.equal(r.status, status, `${label}: ${JSON.stringify(r.json).slice(0, 300)}`);
    assert.equal(r.json.error.code, code, label);
    assert.equal(r.json.error.field, field, label);
    assert.match(r.json.error.message, why, label);
    assert.ok(JSON.stringify(r.json).length < 2000, `${label}: a short answer, whatever the input's size`);
    await alive(label);
  }

  // A target that is no path (absolute-form with a broken host): 400, not a crashed supervisor.
  const abs = await rawRequest(server.adminPort, { target: 'http://[/services' });
  assert.equal(abs.status, 400, abs.body.toString());
  assert.equal(JSON.parse(abs.body.toString()).error.field, 'target');
  await alive('absolute-form target');

  // Over the body limit: 413 naming the body, answered (the rest is read and dropped), not reset.
  const big = JSON.stringify({ url: 'http://127.0.0.1:1', pool: 'api', pad: 'x'.repeat(LIMIT) });
  const declared = await request(server.adminPort, '/servers', { method: 'POST', headers: { 'content-type': 'application/json' }, body: big, timeoutMs: 30_000 });
  assert.equal(declared.status, 413, declared.body.slice(0, 200));
  assert.equal(JSON.parse(declared.body).error.field, 'body');
  assert.equal(declared.headers.connection, 'close');
  const chunked = await request(server.adminPort, '/servers', { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, body: big, timeoutMs: 30_000 });
  assert.equal(chunked.status, 413, chunked.body.slice(0, 200));
  assert.match(JSON.parse(chunked.body).error.message, new RegExp(`request body exceeds ${LIMIT} bytes`));
  await alive('body over the limit');

  // Nothing was added by any of it.
  const servers = await admin(server.adminPort, 'GET', '/servers');
  assert.deepEqual(servers.json.pools[0].servers.map((s: { url: string }) => s.url), ['http://127.0.0.1:9']);
  assert.equal(server.logs.filter((o) => o.msg === 'admin handler failed').length, 0, 'no handler reached 500');
});
