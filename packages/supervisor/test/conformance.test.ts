/**
 * One table, every executor kind: the C, Zig and Rust examples each answer
 * every case of packages/plugin-abi/conformance/example-cases.json through a
 * real flexilib server (the C one on an inline and on a threaded route, as a
 * .wasm module, and behind an upstream route), all through the one runner of
 * @flexilib/plugin-abi/conformance. Then the `flexilib conformance` command
 * itself: it passes, it reports every difference, it refuses a malformed
 * table, and it tests a running server.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { exampleCasesFile, loadCases, rawRequest, runCase } from '@flexilib/plugin-abi/conformance';
import { compilePlugin, compileWasm, exampleSource, requireTool, startFlexilib, writeConfig, type Flexilib } from '@flexilib/test-support';
import { singleRouteConfig } from '../src/conformance.js';

const exec = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../../..');
const cli = path.join(root, 'packages/supervisor/dist/cli.js');
const cases = loadCases(exampleCasesFile);

let dir: string;
let cExample: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'flexi-conformance-'));
  cExample = path.join(dir, 'libflexi_example.so');
  await compilePlugin(exampleSource, cExample);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let configs = 0;
/** flexilib serving `ini` on one worker, without access log (the command's own settings). */
function serve(ini: string, workers = 1): Promise<Flexilib> {
  return startFlexilib({ config: writeConfig(dir, ini, `proxy-${++configs}.ini`), workers, accessLog: false });
}

/** Build an example with its own `pnpm build` script (incremental: fast when up to date). */
async function buildExample(name: string, artifact: string): Promise<string> {
  const folder = path.join(root, 'examples', name);
  await exec(process.execPath, [path.join(folder, 'build.mjs')], { cwd: folder, timeout: 240_000 });
  const lib = path.join(folder, artifact);
  assert.ok(existsSync(lib), `${name} did not produce ${lib}`);
  return lib;
}

/** Headers an upstream route adds on its way to the origin (docs/upstreams.md), and its connection's own. */
const PROXY_ADDED = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'connection', 'keep-alive']);

/**
 * An origin serving the C example's behaviour as a direct client sees it: it
 * relays each request to a flexilib serving the .so, less the headers the
 * proxy added (the example counts request headers), and its answer back.
 */
async function exampleOrigin(nativePort: number): Promise<{ port: number; close(): void }> {
  const server = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    let busy = false;
    const pump = async () => {
      if (busy) return;
      busy = true;
      try {
        for (;;) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) break;
          const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
          const [method, target] = lines[0].split(' ');
          const headers = lines.slice(1).map((l): [string, string] => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]);
          const length = Number(headers.find(([n]) => n.toLowerCase() === 'content-length')?.[1] ?? 0);
          if (buf.length < end + 4 + length) break;
          const body = buf.subarray(end + 4, end + 4 + length);
          buf = buf.subarray(end + 4 + length);
          const kept = headers.filter(([n]) => !PROXY_ADDED.has(n.toLowerCase()));
          sock.write((await rawRequest('127.0.0.1', nativePort, { method, target, headers: kept, body })).raw);
        }
      } catch (err) {
        sock.destroy(err as Error);
      } finally {
        busy = false;
      }
    };
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      void pump();
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

/** Each kind under test: the proxy.ini serving it at "/", and what to stop afterwards. */
const subjects: Array<{ name: string; config: () => Promise<{ ini: string; stop?: () => Promise<void> }> }> = [
  { name: 'C example, inline route', config: async () => ({ ini: singleRouteConfig(cExample, 'inline', 2) }) },
  { name: 'C example, threaded route', config: async () => ({ ini: singleRouteConfig(cExample, 'threaded', 2) }) },
  { name: 'C example as WASM', config: async () => ({ ini: singleRouteConfig(await compileWasm(exampleSource, path.join(dir, 'example.wasm')), 'inline', 2) }) },
  {
    name: 'C example behind an upstream route',
    config: async () => {
      const native = await serve(singleRouteConfig(cExample, 'inline', 2));
      const origin = await exampleOrigin(native.port);
      return {
        ini: `/ = upstream:example\n\n[upstream.example]\nservers = http://127.0.0.1:${origin.port}\n`,
        stop: async () => {
          origin.close();
          await native.stop();
        },
      };
    },
  },
  { name: 'Zig example', config: async () => ({ ini: singleRouteConfig(await buildExample('zig-plugin', 'zig-out/lib/libflexi_example_zig.so'), 'inline', 2) }) },
  {
    name: 'Rust example',
    config: async () => {
      requireTool('cargo', 'cargo');
      return { ini: singleRouteConfig(await buildExample('rust-plugin', 'target/release/libflexi_example_rust.so'), 'inline', 2) };
    },
  },
];

