/**
 * What a worker loads is what its routes need (routing/executor-kinds.ts): a
 * real worker process started on native routes alone has not loaded the
 * modules of the other executor kinds nor undici, esbuild or worker_threads —
 * the memory they cost every worker is the gap docs/memory.md measures. When
 * a config then brings an upstream route, the worker loads that kind, applies
 * the control messages in the order they came, and proxies.
 *
 * The evidence is the process's own module list, recorded by a preload
 * (fixtures/record-modules.mjs); no memory figure is asserted.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DEFAULT_UPSTREAM_SETTINGS, loadConfig, type ToWorker } from '@flexilib/contract';
import { compilePlugin, eventually, exampleSource, request, tempDir, writeConfig } from '@flexilib/test-support';
import { forkWorker, type ForkedWorker } from './worker-process.js';

const recorder = fileURLToPath(new URL('./fixtures/record-modules.mjs', import.meta.url));
const tmp = tempDir('start-modules');
let lib: string;
before(async () => {
  lib = await compilePlugin(exampleSource, path.join(tmp.dir, 'libexample.so'));
});
after(() => tmp.cleanup());

/** Modules of the kinds a native-only worker must not load (paths in the worker's dist, and packages). */
const OTHER_KINDS: Array<[string, RegExp]> = [
  ['the upstream executor', /\/worker\/dist\/upstream\/proxy-executor\.js$/],
  ['the WASM runtime', /\/worker\/dist\/wasm\/(wasm-runtime|wasm-executor|instance-pool|thread-handle|channel)\.js$/],
  ['the Lambda executor', /\/worker\/dist\/lambda\//],
  ['the Cloudflare Worker executor', /\/worker\/dist\/cf-workers\//],
  ['undici', /\/node_modules\/undici\//],
  ['esbuild', /\/node_modules\/esbuild\//],
  ['worker_threads', /^node:worker_threads$/],
];

interface Worker extends ForkedWorker {
  /** Stop it as the supervisor does and read the modules it loaded. */
  stop(): Promise<string[]>;
}

async function startWorker(name: string, iniText: string): Promise<Worker> {
  const list = path.join(tmp.dir, `${name}.modules`);
  const w = await forkWorker(loadConfig(writeConfig(tmp.dir, iniText, `${name}.ini`)), {
    execArgv: ['--import', recorder],
    env: { FLEXILIB_TEST_MODULES: list, NODE_OPTIONS: '' },
  });
  return {
    ...w,
    async stop() {
      const exited = once(w.child, 'exit');
      w.child.send({ type: 'stop' } satisfies ToWorker);
      const [code] = await exited;
      assert.equal(code, 0, 'the worker drained and exited');
      return readFileSync(list, 'utf8').split('\n').filter(Boolean);
    },
  };
}

const loadedOf = (modules: string[], re: RegExp) => modules.filter((m) => re.test(m));

test('a worker on native routes alone loads no other executor kind, nor undici, esbuild or worker_threads', { timeout: 30_000 }, async () => {
  const w = await startWorker('native', `/a = ${lib}\n`);
  try {
    assert.equal((await request(w.port, '/a')).status, 200);
    const modules = await w.stop();
    // The recorder saw the worker's own modules (else the absences below prove nothing).
    assert.ok(modules.some((m) => m.endsWith('/worker/dist/native/native-executor.js')), 'the native executor is in the list');
    assert.ok(modules.some((m) => /\/node_modules\/koffi\//.test(m)), 'CommonJS packages are in the list (koffi)');
    for (const [what, re] of OTHER_KINDS) assert.deepEqual(loadedOf(modules, re), [], `${what} was not loaded`);
  } finally {
    w.child.kill('SIGKILL');
  }
});

test('a config bringing an upstream route loads that kind, keeps the messages in order and proxies', { timeout: 30_000 }, async () => {
  const origin = http.createServer((_req, res) => res.end('from the origin'));
  origin.listen(0, '127.0.0.1');
  await once(origin, 'listening');
  const originUrl = `http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`;
  const w = await startWorker('switch', `/a = ${lib}\n`);
  try {
    const upstreamIni = writeConfig(tmp.dir, `/up = upstream:origin\n/a = ${lib}\n\n[upstream.origin]\nservers = ${originUrl}\n`, 'switch-up.ini');
    // Sent back to back: the first needs the upstream kind loaded, the second must not overtake it.
    w.child.send({ type: 'config', config: loadConfig(upstreamIni), generation: 1, quarantined: [], requestId: 1 } satisfies ToWorker);
    w.child.send({
      type: 'upstream-state',
      state: { pools: [{ name: 'origin', settings: DEFAULT_UPSTREAM_SETTINGS, slot: 0, origins: [{ url: originUrl, healthy: true, epoch: 0, slot: 1 }] }] },
    } satisfies ToWorker);
    const plainIni = writeConfig(tmp.dir, `/b = ${lib}\n`, 'switch-b.ini');
    w.child.send({ type: 'config', config: loadConfig(plainIni), generation: 2, quarantined: [], requestId: 2 } satisfies ToWorker);
    const applied = await eventually('both configs applied', () => {
      const a = w.messages.filter((m) => m.type === 'config-applied');
      return a.length === 2 ? a : undefined;
    });
    assert.deepEqual(applied.map((m) => (m as { generation: number }).generation), [1, 2], 'applied in the order sent');
    assert.equal((await request(w.port, '/b')).status, 200, 'the last config is the one serving');
    assert.equal((await request(w.port, '/up')).status, 404);

    // Back to the upstream route: the kind is loaded now, the pool kept its origin.
    w.child.send({ type: 'config', config: loadConfig(upstreamIni), generation: 3, quarantined: [], requestId: 3 } satisfies ToWorker);
    await eventually('config 3 applied', () => w.messages.find((m) => m.type === 'config-applied' && m.generation === 3));
    const proxied = await request(w.port, '/up');
    assert.equal(proxied.status, 200);
    assert.equal(proxied.body, 'from the origin');
    const modules = await w.stop();
    assert.equal(loadedOf(modules, OTHER_KINDS[0]![1]).length, 1, 'the upstream executor was loaded');
    // A plain GET to an http:// origin goes through the lean client: undici waits for a streamed body or https.
    assert.equal(loadedOf(modules, /\/node_modules\/undici\//).length, 0, 'undici is not loaded for plain proxying');
  } finally {
    w.child.kill('SIGKILL');
    origin.close();
  }
});
