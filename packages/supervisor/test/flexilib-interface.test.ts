/**
 * FlexiLib's own plugin interface (handle_request(*Request) ?*Response, zigInit,
 * request_deinit), served as a variant of the native executor through the Zig
 * adapter: a Zig plugin that allocates everything from the allocator zigInit
 * hands it (detected: zigInit, no flexi_abi_version) and a C plugin returning
 * static memory (forced: abi = flexilib), both written for this test against
 * FlexiLib's published structs. The conformance table's sample behaviours,
 * bodies, many headers, a null Response, the arena in the access line, inline
 * and threaded routes, the fast lane against node:http, reload, crash
 * attribution, `flexilib invoke` and `flexilib conformance`.
 */
import assert from 'node:assert/strict';
import { copyFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exampleCasesFile, loadCases, runCases } from '@flexilib/plugin-abi/conformance';
import {
  compileFlexiLibZigPlugin,
  compilePlugin,
  crashOnce,
  exampleSource,
  fixture,
  RawConnection,
  rawRequest,
  runFlexilib,
  startFlexilib,
  tempDir,
  waitForAnswers,
  writeConfig,
  type Flexilib,
} from '@flexilib/test-support';

const tmp = tempDir();
const lib = (n: string) => path.join(tmp.dir, n);
const cases = loadCases(exampleCasesFile);

before(async () => {
  // Sequential: each zig build-lib takes both cores for a few seconds.
  await compileFlexiLibZigPlugin(lib('zig-v1.so'), { version: 'v1' });
  await compileFlexiLibZigPlugin(lib('zig.so'));
  // The adapter is a ReleaseSafe build: a Debug-built library must pass it the same allocator.
  await compileFlexiLibZigPlugin(lib('zig-debug.so'), { optimize: 'Debug' });
  await Promise.all([
    compilePlugin(fixture('flexilib-iface.c'), lib('c.so')),
    compilePlugin(fixture('flexilib-iface.c'), lib('c-v2.so'), { defines: ['VERSION="v2"'] }),
    compilePlugin(exampleSource, lib('example.so')),
  ]);
});
after(() => tmp.cleanup());

/** Every difference of the example table (its targets moved to `route`, if given) against the server, as "name: mismatch" lines. */
async function tableFailures(port: number, table = cases, route?: string): Promise<string[]> {
  const results = await runCases({ host: '127.0.0.1', port }, route ? table.map((c) => ({ ...c, request: { ...c.request, target: route } })) : table);
  return results.flatMap((r) => r.mismatches.map((m) => `${route ?? ''} ${r.name}: ${m}`));
}
const noEcho = cases.filter((c) => !(c.request.target ?? '/').startsWith('/echo'));