for (const p of subjects) {
  describe(`conformance table: ${p.name}`, () => {
    let server: Flexilib;
    let stopBehind: (() => Promise<void>) | undefined;
    before(async () => {
      const { ini, stop } = await p.config();
      stopBehind = stop;
      server = await serve(ini);
    });
    after(async () => {
      await server?.stop();
      await stopBehind?.();
    });
    for (const c of cases) {
      test(c.name, async () => {
        const r = await runCase(server, c);
        assert.deepEqual(r.mismatches, [], r.mismatches.join('\n'));
      });
    }
  });
}

interface Run { code: number; stdout: string; stderr: string }
async function conformance(args: string[]): Promise<Run> {
  try {
    const r = await exec(process.execPath, [cli, 'conformance', ...args], { timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('flexilib conformance (the command plugin authors run)', () => {
  test('passes the example table against the C example: one ok line per case, exit 0', async () => {
    const r = await conformance([cExample]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout.split('\n').filter((l) => l.startsWith('ok ')).length, cases.length);
    assert.match(r.stdout, new RegExp(`\n${cases.length} passed, 0 failed\n$`));
  });

  test('reports every difference of a failing case and exits 1', async () => {
    const table = path.join(dir, 'mine.json');
    await writeFile(table, JSON.stringify([
      { name: 'right', request: { headers: [['Host', 'h'], ['x-log-this', 'a']] }, expect: { status: 200, body: 'a 2' } },
      { name: 'wrong', request: { headers: [['Host', 'h']] }, expect: { status: 201, headers: { 'x-custom-foo': 'baz', 'content-type': null }, body: ' 9' } },
    ]));
    const r = await conformance([cExample, '--cases', table, '--mode', 'threaded']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^ok 1 - right\nnot ok 2 - wrong\n/);
    assert.match(r.stdout, /# status: expected 201, got 200/);
    assert.match(r.stdout, /# header x-custom-foo: expected "baz", got "bar"/);
    assert.match(r.stdout, /# header content-type: expected absent, got "text\/plain"/);
    assert.match(r.stdout, /# body: expected 2 bytes, got 2; first difference at byte 1: expected "9", got "1"/);
    assert.match(r.stdout, /1 passed, 1 failed\n$/);
  });

  test('runs against an already running server with --url', async () => {
    const server = await serve(singleRouteConfig(cExample, 'inline', 1));
    try {
      const r = await conformance(['--url', `http://127.0.0.1:${server.port}`]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`${cases.length} passed, 0 failed`));
    } finally {
      await server.stop();
    }
  });

  test('a library that fails to load fails every case with the server\'s reason', async () => {
    const r = await conformance([path.join(dir, 'absent.so')]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /# status: expected 200, got 502/);
    assert.match(r.stderr, /library not found/);
  });

  test('a malformed table or bad flags exit 2 naming the problem', async () => {
    const table = path.join(dir, 'broken.json');
    await writeFile(table, JSON.stringify([{ name: 'no status', request: {}, expect: {} }]));
    const runs = await Promise.all([
      conformance([cExample, '--cases', table]),
      conformance([cExample, '--mode', 'sideways']),
      conformance([]),
      conformance(['--url', 'ftp://x']),
    ]);
    assert.deepEqual(runs.map((r) => r.code), [2, 2, 2, 2]);
    assert.match(runs[0].stderr, /case 0 \("no status"\): expect\.status must be an HTTP status code/);
    assert.match(runs[1].stderr, /--mode "sideways" is not inline or threaded/);
    assert.match(runs[2].stderr, /give either one library path or --url/);
    assert.match(runs[3].stderr, /must be http:\/\//);
  });
});
