/**
 * The native route's own steps, timed one by one outside any server, so that
 * their cost per request can be read without the noise of a loaded machine
 * (each figure is the least CPU time of several repeats):
 *
 *   node --import tsx bench/micro/native-path.ts [--quick] [--json] [--calls N]   (after pnpm build)
 *
 * pnpm bench runs it too and puts the figures in docs/performance.md.
 *
 * Steps, as NativeExecutor.call runs them for an inline route: Slot.fillRequest
 * (request into native memory), Slot.resetResponse, the koffi call of the C
 * example's handle_request, Slot.readResponse (response out). For scale: a
 * koffi call of a C function that does nothing with the same two pointers.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openPlugin } from '../../packages/worker/dist/native/ffi.js';
import { Library } from '../../packages/worker/dist/native/library.js';
import { Slot, type RequestLike } from '../../packages/worker/dist/native/slot.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
// --quick: fewer calls; --json: one JSON line for the bench harness (lib/native-steps.ts).
const QUICK = process.argv.includes('--quick');
const JSON_OUT = process.argv.includes('--json');
const callsArg = process.argv.indexOf('--calls');
const N = callsArg > 0 ? Number(process.argv[callsArg + 1]) : QUICK ? 50_000 : 200_000;
const REPEATS = QUICK ? 3 : 7;

/**
 * Fastest of REPEATS runs of `n` calls of `fn`, in ns of CPU time per call.
 * CPU time (process.cpuUsage), not wall time: on a busy machine the process
 * is descheduled for long stretches, which wall time would count.
 */
function time(fn: () => void, n = N): number {
  let best = Infinity;
  for (let r = 0; r < REPEATS; r++) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < n; i++) fn();
    const d = process.cpuUsage(t0);
    best = Math.min(best, ((d.user + d.system) * 1000) / n);
  }
  return best;
}

// wrk's request as node:http hands it to the executor.
const req: RequestLike = {
  method: 'GET',
  url: '/',
  rawHeaders: ['Host', '127.0.0.1:43117'],
  httpVersionMajor: 1,
  httpVersionMinor: 1,
  socket: { remoteAddress: '127.0.0.1', remotePort: 54321 },
};

const tmp = mkdtempSync(path.join(os.tmpdir(), 'flexilib-micro-'));
try {
  const noopSo = path.join(tmp, 'libnoop.so');
  // An empty handle_request, bound exactly as plugins are (ffi.ts's openPlugin).
  writeFileSync(path.join(tmp, 'noop.c'), 'int handle_request(void *a, void *b) { (void)a; (void)b; return 0; }\n');
  execFileSync('cc', ['-O2', '-shared', '-fPIC', '-o', noopSo, path.join(tmp, 'noop.c')]);
  const noop = openPlugin(noopSo).handleRequest!;

  const version = new Library(path.join(ROOT, 'examples/c-plugin/build/libflexi_example.so')).acquire();
  const slot = new Slot(8 * 1024, 16 * 1024);
  const a = slot.req.ptr;
  const b = slot.resp.ptr;
  let sink = 0;

  const fill = time(() => void slot.fillRequest(req, null));
  const reset = time(() => slot.resetResponse());
  const ffiNoop = time(() => (sink += noop(a, b)));
  const resetCall = time(() => {
    slot.resetResponse();
    sink += version.handleRequest(a, b);
  });
  const resetCallRead = time(() => {
    slot.resetResponse();
    sink += version.handleRequest(a, b);
    sink += slot.readResponse().body.length;
  });
  const whole = time(() => {
    slot.fillRequest(req, null);
    slot.resetResponse();
    sink += version.handleRequest(a, b);
    const out = slot.readResponse();
    const headers = out.headers;
    if (!out.hasContentType) headers.push('content-type', 'text/plain');
    headers.push('content-length', String(out.body.length));
  });
  // Two of the steps are differences of two timings; with few calls noise can make one negative.
  const rows: Array<[string, number]> = [
    ['Slot.fillRequest (method, target, 1 header, peer)', fill],
    ['Slot.resetResponse', reset],
    ['handle_request through koffi (C example)', Math.max(0, resetCall - reset)],
    ['  of which: a koffi call of an empty C function, same two pointers', ffiNoop],
    ['Slot.readResponse (status, 1 header, 2-byte body)', Math.max(0, resetCallRead - resetCall)],
    ['all of the above plus the header list, as NativeExecutor does', whole],
  ];
  if (JSON_OUT) {
    process.stdout.write(JSON.stringify({ calls: N, repeats: REPEATS, steps: rows.map(([step, ns]) => ({ step, ns: Math.round(ns) })) }) + '\n');
  } else {
    const w = Math.max(...rows.map(([k]) => k.length));
    process.stdout.write(`native route steps, CPU time per call, least of ${REPEATS} × ${N.toLocaleString('en-US')} calls (node ${process.version}, ${os.cpus()[0]?.model ?? ''}):\n`);
    for (const [k, ns] of rows) process.stdout.write(`  ${k.padEnd(w)}  ${ns.toFixed(0).padStart(6)} ns\n`);
  }
  if (sink < 0) process.stdout.write('\n');
  slot.close();
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
