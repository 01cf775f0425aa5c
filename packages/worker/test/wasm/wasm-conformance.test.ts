/**
 * The C example, built unchanged into a .so (cc) and a .wasm (zig cc), answers
 * every case of the conformance table identically, with its calls on the
 * event loop (run = loop) and on an instance thread (run = thread): the WASM
 * executor speaks the same ABI as the native one, wherever the calls run. Plus what only size shows: a 16 MiB body
 * through the channel, the module's realloc'd overflow and flexi_wasm_release.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { exampleCasesFile, loadCases, runCase } from '@flexilib/plugin-abi/conformance';
import { compilePlugin, compileWasm, exampleSource, rawRequest, startFlexilib, tempDir, until, writeConfig } from '@flexilib/test-support';

/** A response as sent, but for its Date header (the one part that differs between two servers). */
const wire = (r: { raw: Buffer } | undefined) => r?.raw.toString('latin1').replace(/\r\ndate: [^\r]*/i, '');

test('the C example as .wasm passes the conformance table exactly like the .so', { timeout: 180_000 }, async (t) => {
  const dirTmp = tempDir('wasm-conf');
  t.after(() => dirTmp.cleanup());
  const dir = dirTmp.dir;
  const so = await compilePlugin(exampleSource, path.join(dir, 'example.so'));
  const wasm = await compileWasm(exampleSource, path.join(dir, 'example.wasm'));
  const wasmOn = async (run: 'loop' | 'thread') => {
    const subTmp = tempDir(`wasm-conf-${run}`);
    t.after(() => subTmp.cleanup());
    return startFlexilib({ config: writeConfig(subTmp.dir, `/ = ${wasm}\n[route /]\nrun = ${run}\n`), workers: 1, args: ['--max-body', '32m'] });
  };
  const [native, wasmServer, threadServer] = await Promise.all([startFlexilib({ config: writeConfig(path.join(dir), `/ = ${so}\n`), workers: 1, args: ['--max-body', '32m'] }), wasmOn('loop'), wasmOn('thread')]);
  t.after(() => Promise.all([native.kill(), wasmServer.kill(), threadServer.kill()]));
  const cases = loadCases(exampleCasesFile);
  for (const c of cases) {
    const a = await runCase({ host: '127.0.0.1', port: native.port }, c);
    assert.deepEqual(a.mismatches, [], `${c.name} (.so): ${a.mismatches.join('; ')}`);
    for (const [run, server] of [['loop', wasmServer], ['thread', threadServer]] as const) {
      const b = await runCase({ host: '127.0.0.1', port: server.port }, c);
      assert.deepEqual(b.mismatches, [], `${c.name} (.wasm, run = ${run}): ${b.mismatches.join('; ')}`);
      assert.deepEqual(wire(b.response), wire(a.response), `${c.name}: .wasm (run = ${run}) and .so differ`);
    }
  }
  assert.ok(!wasmServer.logs.some((l) => String(l.msg).includes('run on instance threads')), 'run = loop: every case on the event loop');

  // 16 MiB through the echo route: request area regrown, body realloc'd in the module (and on a thread, the channel grown).
  const big = Buffer.alloc(16 * 1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 131 + (i >>> 11)) & 0xff;
  const res = await rawRequest(wasmServer.port, { method: 'POST', target: '/echo', headers: [['Host', 'localhost']], body: big, timeoutMs: 60_000 });
  assert.equal(res.status, 200);
  const head = Buffer.from('POST /echo\n');
  assert.equal(res.body.length, head.length + big.length);
  assert.ok(res.body.subarray(0, head.length).equals(head));
  assert.ok(res.body.subarray(head.length).equals(big), '16 MiB echoed byte-exact');
  // The instance released its overflow: a small request after the big one is served normally.
  const after = await rawRequest(wasmServer.port, { headers: [['Host', 'localhost'], ['x-log-this', 'after']] });
  assert.equal(after.body.toString(), 'after 2');
  const bigEcho = (l: Record<string, unknown>) => l.kind === 'access' && l.target === '/echo' && l.method === 'POST' && (l.bytes as number) > big.length;
  await until('the big echo in the access log', () => wasmServer.logs.some(bigEcho));
  const access = wasmServer.logs.filter(bigEcho);
  assert.equal(access.length, 1);
  assert.ok((access[0].alloc as number) > big.length, 'access log reports the bytes taken beyond the arena');
});
