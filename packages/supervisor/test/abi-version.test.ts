/**
 * ABI evolution: a plugin built for another major version is refused with a
 * message naming the route, the library and both versions — by the server
 * (502, other routes unaffected) and by `flexilib invoke` (exit 1). A newer
 * minor version of the same major loads. The plugins are the real C example,
 * compiled here with the header's version export switched off and a version
 * of the test's choosing exported instead.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { rawRequest } from '@flexilib/plugin-abi/conformance';
import { compilePlugin, exampleSource, invoke as invokeFlexilib, startFlexilib, tempDir, writeConfig, type Flexilib } from '@flexilib/test-support';

const tmp = tempDir('abi');
const dir = tmp.dir;
const libs: Record<string, string> = {};

/** The C example exporting `version` as flexi_abi_version (undefined: no export at all). */
async function build(name: string, version: string | undefined): Promise<string> {
  const sources = [exampleSource];
  if (version !== undefined) {
    const src = path.join(dir, `${name}-version.c`);
    await writeFile(src, `#include <stdint.h>\n__attribute__((visibility("default"))) const uint32_t flexi_abi_version = ${version};\n`);
    sources.push(src);
  }
  return compilePlugin(sources, path.join(dir, `lib${name}.so`), { defines: ['FLEXI_NO_VERSION_EXPORT'] });
}

async function invoke(lib: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await invokeFlexilib([lib]);
  return { ...r, stdout: r.stdout.toString() };
}

let server: Flexilib;

before(async () => {
  [libs.v2, libs.v1minor, libs.none, libs.current] = await Promise.all([
    build('v2', '(2u << 16) | 3u'),
    build('v1minor', '(1u << 16) | 7u'),
    build('none', undefined),
    build('current', '(1u << 16)'),
  ]);
  const config = writeConfig(dir, [`/v2 = ${libs.v2}`, `/none = ${libs.none}`, `/minor = ${libs.v1minor}`, `/ = ${libs.current}`, ''].join('\n'));
  server = await startFlexilib({ config, workers: 1 });
});
after(async () => {
  await server?.stop();
  tmp.cleanup();
});

const get = (target: string) => rawRequest(server.host, server.port, { method: 'GET', target, headers: [['Host', 'localhost']], body: Buffer.alloc(0) });

test('the server answers 502 naming the route, the library and both versions, and keeps serving', async () => {
  for (let i = 0; i < 2; i++) {
    const r = await get('/v2/x');
    assert.equal(r.status, 502);
    const body = r.body.toString();
    assert.match(body, /^route "\/v2": /);
    assert.ok(body.includes(libs.v2), body);
    assert.match(body, /built for plugin ABI 2\.3; this host speaks ABI 1\.x/);
  }
  const ok = await get('/');
  assert.equal(ok.status, 200);
  assert.equal(ok.body.toString(), ' 1');
  const log = server.output();
  assert.match(log, /"code":"FLX_LIB_ABI"/);
  assert.match(log, /"route":"\/v2"/);
});

test('a library exporting no version is refused too, saying how to fix it', async () => {
  const r = await get('/none');
  assert.equal(r.status, 502);
  assert.match(r.body.toString(), /does not export flexi_abi_version: build it against flexilib\.h \(ABI 1\.x\)/);
});

test('a newer minor version of the same major loads (minor versions only add)', async () => {
  const r = await get('/minor');
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), ' 1');
});

test('flexilib invoke refuses the other major with exit 1 and the same message', async () => {
  const r = await invoke(libs.v2);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /FLX_LIB_ABI: library .*libv2\.so was built for plugin ABI 2\.3; this host speaks ABI 1\.x/);
  const minor = await invoke(libs.v1minor);
  assert.equal(minor.code, 0, minor.stderr);
});
