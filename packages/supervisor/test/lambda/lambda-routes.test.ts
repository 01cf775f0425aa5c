/**
 * Lambda functions behind HTTP routes, real processes end to end: a bash
 * custom runtime (bootstrap + function.sh, curl on the Runtime API) under
 * `interpreter = bash`, an unmodified Hono app through hono/aws-lambda on
 * `runtime = nodejs`, the events checked with Powertools' zod schemas (v2 and
 * v1) and the raw mode; then Lambda's errors and limits: function error,
 * timeout (and a fresh environment after it), memory limit, init error, a
 * bootstrap that dies, concurrency (4 slow calls on 4 environments), 429
 * beyond the queue, scale to zero and the cold start after it. Prints the
 * warm p50 and the cold start for docs/faas.md (no timed assertion).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { APIGatewayProxyEventSchema, APIGatewayProxyEventV2Schema } from '@aws-lambda-powertools/parser/schemas';
import { request, startFlexilib, tempDir, until, writeConfig, type Reply } from '@flexilib/test-support';

const F = path.join(import.meta.dirname, 'fixtures');

const CONFIG = `
/bash = lambda:hello
/api = lambda:api
/v2 = lambda:echo2
/v1 = lambda:echo1
/raw = lambda:raw
/misc = lambda:misc
/init = lambda:broken
/dead = lambda:dead
/one = lambda:single
/trivial = lambda:trivial

[route /v2]
max_body = 6m

[lambda.hello]
bootstrap = ${F}/bash-fn/bootstrap
interpreter = bash
handler = function.handler
concurrency = 4
env.GREETING = hi

[lambda.api]
runtime = nodejs
code = ${F}/hono-api
handler = index.handler
env.GREETING = hey

[lambda.echo2]
runtime = nodejs
code = ${F}/echo-event
handler = index.handler

[lambda.echo1]
runtime = nodejs
code = ${F}/echo-event
handler = index.handler
event = v1

[lambda.raw]
runtime = nodejs
code = ${F}/node-misc
handler = index.handler
event = raw

[lambda.misc]
runtime = nodejs
code = ${F}/node-misc
handler = index.handler
timeout = 2s
memory = 256m
concurrency = 2

[lambda.broken]
runtime = nodejs
code = ${F}/broken
handler = index.handler

[lambda.dead]
bootstrap = ${F}/dead-fn/bootstrap

[lambda.single]
runtime = nodejs
code = ${F}/node-misc
handler = index.handler
concurrency = 1
queue = 0

[lambda.trivial]
runtime = nodejs
code = ${F}/trivial
handler = index.handler
idle = 400ms
`;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
/** Parse with a Powertools schema; a mismatch fails naming each path and problem. */
function checked<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: Array<{ path: PropertyKey[]; message: string }> } } }, v: unknown): T {
  const r = schema.safeParse(v);
  if (!r.success) assert.fail(`event does not match the schema: ${r.error.issues.map((i) => `${i.path.map(String).join('.')}: ${i.message}`).join('; ')}\n${JSON.stringify(v)}`);
  return r.data;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

test('lambda routes: bash and Node runtimes, AWS events, errors and limits as Lambda', { timeout: 120_000 }, async (t) => {
  const tmp = tempDir('lambda-routes');
  t.after(() => tmp.cleanup());
  const server = await startFlexilib({ config: writeConfig(tmp.dir, CONFIG), workers: 2, accessLog: false });
  t.after(() => server.stop());
  const { port } = server;
  const get = (target: string, opts: Parameters<typeof request>[2] = {}) => request(port, target, { timeoutMs: 20_000, ...opts });

  await t.test('a bash custom runtime answers through its bootstrap, warm across requests', async () => {
    const a = await get('/bash/x');
    assert.equal(a.status, 200, a.body);
    assert.equal(a.headers['x-runtime'], 'bash');
    assert.match(a.body, /^hi from bash, pid \d+$/);
    const b = await get('/bash/y');
    assert.equal(b.body, a.body, 'one warm environment (same bootstrap process) served both');
  });

  await t.test('an unmodified Hono app through hono/aws-lambda', async () => {
    const hello = await get('/api/hello?name=z');
    assert.equal(hello.status, 200);
    assert.deepEqual(JSON.parse(hello.body), { hello: 'z', greeting: 'hey' });
    const cookie = await get('/api/cookie', { headers: { cookie: 'q=1; r=2' } });
    assert.equal(cookie.body, 'cookies in: q=1; r=2');
    assert.deepEqual(cookie.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/']);
    const echo = await get('/api/echo', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'héllo' });
    assert.equal(echo.body, 'text/plain:héllo');
    const bytes = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80]);
    const rev = await get('/api/bytes', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: bytes });
    assert.deepEqual(rev.bytes, Buffer.from([...bytes].reverse()), 'binary both ways (base64 in the event and the result)');
  });

  await t.test('events match AWS schemas: payload 2.0, 1.0, and raw', async () => {
    const body = Buffer.from([0xde, 0xad, 0xbe, 0xef]);
    const r2 = await get('/v2/some/path?a=1&a=2&b=x%20y', { method: 'POST', headers: { cookie: 'c1=v1; c2=v2', 'x-rep': ['a', 'b'], 'content-type': 'application/octet-stream' }, body });
    assert.equal(r2.status, 200, r2.body);
    const e2 = checked(APIGatewayProxyEventV2Schema, JSON.parse(r2.body).event);
    assert.equal(e2.version, '2.0');
    assert.equal(e2.rawPath, '/v2/some/path');
    assert.equal(e2.rawQueryString, 'a=1&a=2&b=x%20y');
    assert.deepEqual(e2.queryStringParameters, { a: '1,2', b: 'x y' });
    assert.deepEqual(e2.cookies, ['c1=v1', 'c2=v2']);
    assert.equal(e2.headers['x-rep'], 'a,b');
    assert.equal(e2.headers.cookie, undefined);
    assert.equal(e2.requestContext.http.method, 'POST');
    assert.equal(e2.requestContext.http.sourceIp, '127.0.0.1');
    assert.equal(e2.isBase64Encoded, true);
    assert.deepEqual(Buffer.from(e2.body!, 'base64'), body);
    assert.ok(JSON.parse(r2.body).remaining > 0, 'context.getRemainingTimeInMillis from the deadline header');

    const r1 = await get('/v1/items/7?x=1&x=2', { method: 'PUT', headers: { 'content-type': 'application/json', 'x-rep': ['a', 'b'] }, body: '{"k":1}' });
    const e1 = checked(APIGatewayProxyEventSchema, JSON.parse(r1.body).event);
    assert.equal(e1.httpMethod, 'PUT');
    assert.equal(e1.path, '/v1/items/7');
    assert.deepEqual(e1.multiValueQueryStringParameters, { x: ['1', '2'] });
    assert.deepEqual(e1.queryStringParameters, { x: '2' });
    assert.deepEqual(e1.multiValueHeaders?.['x-rep'], ['a', 'b']);
    assert.equal(e1.body, '{"k":1}');
    assert.equal(e1.isBase64Encoded, false);
    assert.equal(e1.requestContext.identity.sourceIp, '127.0.0.1');
    assert.deepEqual(e1.pathParameters, { proxy: 'items/7' });

    // 5 MB of binary is a 6.7 MB event once base64: beyond Lambda's 6 MB payload, 413.
    const big = await get('/v2/big', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(5 * 1024 * 1024, 7) });
    assert.equal(big.status, 413);
    assert.deepEqual(JSON.parse(big.body), { message: 'Request Entity Too Large' });
    assert.equal(big.headers['x-flexilib-error'], 'FLX_LAMBDA_BODY_TOO_LARGE');

    const raw = await get('/raw', { method: 'POST', body: '{"action":"raw-ok"}' });
    assert.equal(raw.status, 200);
    assert.equal(JSON.parse(raw.body).action, 'raw-ok', 'the body itself was the event');
  });

  await t.test('a function error answers 502 as API Gateway does', async () => {
    const r = await get('/misc/throw');
    assert.equal(r.status, 502);
    assert.deepEqual(JSON.parse(r.body), { message: 'Internal Server Error' });
    assert.equal(r.headers['x-flexilib-error'], 'FLX_LAMBDA_FUNCTION_ERROR', 'told apart from a 502 of the function itself');
  });

  await t.test('timeout: "Task timed out", the environment killed, a fresh one next', async () => {
    const before = JSON.parse((await get('/misc/ok')).body).pid as number;
    const from = server.logs.length;
    const r = await get('/misc/spin');
    assert.equal(r.status, 502);
    const line = await server.waitForLog((l) => l.code === 'FLX_LAMBDA_TIMEOUT', { from });
    assert.match(String(line.msg), /Task timed out after 2\.00 seconds$/);
    await until('the timed-out environment is killed', () => !alive(before));
    const after = await get('/misc/ok');
    assert.equal(after.status, 200);
    assert.notEqual(JSON.parse(after.body).pid, before);
  });

  await t.test('memory: over its limit the environment is killed and the error reported', async () => {
    const from = server.logs.length;
    const r = await get('/misc/hog');
    assert.equal(r.status, 502);
    const line = await server.waitForLog((l) => l.code === 'FLX_LAMBDA_MEMORY', { from });
    assert.match(String(line.msg), /above its 256 MB: killed/);
    await server.waitForLog((l) => l.lambda === 'misc' && /Runtime\.OutOfMemory/.test(String(l.msg)), { from });
    assert.equal((await get('/misc/ok')).status, 200, 'a fresh environment serves next');
  });

  await t.test('init error and a dead bootstrap: reported on the invocation, never stuck', async () => {
    const from = server.logs.length;
    assert.equal((await get('/init/x')).status, 502);
    const init = await server.waitForLog((l) => l.code === 'FLX_LAMBDA_INIT', { from });
    assert.match(String(init.msg), /Runtime\.ImportModuleError.*init failed on purpose/);
    assert.equal((await get('/init/x')).status, 502, 'tried again with a fresh environment');
    assert.equal((await get('/dead')).status, 502);
    const dead = await server.waitForLog((l) => l.code === 'FLX_LAMBDA_EXIT', { from });
    assert.match(String(dead.msg), /exited during init \(exit status 3\)/);
    await server.waitForLog((l) => l.lambda === 'dead' && l.msg === 'bootstrap giving up', { from });
    assert.equal((await get('/dead')).status, 502);
    // A warm environment that dies during an invocation: Runtime.ExitError, then a fresh one.
    assert.equal((await get('/misc/exit')).status, 502);
    await server.waitForLog((l) => l.code === 'FLX_LAMBDA_EXIT' && /exit status 3/.test(String(l.msg)) && /during invocation/.test(String(l.msg)), { from });
    assert.equal((await get('/misc/ok')).status, 200);
  });

  await t.test('concurrency: 4 slow calls at once run on 4 environments; beyond the queue, 429', async () => {
    const replies = await Promise.all(Array.from({ length: 4 }, () => get('/bash/sleep')));
    for (const r of replies) assert.equal(r.status, 200, r.body);
    const pids = new Set(replies.map((r) => r.body.split('pid ')[1]));
    assert.equal(pids.size, 4, `four environments served the four calls together: ${[...pids].join(', ')}`);
    // concurrency = 1, queue = 0: a second call while one runs is throttled.
    const slow = get('/one/sleep');
    await new Promise((r) => setTimeout(r, 300));
    const second = await get('/one/ok');
    assert.equal(second.status, 429);
    assert.deepEqual(JSON.parse(second.body), { message: 'Too Many Requests' });
    assert.equal(second.headers['x-flexilib-error'], 'FLX_LAMBDA_THROTTLED');
    assert.equal((await slow).status, 200);
  });

  await t.test('scale to zero, cold start; figures', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    const cold: number[] = [];
    for (let i = 0; i < 3; i++) {
      const first = await get('/trivial', { agent });
      assert.equal(first.body, 'ok');
      const pid = Number(first.headers['x-pid']);
      await until('the idle environment is stopped (scale to zero)', () => !alive(pid), 10_000);
      const start = performance.now();
      const r: Reply = await get('/trivial', { agent });
      cold.push(performance.now() - start);
      assert.equal(r.body, 'ok');
    }
    const coldLogs = server.logs.length;
    const warm: number[] = [];
    for (let i = 0; i < 300; i++) {
      const start = performance.now();
      const r = await get('/trivial', { agent });
      warm.push(performance.now() - start);
      assert.equal(r.status, 200);
    }
    // The Init Durations of the cold starts (the first is the initial one), from their REPORT records.
    const inits = server.logs.slice(0, coldLogs).filter((l) => l.lambda === 'trivial' && /^REPORT .*Init Duration/.test(String(l.msg))).map((l) => Number(/Init Duration: ([\d.]+)/.exec(String(l.msg))![1]));
    console.log(`# figures: trivial Node Lambda through an HTTP route: warm p50 ${median(warm).toFixed(2)} ms (300 requests, keep-alive), cold start after scale to zero ${median(cold).toFixed(1)} ms (median of 3; Init Duration ${inits.slice(1, 4).map((i) => i.toFixed(1)).join(', ')} ms)`);
  });
});
