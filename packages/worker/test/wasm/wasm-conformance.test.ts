/**
 * The C example, built unchanged into a .so (cc) and a .wasm (zig cc), answers
 * every case of the conformance table identically: the WASM executor speaks
 * the same ABI as the native one. Plus what only size shows: a 16 MiB body
 * through the channel, the module's realloc'd overflow and flexi_wasm_release.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { exampleCasesFile, loadCases, runCase } from '@flexilib/plugin-abi/conformance';
import { compilePlugin, compileWasm, exampleSource, rawRequest, startFlexilib, tempDir, until, writeConfig } from '@flexilib/test-support';

test('the C example as .wasm passes the conformance table exactly like the .so', { timeout: 180_000 }, async (t) => {
  const dirTmp = tempDir('wasm-conf');
  t.after(() => dirTmp.cleanup());
  const dir = dirTmp.dir;
  const so = await compilePlugin(exampleSource, path.join(dir, 'example.so'));
  const wasm = await compileWasm(exampleSource, path.join(dir, 'example.wasm'));
  const [native, wasmServer] = await Promise.all([
    startFlexilib({ config: writeConfig(path.join(dir), `/ = ${so}\n`), workers: 1, args: ['--max-body', '32m'] }),
    (async () => {
      const subTmp = tempDir('wasm-conf-w');
      t.after(() => subTmp.cleanup());
      const sub = subTmp.dir;
      return startFlexilib({ config: writeConfig(sub, `/ = ${wasm}\n`), workers: 1, args: ['--max-body', '32m'] });
    })(),
  ]);
  t.after(() => Promise.all([native.kill(), wasmServer.kill()]));
  const cases = loadCases(exampleCasesFile);
  for (const c of cases) {
    const a = await runCase({ host: '127.0.0.1', port: native.port }, c);
    const b = await runCase({ host: '127.0.0.1', port: wasmServer.port }, c);
    assert.deepEqual(a.mismatches, [], `${c.name} (.so): ${a.mismatches.join('; ')}`);
    assert.deepEqual(b.mismatches, [], `${c.name} (.wasm): ${b.mismatches.join('; ')}`);
    assert.deepEqual({ status: b.response?.status, body: b.response?.body.toString('latin1') }, { status: a.response?.status, body: a.response?.body.toString('latin1') }, `${c.name}: .wasm and .so differ`);
  }

  // 16 MiB through the echo route: request area regrown, body realloc'd in the module, channel grown.
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
