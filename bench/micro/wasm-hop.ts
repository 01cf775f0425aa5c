/**
 * What the WASM executor's thread hop costs, per call, in one process:
 *
 *   inline      handle_request called on this thread (no isolation: what the hop is compared with)
 *   sab-sync    through an instance thread: SharedArrayBuffer + Atomics.notify, Atomics.wait (the executor's fast path)
 *   sab-async   the same, waited for with Atomics.waitAsync (the executor's path for calls over 1 ms)
 *   postMessage a bare postMessage round trip to a thread, for reference (no module call at all)
 *
 * Run: pnpm build && node --import tsx bench/micro/wasm-hop.ts [calls]
 * Each line: mean µs per call over N calls after a warm-up. The request is the
 * benchmark's (GET / with 3 headers) to the C example built as .wasm.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { MessageChannel, Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
// The built worker package (pnpm build): the instance thread is dist/wasm/instance-thread.js.
import { ABI_VERSION } from '../../packages/plugin-abi/dist/index.js';
import { Channel, readResponse, relocateRequest, responseTemplate, writeRequest, writeResponse, DATA, type CallResult } from '../../packages/worker/dist/wasm/channel.js';
import { InstancePool } from '../../packages/worker/dist/wasm/instance-pool.js';
import { DEFAULT_WASM_LIMITS } from '../../packages/contract/dist/wasm/limits.js';
import { compileModule } from '../../packages/worker/dist/wasm/module-check.js';
import { createWasi } from '../../packages/worker/dist/wasm/wasi-shim.js';
import { SpareThreads } from '../../packages/worker/dist/wasm/thread-handle.js';

const ROOT = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));
const WASM = path.join(ROOT, 'examples/c-plugin/build/flexi_example.wasm');
const N = Number(process.argv[2] ?? 100_000);
const req = { method: 'GET', url: '/', rawHeaders: ['Host', 'localhost', 'User-Agent', 'wrk', 'Accept', '*/*'], httpVersionMajor: 1, httpVersionMinor: 1, socket: { remoteAddress: '127.0.0.1', remotePort: 40000 } };
const keepAlive = setInterval(() => {}, 1000);

function report(name: string, totalMs: number, n: number, extra = ''): void {
  console.log(`${name.padEnd(12)} ${((totalMs * 1000) / n).toFixed(2).padStart(8)} µs/call  ${extra}`);
}

async function inline(): Promise<void> {
  const compiled = await compileModule(readFileSync(WASM), DEFAULT_WASM_LIMITS.memoryBytes, 'example');
  let memory!: WebAssembly.Memory;
  const wasi = createWasi(compiled.info.wasiImports, { memory: () => memory, output: () => {} });
  const x = new WebAssembly.Instance(compiled.module, { wasi_snapshot_preview1: wasi.imports as WebAssembly.ModuleImports }).exports as Record<string, (...a: number[]) => number> & { memory: WebAssembly.Memory };
  memory = x.memory;
  (x._initialize as () => void)();
  const reqBase = x.flexi_wasm_alloc(64 * 1024);
  const respBase = x.flexi_wasm_alloc(60 + 8192);
  const template = responseTemplate(respBase + 60, 8192);
  const views = new Channel(Channel.buffers(1 << 20), new MessageChannel().port1, 15);
  const call = (): CallResult => {
    const len = writeRequest(views, req, null);
    const m8 = new Uint8Array(memory.buffer);
    const m32 = new Uint32Array(memory.buffer);
    m8.set(views.buf.subarray(DATA, DATA + len), reqBase);
    relocateRequest(m32, reqBase, ABI_VERSION);
    m8.set(template, respBase);
    x.handle_request(reqBase, respBase);
    writeResponse(views, m8, m32, respBase);
    return readResponse(views);
  };
  for (let i = 0; i < 10_000; i++) call();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) call();
  report('inline', performance.now() - t0, N, `(${call().body.toString()})`);
}

async function viaPool(name: string, forceAsync: boolean): Promise<void> {
  const noop = () => {};
  const log = { debug: noop, info: noop, warn: noop, error: noop } as unknown as ConstructorParameters<typeof InstancePool>[0]['log'];
  const pool = new InstancePool({
    limits: { ...DEFAULT_WASM_LIMITS, instances: 1 },
    label: 'example',
    load: async () => compileModule(readFileSync(WASM), DEFAULT_WASM_LIMITS.memoryBytes, 'example'),
    arenaBytes: 8192,
    maxRequestBytes: 1 << 20,
    log,
    threads: new SpareThreads(),
  });
  if (forceAsync) (pool as unknown as { slow: boolean; released(i: unknown): void }).released = new Proxy(pool.released, {
    apply(target, self, args) {
      const r = Reflect.apply(target, self, args);
      (self as { slow: boolean }).slow = true;
      return r;
    },
  });
  const one = () => new Promise<CallResult>((resolve) => pool.run({ req, body: null, done: (r) => resolve(r as CallResult) }));
  const first = await one();
  for (let i = 0; i < 5000; i++) await one();
  let inside = 0;
  const t0 = performance.now();
  for (let i = 0; i < N; i++) inside += (await one()).callUs;
  report(name, performance.now() - t0, N, `(${first.body.toString()}; handle_request itself ${(inside / N).toFixed(2)} µs)`);
  pool.close();
}

async function postMessageRoundTrip(): Promise<void> {
  const w = new Worker(`const { parentPort } = require('node:worker_threads'); parentPort.on('message', (m) => parentPort.postMessage(m));`, { eval: true });
  const n = Math.min(N, 50_000);
  let i = 0;
  await new Promise<void>((resolve) => {
    w.on('message', () => (++i < 5000 ? w.postMessage(i) : resolve()));
    w.postMessage(0);
  });
  w.removeAllListeners('message');
  i = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    w.on('message', () => (++i < n ? w.postMessage(i) : resolve()));
    w.postMessage(0);
  });
  report('postMessage', performance.now() - t0, n, '(empty message, no module call)');
  await w.terminate();
}

console.log(`node ${process.version}, ${N} calls each; load average ${(await import('node:os')).loadavg().map((l) => l.toFixed(2)).join(' ')}`);
await inline();
await viaPool('sab-sync', false);
await viaPool('sab-async', true);
await postMessageRoundTrip();
clearInterval(keepAlive);