describe('served by the worker', () => {
  let server: Flexilib;
  before(async () => {
    const config = writeConfig(
      tmp.dir,
      [
        '/v1 = example.so',
        '/c-auto = c-auto.so',
        '/cthr = c.so',
        '/c = c.so',
        '/zthr = zig.so',
        '/ = zig.so',
        '[route /c]',
        'abi = flexilib',
        '[route /cthr]',
        'mode = threaded',
        'threads = 3',
        '[route /zthr]',
        'mode = threaded',
        'threads = 4',
      ].join('\n'),
    );
    copyFileSync(lib('c.so'), lib('c-auto.so'));
    server = await startFlexilib({ config, workers: 1 });
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  it('the Zig plugin (detected) answers the whole conformance table, inline and threaded', async () => {
    assert.deepEqual(await tableFailures(server.port), []);
    assert.deepEqual(await tableFailures(server.port, noEcho, '/zthr'), []);
  });

  it('the C plugin returning static memory answers it too with abi = flexilib, inline and threaded', async () => {
    for (const route of ['/c', '/cthr']) assert.deepEqual(await tableFailures(server.port, noEcho, route), []);
    const echo = await rawRequest(server.port, { method: 'POST', target: '/c/echo', headers: [['Host', 'x']], body: 'abc' });
    assert.equal(echo.status, 200);
    assert.equal(echo.body.toString(), 'POST /c/echo\nabc');
  });

  it('logs the interface each library was loaded with', async () => {
    await rawRequest(server.port, { target: '/v1', headers: [['Host', 'x']] });
    const zig = await server.waitForLog((l) => l.library === lib('zig.so') && l.interface === 'flexilib');
    assert.match(String(zig.msg), /library loaded through FlexiLib's interface/);
    await server.waitForLog((l) => l.library === lib('c.so') && l.interface === 'flexilib');
    const v1 = await server.waitForLog((l) => l.library === lib('example.so') && typeof l.interface === 'string');
    assert.equal(v1.interface, 'v1');
    assert.match(String(v1.msg), /through flexilib ABI 1/);
  });

  it('a C library without zigInit and without abi = is refused, saying how to load it', async () => {
    const r = await rawRequest(server.port, { target: '/c-auto', headers: [['Host', 'x']] });
    assert.equal(r.status, 502);
    assert.match(r.body.toString(), /does not export flexi_abi_version: .*set abi = flexilib in its \[route KEY\] section/);
  });

  it('a null Response answers 500 Internal Server Error', async () => {
    for (const target of ['/', '/c', '/zthr', '/cthr']) {
      const r = await rawRequest(server.port, { target, headers: [['Host', 'x'], ['x-null', '1']] });
      assert.equal(r.status, 500, target);
      assert.equal(r.body.toString(), 'Internal Server Error', target);
      assert.equal(r.headers['content-type'], 'text/plain', target);
    }
  });

  it('many request headers in, many response headers out', async () => {
    const headers: Array<[string, string]> = [['Host', 'x'], ['x-many-headers', '400']];
    for (let i = 0; i < 800; i++) headers.push([`x-in-${i}`, `v${i}`]);
    for (const target of ['/', '/c', '/zthr']) {
      const r = await rawRequest(server.port, { target, headers });
      assert.equal(r.status, 200, target);
      assert.equal(r.body.toString(), ' 802', target);
      for (const i of [0, 1, 199, 398, 399]) assert.equal(r.headers[`x-h-${i}`], String(i), `${target} x-h-${i}`);
      assert.equal(r.headers['x-h-400'], undefined);
      assert.equal(r.headers['x-custom-foo'], 'bar');
    }
  });

  it('bodies: a large echo byte-exact, an empty one, a latin1 one', async () => {
    const big = Buffer.alloc(300 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    for (const target of ['/echo', '/zthr/echo', '/c/echo']) {
      const r = await rawRequest(server.port, { method: 'PUT', target, headers: [['Host', 'x']], body: big });
      assert.equal(r.status, 200, target);
      assert.ok(r.body.equals(Buffer.concat([Buffer.from(`PUT ${target}\n`), big])), `${target}: the body comes back byte-exact`);
      const empty = await rawRequest(server.port, { method: 'PUT', target, headers: [['Host', 'x'], ['Content-Length', '0']] });
      assert.equal(empty.body.toString(), `PUT ${target}\n`);
    }
  });

  it('the access line reports the arena: pre-allocation, and what the Zig arena took beyond it', async () => {
    const from = server.logs.length;
    await rawRequest(server.port, { target: '/small', headers: [['Host', 'x']] });
    await rawRequest(server.port, { target: '/big', headers: [['Host', 'x'], ['x-alloc-kb', '256']] });
    const small = await server.waitForLog((l) => l.kind === 'access' && l.target === '/small', { from });
    const big = await server.waitForLog((l) => l.kind === 'access' && l.target === '/big', { from });
    assert.equal(small.preAlloc, 8192);
    assert.equal(small.alloc, 0, 'a small answer fits in the pre-allocated arena');
    assert.equal(big.preAlloc, 8192);
    assert.ok((big.alloc as number) >= 256 * 1024, `256 KiB from the arena beyond its pre-allocation: alloc ${big.alloc}`);
  });

  it('request_deinit runs after every request', async () => {
    const count = async () => Number((await rawRequest(server.port, { target: '/deinit-count', headers: [['Host', 'x']] })).body.toString());
    const a = await count();
    await rawRequest(server.port, { target: '/x', headers: [['Host', 'x']] });
    const b = await count();
    assert.equal(b - a, 2, `request_deinit ran once per request (${a} then ${b})`);
  });

  it('threaded: concurrent calls each get their own arena', async () => {
    const replies = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        rawRequest(server.port, { target: '/zthr', headers: [['Host', 'x'], ['x-log-this', `caller-${i}-`.repeat(50)], ['x-alloc-kb', '16']] }),
      ),
    );
    replies.forEach((r, i) => assert.equal(r.body.toString(), `${`caller-${i}-`.repeat(50)} 3`, `call ${i}`));
  });

  it('abi = v1 on a route forces flexilib\'s own interface', async () => {
    const config = writeConfig(tmp.dir, ['/ = zig.so', '[route /]', 'abi = v1'].join('\n'), 'forced.ini');
    const f = await startFlexilib({ config, workers: 1, accessLog: false });
    try {
      const r = await rawRequest(f.port, { headers: [['Host', 'x']] });
      assert.equal(r.status, 502);
      assert.match(r.body.toString(), /zig\.so does not export flexi_abi_version: build it against flexilib\.h \(ABI 1\.x\)\n$/);
    } finally {
      await f.stop();
    }
  });
});

describe('fast lane', () => {
  it('answers FlexiLib-interface routes byte for byte as node:http does (Date aside)', async () => {
    const config = writeConfig(tmp.dir, ['/c = c.so', '/ = zig.so', '[route /c]', 'abi = flexilib'].join('\n'), 'lane.ini');
    const [lane, plain] = await Promise.all([startFlexilib({ config, workers: 1 }), startFlexilib({ config, workers: 1, args: ['--no-fast-lane'] })]);
    try {
      const get = (target: string, headers: string[] = []) => `GET ${target} HTTP/1.1\r\nHost: test\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`;
      const requests = [get('/'), get('/c'), get('/', ['x-status: 404']), get('/c', ['x-throw: 1']), get('/', ['x-null: 1']), get('/c', ['x-null: 1']), get('/', ['x-many-headers: 50']), get('/echo?q=1'), get('/', ['x-alloc-kb: 64'])];
      const undated = (b: Buffer) => b.toString('latin1').replace(/\r\nDate: [^\r]*/, '\r\nDate: -');
      const answers: string[][] = [];
      for (const f of [lane, plain]) {
        const c = new RawConnection(f.port);
        const out: string[] = [];
        // The first request of each route loads its library through node:http; the lane serves loaded ones.
        for (const r of [...requests, ...requests]) {
          c.write(r);
          out.push(undated((await c.responses(1))[0]));
        }
        c.close();
        answers.push(out);
      }
      assert.deepEqual(answers[0], answers[1]);
      assert.match(answers[0][4], /^HTTP\/1\.1 500 Internal Server Error\r\n/);
    } finally {
      await Promise.all([lane.stop(), plain.stop()]);
    }
  });
});

describe('reload and crash, as for v1 libraries', () => {
  it('a new build replaces the old one by rename, a FlexiLib Zig library and a C one', async () => {
    copyFileSync(lib('zig-v1.so'), lib('live-zig.so'));
    copyFileSync(lib('c.so'), lib('live-c.so'));
    const config = writeConfig(tmp.dir, ['/c = live-c.so', '/ = live-zig.so', '[route /c]', 'abi = flexilib'].join('\n'), 'reload.ini');
    const server = await startFlexilib({ config, workers: 2, accessLog: false });
    try {
      await waitForAnswers(server.port, '/', (r) => r.body.startsWith('v1 '));
      await waitForAnswers(server.port, '/c', (r) => r.status === 200 && !r.body.startsWith('v2'));
      copyFileSync(lib('zig.so'), lib('.tmp-zig'));
      renameSync(lib('.tmp-zig'), lib('live-zig.so'));
      copyFileSync(lib('c-v2.so'), lib('.tmp-c'));
      renameSync(lib('.tmp-c'), lib('live-c.so'));
      await waitForAnswers(server.port, '/', (r) => r.status === 200 && !r.body.startsWith('v1'));
      await waitForAnswers(server.port, '/c', (r) => r.body.startsWith('v2 '));
      const reloaded = await server.waitForLog((l) => l.library === lib('live-zig.so') && l.interface === 'flexilib' && /reloaded/.test(String(l.msg)));
      assert.ok(reloaded);
    } finally {
      await server.stop();
    }
  });

  it('a crash inside a FlexiLib plugin is attributed to its route and library, and quarantines it', async () => {
    const config = writeConfig(tmp.dir, ['/z = zig.so', '/c = c.so', '[route /c]', 'abi = flexilib', 'mode = threaded'].join('\n'), 'crash.ini');
    const server = await startFlexilib({ config, workers: 1, accessLog: false, args: ['--quarantine-crashes', '2', '--quarantine-window', '60'] });
    try {
      for (const [target, route, library] of [['/c/crash', '/c', 'c.so'], ['/z/crash', '/z', 'zig.so'], ['/z/crash', '/z', 'zig.so']] as const) {
        const { exit } = await crashOnce(server, target);
        assert.ok(exit, `${target} killed its worker`);
        assert.equal(exit.route, route);
        assert.equal(exit.library, lib(library));
      }
      await waitForAnswers(server.port, '/z', (r) => r.status === 503);
      const ok = await rawRequest(server.port, { target: '/c', headers: [['Host', 'x']] });
      assert.equal(ok.status, 200, 'the other library, crashed once, still serves');
    } finally {
      server.kill();
    }
  });
});

describe('config reload', () => {
  it('adding abi = flexilib to a route on SIGHUP reloads its library through FlexiLib\'s interface', async () => {
    const config = writeConfig(tmp.dir, '/c = c.so\n', 'sighup.ini');
    const server = await startFlexilib({ config, workers: 1, accessLog: false });
    try {
      const before = await rawRequest(server.port, { target: '/c', headers: [['Host', 'x']] });
      assert.equal(before.status, 502);
      const from = server.logs.length;
      writeConfig(tmp.dir, '/c = c.so\n[route /c]\nabi = flexilib\n', 'sighup.ini');
      server.signal('SIGHUP');
      await server.waitForLog((l) => l.msg === 'config reloaded', { from, timeoutMs: 5000 });
      await waitForAnswers(server.port, '/c', (r) => r.status === 200 && /^ \d+$/.test(r.body));
      await server.waitForLog((l) => l.library === lib('c.so') && l.interface === 'flexilib', { from });
    } finally {
      await server.stop();
    }
  });
});

describe('the command line', () => {
  it('flexilib invoke on a FlexiLib library: detected for Zig (release and Debug builds), --abi flexilib for C', () => {
    const zig = runFlexilib(['invoke', lib('zig.so'), '-H', 'Host: x', '-H', 'x-log-this: hi']);
    assert.equal(zig.status, 0, zig.stderr);
    assert.equal(zig.stdout, 'HTTP/1.1 200 OK\nX-custom-foo: bar\ncontent-type: text/plain\ncontent-length: 4\n\nhi 2');
    const c = runFlexilib(['invoke', lib('c.so'), '--abi', 'flexilib', '-H', 'Host: iam', '-H', 'x-status: 201']);
    assert.equal(c.status, 0, c.stderr);
    assert.equal(c.stdout, 'HTTP/1.1 201 Created\nX-custom-foo: bar\ncontent-type: text/plain\ncontent-length: 12\n\niam response');
    const debug = runFlexilib(['invoke', lib('zig-debug.so'), '--path', '/echo', '-d', 'hi', '-H', 'x-alloc-kb: 100', '-H', 'x-many-headers: 2']);
    assert.equal(debug.status, 0, debug.stderr);
    assert.equal(debug.stdout, 'HTTP/1.1 200 OK\nX-custom-foo: bar\nx-h-0: 0\nx-h-1: 1\ncontent-type: text/plain\ncontent-length: 13\n\nPOST /echo\nhi');
    const nul = runFlexilib(['invoke', lib('zig.so'), '-H', 'x-null: 1']);
    assert.equal(nul.status, 1);
    assert.match(nul.stdout, /^HTTP\/1\.1 500 Internal Server Error\n/);
    const refused = runFlexilib(['invoke', lib('c.so')]);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /FLX_LIB_ABI: .*set abi = flexilib/);
    const bad = runFlexilib(['invoke', lib('c.so'), '--abi', 'flexilib2']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--abi "flexilib2" is not v1 or flexilib/);
  });

  it('flexilib conformance passes the example table on both plugins', () => {
    const zig = runFlexilib(['conformance', lib('zig.so')], { timeoutMs: 60_000 });
    assert.equal(zig.status, 0, `${zig.stdout}\n${zig.stderr}`);
    assert.match(zig.stdout, new RegExp(`^${cases.length} passed, 0 failed$`, 'm'));
    const c = runFlexilib(['conformance', lib('c.so'), '--abi', 'flexilib', '--mode', 'threaded', '--threads', '2'], { timeoutMs: 60_000 });
    assert.equal(c.status, 0, `${c.stdout}\n${c.stderr}`);
    assert.match(c.stdout, new RegExp(`^${cases.length} passed, 0 failed$`, 'm'));
  });
});
