/**
 * Every error answer flexilib itself sends carries `x-flexilib-error: CODE`
 * with the catalogue's status for that code: the worker's node:http path, the
 * fast lane (a native route's refused answer, an upstream route's answer) and
 * the admin API. Real requests to the real command.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { ERRORS, type ErrorCode } from '@flexilib/contract';
import { compilePlugin, exampleSource, fixture, rawRequest, request, startFlexilib, tempDir, writeConfig } from '@flexilib/test-support';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
}

function carries(what: string, r: Answer, code: ErrorCode): void {
  assert.equal(r.headers['x-flexilib-error'], code, `${what}: x-flexilib-error`);
  assert.equal(r.status, (ERRORS[code] as { status?: number }).status, `${what}: the status of ${code}`);
}

test('x-flexilib-error on every error answer: node:http path, fast lane, admin API', { timeout: 60_000 }, async (t) => {
  const { dir, cleanup } = tempDir('error-header');
  t.after(cleanup);
  await Promise.all([compilePlugin(exampleSource, path.join(dir, 'example.so')), compilePlugin(fixture('bad-header.c'), path.join(dir, 'bad-header.so'))]);
  const config = writeConfig(dir, '/app = example.so\n/bad = bad-header.so\n/gone = missing.so\n/empty = upstream:empty\n\n[route /app]\nmax_body = 1k\n\n[upstream.empty]\nservers =\n');
  const token = 'error-header-token';
  const fx = await startFlexilib({ config, workers: 1, accessLog: false, env: { ADMIN_TOKEN: token } });
  t.after(() => fx.kill());

  await t.test('the worker through node:http', async () => {
    carries('no route', await request(fx.port, '/nowhere'), 'FLX_NO_ROUTE');
    carries('body over max_body', await request(fx.port, '/app', { method: 'POST', body: 'x'.repeat(4096) }), 'FLX_BODY_TOO_LARGE');
    carries('two Host headers', await rawRequest(fx.port, { target: '/app', headers: [['Host', 'a'], ['Host', 'b']] }), 'FLX_BAD_REQUEST');
    carries('no Host header (HTTP/1.1)', await rawRequest(fx.port, { target: '/app', headers: [['X-A', '1']] }), 'FLX_BAD_REQUEST');
    carries('a missing library', await request(fx.port, '/gone'), 'FLX_LIB_NOT_FOUND');
    // Connection: close is the lane's to hand over: the same refusal, answered by node:http.
    carries('a bad plugin header (node:http)', await request(fx.port, '/bad', { headers: { connection: 'close' } }), 'FLX_PLUGIN_BAD_RESPONSE');
    carries('a head over --max-header-size', await rawRequest(fx.port, { target: '/app', headers: [['Host', 'a'], ['X-Big', 'y'.repeat(64 * 1024)]] }), 'FLX_HEADERS_TOO_LARGE');
    carries('a request llhttp refuses', await rawRequest(fx.port, { target: '/app', headers: [['Host', 'a'], ['Content-Length', 'x']] }), 'FLX_BAD_REQUEST');
  });

  await t.test('the fast lane', async () => {
    // A plain keep-alive GET to an inline native route or an upstream route is the lane's.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    carries('a bad plugin header (lane)', await request(fx.port, '/bad', { agent }), 'FLX_PLUGIN_BAD_RESPONSE');
    carries('an empty pool (lane)', await request(fx.port, '/empty', { agent }), 'FLX_UPSTREAM_UNAVAILABLE');
    assert.equal((await request(fx.port, '/app', { agent })).headers['x-flexilib-error'], undefined, 'a good answer has none');
  });

  await t.test('the admin API', async () => {
    carries('no endpoint', await request(fx.adminPort, '/nowhere'), 'FLX_ADMIN_NOT_FOUND');
    carries('a wrong method', await request(fx.adminPort, '/servers', { method: 'PUT' }), 'FLX_ADMIN_METHOD');
    carries('no token', await request(fx.adminPort, '/servers', { method: 'POST', body: '{}' }), 'FLX_ADMIN_UNAUTHORIZED');
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    carries('malformed JSON', await request(fx.adminPort, '/servers', { method: 'POST', headers: auth, body: '{x' }), 'FLX_ADMIN_BAD_JSON');
    const pool = await request(fx.adminPort, '/servers', { method: 'POST', headers: auth, body: JSON.stringify({ url: 'http://127.0.0.1:1', pool: 'nope' }) });
    carries('an unknown pool', pool, 'FLX_UPSTREAM_UNKNOWN_POOL');
    assert.equal(JSON.parse(pool.body).error.field, 'pool');
    carries('an unknown service', await request(fx.adminPort, '/services/none', { method: 'DELETE', headers: auth }), 'FLX_SERVICE_NOT_FOUND');
  });
});
