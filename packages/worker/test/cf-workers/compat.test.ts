/**
 * Compatibility against the real runtime: the same Worker scripts (a module
 * Worker on the platform globals, one built on Hono from npm, a
 * service-worker script) answer the same requests in flexilib and in a plain
 * workerd the test starts with its own config, and the answers must agree
 * field by field: status, headers (but for the ones that name the moment or
 * the hop: date, cf-ray, connection, keep-alive) and body.
 *
 * Also here, against both: ctx.waitUntil work finishing after the answer, and
 * ctx.passThroughOnException handing a failing request to its origin. And
 * flexilib's own: a local request.cf.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request, startFlexilib, tempDir, until, writeConfig, type Flexilib, type Reply } from '@flexilib/test-support';
import { requireWorkerd, startPlainWorkerd, type PlainWorkerd } from './plain-workerd.js';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const VARS = { GREETING: 'hi' };
/** Headers that differ between any two servers answering the same thing. */
const MOMENT = new Set(['date', 'cf-ray', 'connection', 'keep-alive']);

function comparable(r: Reply): { status: number; headers: string[]; body: string } {
  const headers: string[] = [];
  for (let i = 0; i < r.rawHeaders.length; i += 2) {
    const name = r.rawHeaders[i].toLowerCase();
    if (!MOMENT.has(name)) headers.push(`${name}: ${r.rawHeaders[i + 1]}`);
  }
  return { status: r.status, headers: headers.sort(), body: r.body };
}

/** Requests each Worker gets: [target, options]. */
const CASES: Record<string, Array<[string, Parameters<typeof request>[2]?]>> = {
  basic: [
    ['/basic/hello?name=ada'],
    ['/basic/echo?x=1&y=%20', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'some body ✓' }],
    ['/basic/digest?v=flexilib'],
    ['/basic/status'],
    ['/basic/redirect', { headers: { host: 'shop.example' } }],
    ['/basic/cookies'],
    ['/basic/request'],
    ['/basic/stream'],
    ['/basic/env'],
    ['/basic/throw'],
    ['/basic/nope'],
  ],
  hono: [
    ['/hono/users/42?q=z'],
    ['/hono/users', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"grace"}' }],
    ['/hono/greet'],
    ['/hono/header'],
    ['/hono/missing'],
  ],
  sw: [['/sw/anything'], ['/sw/x', { method: 'DELETE' }]],
};
const ENTRIES: Record<string, string> = { basic: 'basic.mjs', hono: 'hono-app.mjs', sw: 'service-worker.js' };

describe('Cloudflare Workers: flexilib answers as workerd does', () => {
  const tmp = tempDir('cf-compat');
  let f: Flexilib;
  const plain = new Map<string, PlainWorkerd>();
  let origin: http.Server;
  let originPort = 0;
  const sinkHits: Array<{ url: string; at: number }> = [];
  let sink: http.Server;
  let sinkPort = 0;

  before(async () => {
    requireWorkerd();
    const lines = ['/basic = worker:basic', '/hono = worker:hono', '/sw = worker:sw'];
    for (const [name, file] of Object.entries(ENTRIES)) {
      lines.push(`[worker.${name}]`, `module = ${path.join(FIXTURES, file)}`, 'vars.GREETING = hi', 'instances = 2');
    }
    f = await startFlexilib({ config: writeConfig(tmp.dir, lines.join('\n')), workers: 1, accessLog: false });
    for (const [name, file] of Object.entries(ENTRIES)) plain.set(name, await startPlainWorkerd(path.join(FIXTURES, file), path.join(tmp.dir, `plain-${name}`), VARS));
    origin = http.createServer((req, res) => res.end(`origin saw ${req.method} ${req.url}`));
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    originPort = (origin.address() as { port: number }).port;
    sink = http.createServer((req, res) => {
      sinkHits.push({ url: req.url!, at: performance.now() });
      res.end('ok');
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    sinkPort = (sink.address() as { port: number }).port;
  });
  after(async () => {
    await f?.stop();
    for (const p of plain.values()) await p.stop();
    origin?.close();
    sink?.close();
    tmp.cleanup();
  });

  for (const [name, cases] of Object.entries(CASES)) {
    it(`${name}: every answer agrees field by field`, async () => {
      const ref = plain.get(name)!;
      for (const [target, opts] of cases) {
        const theirs = comparable(await request(ref.port, target, opts));
        const ours = comparable(await request(f.port, target, opts));
        assert.deepEqual(ours, theirs, `${name} ${opts?.method ?? 'GET'} ${target}`);
      }
    });
  }

  it('ctx.waitUntil: the work goes on after the answer, in both', async () => {
    for (const port of [f.port, plain.get('basic')!.port]) {
      const before = sinkHits.length;
      const r = await request(port, `/basic/later?sink=http://127.0.0.1:${sinkPort}`);
      const answeredAt = performance.now();
      assert.equal(r.body, 'answered before the work');
      assert.equal(sinkHits.length, before, 'the work had not run when the answer came');
      await until('the waitUntil work reaching the sink', () => sinkHits.length > before, 5000);
      assert.equal(sinkHits.at(-1)!.url, '/done?from=%2Fbasic%2Flater');
      assert.ok(sinkHits.at(-1)!.at > answeredAt);
    }
  });

  it('ctx.passThroughOnException: a failing request goes on to its origin, in both', async () => {
    const opts = { headers: { host: `127.0.0.1:${originPort}` } };
    const ours = await request(f.port, '/basic/pass?z=1', opts);
    const theirs = await request(plain.get('basic')!.port, '/basic/pass?z=1', opts);
    assert.equal(ours.status, 200);
    assert.equal(ours.body, 'origin saw GET /basic/pass?z=1');
    assert.deepEqual(comparable(ours), comparable(theirs));
  });

  it("passThroughOnException aimed back at flexilib gets Cloudflare's loop error 1019 rather than looping", async () => {
    const r = await request(f.port, '/basic/pass', { headers: { host: `127.0.0.1:${f.port}` } });
    assert.equal(r.status, 508);
    assert.equal(r.body, 'error code: 1019');
    assert.equal(r.headers['x-flexilib-error'], 'FLX_CFW_LOOP');
  });

  it('request.cf is a local edge record (plain workerd has no edge fields without a cf blob)', async () => {
    const cf = JSON.parse((await request(f.port, '/basic/cf')).body) as Record<string, unknown>;
    assert.equal(cf.colo, 'LCL');
    assert.equal(cf.httpProtocol, 'HTTP/1.1');
    assert.equal(typeof cf.asn, 'number');
    const theirs = JSON.parse((await request(plain.get('basic')!.port, '/basic/cf')).body) as Record<string, unknown> | null;
    assert.equal(theirs?.colo, undefined, 'plain workerd knows no colo');
  });
});
