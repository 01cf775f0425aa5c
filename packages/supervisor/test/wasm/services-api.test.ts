/**
 * WASM services through the admin API, against the real server: register
 * (base64 and path), list, serve on /svc, /svc/, /svc/* but not /svcx, ahead
 * of proxy.ini's catch-all; every malformed module or field refused with 400
 * naming the field; duplicates 409; the bearer token enforced; delete. All of
 * it while a load runs against the server, which must see no failure. Then a
 * restart: the registered services are back, served from the state folder.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { admin, compilePlugin, compileWasm, exampleSource, load, rawRequest, repoRoot, startFlexilib, tempDir, until, writeConfig } from '@flexilib/test-support';

const FIXTURES = path.join(repoRoot, 'packages/worker/test/wasm/fixtures');

const TOKEN = 'test-token-123';
const H: Array<[string, string]> = [['Host', 'localhost']];

test('register, list, serve, refuse, delete under load; services survive a restart', { timeout: 180_000 }, async (t) => {
  const dirTmp = tempDir('wasm-services');
  t.after(() => dirTmp.cleanup());
  const dir = dirTmp.dir;
  const so = await compilePlugin(exampleSource, path.join(dir, 'example.so'));
  const mods = Object.fromEntries(
    await Promise.all(
      ['hello', 'misbehave', 'no-handler', 'foreign-import', 'wrong-abi', 'init-fails'].map(async (n) => [n, await compileWasm(path.join(FIXTURES, `${n}.c`), path.join(dir, `${n}.wasm`))] as const),
    ),
  );
  mods.command = await compileWasm(path.join(FIXTURES, 'command.c'), path.join(dir, 'command.wasm'), { flags: ['-mexec-model=command'] });
  const b64 = (name: string) => readFileSync(mods[name]).toString('base64');
  const config = writeConfig(dir, `/ = ${so}\n`);
  const env = { ADMIN_TOKEN: TOKEN };
  const server = await startFlexilib({ config, workers: 2, env });
  t.after(() => server.kill());
  const { port, adminPort } = server;
  const api = (method: string, p: string, body?: unknown, auth = true) => admin(adminPort, method, p, body, auth ? TOKEN : undefined);

  // Requests in a loop on 4 keep-alive connections until stopped (bounded by the test's time).
  const traffic = load(port, '/load', { concurrency: 4, maxMs: 170_000 });
  t.after(() => traffic.stop());

  // Auth: mutating calls need the token; reads do not.
  const noAuth = await api('POST', '/services', { name: 'svc', prefix: '/svc', module_base64: b64('hello') }, false);
  assert.equal(noAuth.status, 401);
  assert.equal(noAuth.json.error.code, 'FLX_ADMIN_UNAUTHORIZED');

  const reg = await api('POST', '/services', { name: 'svc', prefix: '/svc/', module_base64: b64('hello'), timeout: '2s', memory: '32m' });
  assert.equal(reg.status, 201, JSON.stringify(reg.json));
  assert.equal(reg.json.service.prefix, '/svc', 'trailing slash dropped');
  assert.deepEqual(reg.json.service.limits, { timeout_ms: 2000, memory_bytes: 32 * 1024 * 1024, instances: 4, idle_ms: 60_000, run: 'auto' });
  assert.equal(reg.json.workers_applied, 3, 'both workers and the spare applied the new set before POST answered');
  // Served at once, on every worker (several fresh connections spread over both).
  for (const target of ['/svc', '/svc/', '/svc/a/b?c=1', '/svc?q', '/svc', '/svc/']) {
    const r = await rawRequest(port, { target, headers: H });
    assert.equal(r.status, 200, target);
    assert.equal(r.body.toString(), `hello from ${target}`, target);
  }
  // Not /svcx: that falls through to proxy.ini's catch-all (the native example counts headers).
  assert.equal((await rawRequest(port, { target: '/svcx', headers: H })).body.toString(), ' 1');

  const byPath = await api('POST', '/services', { name: 'p2', prefix: '/p2', path: 'misbehave.wasm', instances: 2 });
  assert.equal(byPath.status, 201, JSON.stringify(byPath.json));
  assert.equal((await rawRequest(port, { target: '/p2/ok', headers: H })).body.toString(), 'ok');

  const list = await api('GET', '/services', undefined, false);
  assert.equal(list.status, 200);
  assert.deepEqual(list.json.services.map((s: { name: string; prefix: string }) => [s.name, s.prefix]), [['svc', '/svc'], ['p2', '/p2']]);
  assert.match(list.json.services[0].sha256, /^[0-9a-f]{64}$/);
  assert.equal((await api('GET', '/services/p2', undefined, false)).json.service.limits.instances, 2);
  const missing = await api('GET', '/services/nope', undefined, false);
  assert.equal(missing.status, 404);
  assert.equal(missing.json.error.code, 'FLX_SERVICE_NOT_FOUND');

  // Refusals: each names its field and says what was wrong.
  const refused: Array<[unknown, number, string, string, RegExp]> = [
    [{ name: 'svc', prefix: '/other', module_base64: b64('hello') }, 409, 'FLX_SERVICE_EXISTS', 'name', /already registered/],
    [{ name: 'svc2', prefix: '/svc', module_base64: b64('hello') }, 409, 'FLX_SERVICE_PREFIX_TAKEN', 'prefix', /already served by service "svc"/],
    [{ name: 'junk', prefix: '/junk', module_base64: Buffer.from('definitely not wasm').toString('base64') }, 400, 'FLX_SERVICE_MODULE_INVALID', 'module_base64', /is not a valid WebAssembly module/],
    [{ name: 'nh', prefix: '/nh', module_base64: b64('no-handler') }, 400, 'FLX_SERVICE_MODULE_INVALID', 'module_base64', /does not export handle_request/],
    [{ name: 'fi', prefix: '/fi', path: 'foreign-import.wasm' }, 400, 'FLX_SERVICE_MODULE_INVALID', 'path', /imports env\.host_secret \(function\), which the sandbox does not provide/],
    [{ name: 'abi', prefix: '/abi', module_base64: b64('wrong-abi') }, 400, 'FLX_SERVICE_MODULE_INVALID', 'module_base64', /built for plugin ABI 2\.0; this host speaks ABI 1\.x/],
    [{ name: 'init', prefix: '/init', module_base64: b64('init-fails') }, 400, 'FLX_SERVICE_MODULE_INVALID', 'module_base64', /flexi_init returned 7/],
    [{ name: 'cmd', prefix: '/cmd', module_base64: b64('command') }, 400, 'FLX_SERVICE_MODULE_INVALID', 'module_base64', /is a WASI command .* -mexec-model=reactor/],
    [{ name: 'small', prefix: '/small', module_base64: b64('hello'), memory: '256k' }, 400, 'FLX_SERVICE_MODULE_INVALID', 'module_base64', /above its cap of 256 KiB/],
    [{ name: 'bad name!', prefix: '/x', module_base64: b64('hello') }, 400, 'FLX_SERVICE_INVALID', 'name', /name: expected/],
    [{ name: 'root', prefix: '/', module_base64: b64('hello') }, 400, 'FLX_SERVICE_INVALID', 'prefix', /would take every request/],
    [{ name: 'rel', prefix: 'svc', module_base64: b64('hello') }, 400, 'FLX_SERVICE_INVALID', 'prefix', /must start with "\/"/],
    [{ name: 'both', prefix: '/both', module_base64: b64('hello'), path: 'hello.wasm' }, 400, 'FLX_SERVICE_INVALID', 'path', /exactly one of/],
    [{ name: 'none', prefix: '/none' }, 400, 'FLX_SERVICE_INVALID', 'module_base64', /exactly one of/],
    [{ name: 'gone', prefix: '/gone', path: 'no-such.wasm' }, 400, 'FLX_SERVICE_PATH_REFUSED', 'path', /"no-such\.wasm": no such file in the modules folder/],
    [{ name: 'to', prefix: '/to', module_base64: b64('hello'), timeout: 'forever' }, 400, 'FLX_SERVICE_INVALID', 'timeout', /timeout = "forever"/],
    [{ name: 'run', prefix: '/run', module_base64: b64('hello'), run: 'fiber' }, 400, 'FLX_SERVICE_INVALID', 'run', /run = "fiber": expected auto, loop, thread/],
    [{ name: 'x', prefix: '/x', module_base64: b64('hello'), color: 'red' }, 400, 'FLX_SERVICE_INVALID', 'color', /unknown field "color"/],
    [[1, 2], 400, 'FLX_SERVICE_INVALID', '', /expected a JSON object/],
  ];
  for (const [body, status, code, field, message] of refused) {
    const r = await api('POST', '/services', body);
    assert.equal(r.status, status, `${JSON.stringify(body).slice(0, 80)}: ${JSON.stringify(r.json)}`);
    assert.equal(r.json.error.code, code);
    assert.equal(r.json.error.field ?? '', field);
    assert.match(r.json.error.message, message);
  }

  // Delete: the prefix falls back to proxy.ini; a second delete is 404.
  const del = await api('DELETE', '/services/svc');
  assert.equal(del.status, 200);
  assert.deepEqual(del.json, { deleted: 'svc', workers_applied: 3 });
  assert.equal((await rawRequest(port, { target: '/svc/a', headers: H })).body.toString(), ' 1');
  assert.equal((await api('DELETE', '/services/svc')).status, 404);

  const { ok, errors: failures } = await traffic.stop();
  assert.deepEqual(failures, [], 'no request failed while services were registered and deleted');
  assert.ok(ok > 0);

  // A worker booting while a service is registered serves it too: kill one (after the load,
  // since a killed worker drops its connections), register while its replacement starts,
  // then every connection (spread over both workers) is served.
  const victim = server.logs.find((l) => l.msg === 'worker listening')!.workerPid as number;
  process.kill(victim, 'SIGKILL');
  await until('the supervisor to replace the killed worker', () => server.logs.some((l) => l.code === 'FLX_WORKER_EXIT' && l.workerPid === victim));
  const late = await api('POST', '/services', { name: 'late', prefix: '/late', module_base64: b64('hello') });
  assert.equal(late.status, 201, JSON.stringify(late.json));
  await until('the replacement worker to listen', () => server.logs.filter((l) => l.msg === 'worker listening').length === 3);
  for (let i = 0; i < 8; i++) assert.equal((await rawRequest(port, { target: '/late/x', headers: H })).body.toString(), 'hello from /late/x', `connection ${i}`);
  assert.equal((await api('DELETE', '/services/late')).status, 200);

  // State beside the config: the list, and only the modules still in use.
  const state = JSON.parse(readFileSync(path.join(dir, '.flexilib/services.json'), 'utf8'));
  assert.deepEqual(state.services.map((s: { name: string }) => s.name), ['p2']);
  assert.deepEqual(readdirSync(path.join(dir, '.flexilib/modules')), [`${state.services[0].sha256}.wasm`]);
  assert.ok(!existsSync(path.join(dir, '.flexilib/services.json.tmp')));

  // Restart: p2 is back without being registered again.
  await server.stop();
  const again = await startFlexilib({ config, workers: 1, env });
  t.after(() => again.kill());
  const after = await admin(again.adminPort, 'GET', '/services');
  assert.deepEqual(after.json.services.map((s: { name: string; prefix: string; limits: { instances: number } }) => [s.name, s.prefix, s.limits.instances]), [['p2', '/p2', 2]]);
  assert.equal((await rawRequest(again.port, { target: '/p2/ok', headers: H })).body.toString(), 'ok');
  assert.equal((await rawRequest(again.port, { target: '/svc', headers: H })).body.toString(), ' 1');
  assert.ok(again.logs.some((l) => l.msg === 'WASM services restored'));
});
