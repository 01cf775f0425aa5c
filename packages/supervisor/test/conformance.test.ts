/**
 * One table, every example plugin: the C, Zig and Rust examples each answer
 * every case of packages/plugin-abi/conformance/example-cases.json through a
 * real flexilib server (the C one on an inline and on a threaded route). Then
 * the `flexilib conformance` command itself: it passes, it reports every
 * difference, it refuses a malformed table, and it tests a running server.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { exampleCasesFile, loadCases, runCase } from '@flexilib/plugin-abi/conformance';
import { requireTool } from '@flexilib/test-support';
import { singleRouteConfig } from '../src/conformance.js';
import { spawnServer, type SpawnedServer } from '../src/spawn-server.js';

const exec = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../../..');
const cli = path.join(root, 'packages/supervisor/dist/cli.js');
const cases = loadCases(exampleCasesFile);

let dir: string;
let cExample: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'flexi-conformance-'));
  cExample = path.join(dir, 'libflexi_example.so');
  await exec('cc', ['-std=c11', '-O2', '-fPIC', '-shared', '-I', path.join(root, 'packages/plugin-abi/include'), '-o', cExample, path.join(root, 'examples/c-plugin/flexi_example.c')]);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Build an example with its own `pnpm build` script (incremental: fast when up to date). */
async function buildExample(name: string, artifact: string): Promise<string> {
  const folder = path.join(root, 'examples', name);
  await exec(process.execPath, [path.join(folder, 'build.mjs')], { cwd: folder, timeout: 240_000 });
  const lib = path.join(folder, artifact);
  assert.ok(existsSync(lib), `${name} did not produce ${lib}`);
  return lib;
}

const plugins: Array<{ name: string; lib: () => Promise<string>; mode: 'inline' | 'threaded' }> = [
  { name: 'C example, inline route', lib: async () => cExample, mode: 'inline' },
  { name: 'C example, threaded route', lib: async () => cExample, mode: 'threaded' },
  { name: 'Zig example', lib: () => buildExample('zig-plugin', 'zig-out/lib/libflexi_example_zig.so'), mode: 'inline' },
  { name: 'Rust example', lib: () => (requireTool('cargo', 'cargo'), buildExample('rust-plugin', 'target/release/libflexi_example_rust.so')), mode: 'inline' },
];

for (const p of plugins) {
  describe(`conformance table: ${p.name}`, () => {
    let server: SpawnedServer;
    before(async () => {
      const lib = await p.lib();
      server = await spawnServer({ config: singleRouteConfig(lib, p.mode, 2), cli, args: ['--no-access-log'] });
    });
    after(async () => {
      await server?.stop();
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
    const server = await spawnServer({ config: singleRouteConfig(cExample, 'inline', 1), cli, args: ['--no-access-log'] });
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
