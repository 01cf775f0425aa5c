/** This folder's C fixtures (modules that misbehave on purpose), compiled by the WASM tests with compileWasm, and the checks two tests share. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { compilePlugin, compileWasm, exampleSource, rawRequest, startFlexilib, tempDir, until, writeConfig } from '@flexilib/test-support';

export const FIXTURES = path.join(import.meta.dirname, 'fixtures');

export const H: Array<[string, string]> = [['Host', 'localhost']];

/**
 * One worker (so everything shares one event loop) serving the example as .so
 * (/native) and .wasm (/example), and misbehave.c on /loop (1.5 s limit),
 * /blowup (16 MiB cap) and /, those three with `run`.
 */
export async function misbehavingServer(t: { after(fn: () => unknown): void }, run: 'loop' | 'thread') {
  const dirTmp = tempDir(`wasm-misbehave-${run}`);
  t.after(() => dirTmp.cleanup());
  const dir = dirTmp.dir;
  const bad = await compileWasm(path.join(FIXTURES, 'misbehave.c'), path.join(dir, 'misbehave.wasm'));
  const example = await compileWasm(exampleSource, path.join(dir, 'example.wasm'));
  const so = await compilePlugin(exampleSource, path.join(dir, 'example.so'));
  const lines = [`/native = ${so}`, `/example = ${example}`, `/loop = ${bad}`, `/blowup = ${bad}`, `/ = ${bad}`, ''];
  lines.push('[route /loop]', 'timeout = 1500ms', `run = ${run}`, '[route /blowup]', 'memory = 16m', `run = ${run}`, '[route /]', `run = ${run}`, '');
  const server = await startFlexilib({ config: writeConfig(dir, lines.join('\n')), workers: 1, args: ['--log-level', 'debug'] });
  t.after(() => server.kill());
  return server;
}

/** A trap, the memory cap (a trap and a soft failure), proc_exit and a response outside memory answer as they must. */
export async function assertFailuresAnswered(port: number): Promise<void> {
  const trap = await rawRequest(port, { target: '/trap', headers: H });
  assert.equal(trap.status, 500);
  assert.match(trap.body.toString(), /route "\/": WASM module .*misbehave\.wasm trapped: unreachable/);

  const blow = await rawRequest(port, { target: '/blowup', headers: H });
  assert.equal(blow.status, 500);
  assert.match(blow.body.toString(), /trapped: unreachable \(linear memory at \d+(\.\d)? MiB of its 16 MiB cap\)/);
  const soft = await rawRequest(port, { target: '/blowup-soft', headers: H });
  assert.equal(soft.status, 500);
  assert.match(soft.body.toString(), /handle_request returned 1 with its linear memory at \d+(\.\d)? MiB of its 16 MiB cap; a request probably needed more/);

  const exit = await rawRequest(port, { target: '/exit', headers: H });
  assert.equal(exit.status, 500);
  assert.match(exit.body.toString(), /called proc_exit\(3\)/);

  const badPtr = await rawRequest(port, { target: '/bad-pointer', headers: H });
  assert.equal(badPtr.status, 502);
  assert.match(badPtr.body.toString(), /returned an invalid response: the body \(4096 bytes at 4294963200\) lies outside the module's memory/);
}

/** Each failure was logged with its code and route. */
export async function assertFailuresLogged(server: { logs: Array<Record<string, unknown>> }): Promise<void> {
  for (const code of ['FLX_WASM_TIMEOUT', 'FLX_WASM_TRAP', 'FLX_WASM_MEMORY', 'FLX_WASM_EXIT', 'FLX_WASM_BAD_RESPONSE']) {
    await until(`${code} logged with its route`, () => server.logs.some((l) => l.code === code && typeof l.route === 'string'));
  }
}
