/**
 * Property-based fuzzing of the admin API against a real running flexilib
 * (fast-check): random methods, targets (known routes, random segments,
 * malformed percent-escapes, absolute-form, huge), headers and bodies (JSON of
 * every shape, the known fields with values of every type, non-JSON bytes),
 * with and without the bearer token. Every call gets an answer below 500, and
 * the supervisor stays alive and serving traffic. Origins the calls may add
 * are only ever 127.0.0.1 (health checks stay on this machine).
 *
 * Bounded: FUZZ_RUNS calls (default 300). A failure prints fast-check's seed
 * and path; replay with FUZZ_SEED=<seed>.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { admin, compilePlugin, exampleSource, rawRequest, startFlexilib, tempDir, writeConfig } from '@flexilib/test-support';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const TOKEN = 'fuzz-token';

const segment = fc.oneof(
  fc.constantFrom('servers', 'services', 'stats', 'detail', 'healthz', 'readyz', 'metrics', '127.0.0.1', '9001', 'api', 'svc', '%', '%zz', '%E0%A4%A', '%c0%af', '%2F', '..', '.', '', '0', '65536', '-1'),
  fc.string({ maxLength: 12 }).map(encodeURIComponent),
  fc.string({ unit: 'binary', maxLength: 8 }).map((s) => s.replace(/[\x00-\x20\x7f#?]/g, '%')),
);
const target = fc.oneof(
  fc.constantFrom('/servers', '/services', '/stats', '/stats/detail', '/healthz', '/readyz', '/metrics', '/servers/127.0.0.1/9001', '/services/svc', '*', 'http://[/x', 'http://admin/servers', '//servers', '/services?x=%zz', '/servers/127.0.0.1/9001?pool=%'),
  fc.array(segment, { maxLength: 4 }).map((s) => `/${s.join('/')}`),
  fc.tuple(fc.array(segment, { maxLength: 3 }), fc.string({ maxLength: 10 })).map(([s, q]) => `/${s.join('/')}?${encodeURIComponent(q)}=%`),
);
const anyValue = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.string({ maxLength: 30 }), fc.constantFrom('', 'x'.repeat(70_000), null, true, -1, 1e308, 0.5));
const url = fc.oneof(
  fc.integer({ min: 0, max: 70_000 }).map((p) => `http://127.0.0.1:${p}`),
  fc.constantFrom('http://127.0.0.1', 'https://127.0.0.1:1', 'http://127.0.0.1:1/path', 'http://u:p@127.0.0.1:1', 'ftp://127.0.0.1:21', 'http://[::1', 'http://127.0.0.1:9001#f', `http://${'a'.repeat(300)}:1`, 'not a url'),
  fc.string({ maxLength: 20 }).filter((s) => !s.includes('://')),
);
const field = fc.constantFrom('url', 'pool', 'name', 'prefix', 'module_base64', 'path', 'timeout', 'memory', 'instances', 'idle', '__proto__', 'constructor', 'x');
const object = fc.dictionary(field, fc.oneof(anyValue, url, fc.constantFrom('api', 'svc', '/svc', '/', 'AGFzbQEAAAA=', '/dev/zero', '/etc/passwd', 'proxy.ini', '../x.wasm', '10s', '64m', '0')), { maxKeys: 6 });
const body = fc.oneof(
  fc.constant(undefined),
  object,
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom('', '{', '{"url": ', '[1]', 'null', '"x"', '\u0000', '{"a":1}{"b":2}', '\ufeff{}'),
  fc.string({ unit: 'binary', maxLength: 200 }),
);
const call = fc.record({
  method: fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'HEAD', 'OPTIONS'),
  target,
  body,
  token: fc.constantFrom(TOKEN, undefined, 'wrong', ''),
});

/** One call on a raw socket (targets node's client refuses, any body); resolves with the status, 0 when no answer came. */
function send(port: number, c: { method: string; target: string; body: unknown; token?: string }): Promise<number> {
  const payload = c.body === undefined ? undefined : Buffer.from(typeof c.body === 'string' ? c.body : JSON.stringify(c.body));
  let head = `${c.method} ${c.target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n`;
  if (c.token !== undefined) head += `Authorization: Bearer ${c.token}\r\n`;
  if (payload) head += `Content-Type: application/json\r\nContent-Length: ${payload.length}\r\n`;
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer within 15 s to ${c.method} ${c.target.slice(0, 80)}`));
    }, 15_000);
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(Buffer.concat(chunks).toString('latin1'));
      resolve(m ? Number(m[1]) : 0);
    });
    sock.write(`${head}\r\n`);
    if (payload) sock.write(payload);
  });
}

test('admin API under random calls: always an answer below 500, the supervisor alive', { timeout: 240_000 }, async (t) => {
  const { dir, cleanup } = tempDir('admin-fuzz');
  t.after(cleanup);
  const so = await compilePlugin(exampleSource, path.join(dir, 'example.so'));
  const config = writeConfig(dir, `/api = upstream:api\n/ = ${so}\n[upstream.api]\nservers = http://127.0.0.1:9\n`);
  const server = await startFlexilib({ config, workers: 1, accessLog: false, env: { ADMIN_TOKEN: TOKEN } });
  t.after(() => server.kill());
  const statuses = new Map<number, number>();
  let exited = false;
  void server.exited.then(() => (exited = true));

  await fc.assert(
    fc.asyncProperty(call, async (c) => {
      assert.ok(!exited, 'the supervisor is running');
      const status = await send(server.adminPort, c);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      assert.ok(status >= 200 && status < 500, `${c.method} ${c.target.slice(0, 80)} answered ${status || 'nothing'}`);
    }),
    { numRuns: RUNS, seed: SEED, verbose: 1, includeErrorInReport: true },
  );
  assert.ok(!exited, 'the supervisor is running');
  assert.equal((await admin(server.adminPort, 'GET', '/healthz')).status, 200);
  assert.equal((await rawRequest(server.port, { target: '/' })).status, 200, 'traffic is still served');
  assert.equal(server.logs.filter((o) => o.msg === 'admin handler failed').length, 0, 'no handler threw');
  // Refusals and successes were both exercised.
  const codes = [...statuses.keys()];
  assert.ok(codes.some((s) => s < 300) && codes.some((s) => s >= 400), JSON.stringify([...statuses]));
});
