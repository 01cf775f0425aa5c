/**
 * Entry of an instance thread: one WASM instance, serving calls handed over
 * on its channel (channel.ts) one at a time. The thread exists so that the
 * worker's event loop can stop it: a module in an infinite loop is ended by
 * Worker.terminate(), which the main side calls when the time limit passes.
 *
 *   start (empty, or a spare) ──> wait for ThreadInit ──> instantiate, _initialize, ABI check, flexi_init, allocate areas ──> "ready"
 *     loop: take a call off AVAIL (sleep while there is none) ─> copy the slot's request in
 *           ─> handle_request ─> copy the response out ─> DONE = ++served
 *           a trap, proc_exit or a memory blow-up answers, then the instance is
 *           replaced here (its state can no longer be trusted, and memory never shrinks)
 *     EXIT (with nothing submitted) ─> flexi_deinit ─> thread ends
 *
 * Per instance, in linear memory (allocated once with the module's own malloc):
 *   request area:  [flexi_request][flexi_header x n][strings][body]   (regrown when a request outgrows it)
 *   response area: [flexi_response][arena (RESPONSE_PREALLOCATION_KB)]
 */
import { readlinkSync } from 'node:fs';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { ABI_VERSION, ABI_VERSION_MAJOR, WASM32 } from '@flexilib/plugin-abi/layout';
import type { ErrorCode } from '@flexilib/contract';
import { CTL, Channel, DATA, copyBytes, HDR, KIND, RING_SLOTS, Ring, overflowed, relocateRequest, responseTemplate, writeError, writeResponse, type ChannelInit } from './channel.js';
// Not the contract's index, nor module-check.ts: each instance thread is an isolate that loads what it imports.
import { WASM_PAGE } from '@flexilib/contract/wasm-limits';
import { mib, type ModuleInfo, WASI_MODULE } from './module-info.js';
import type { ThreadBoot } from './thread-handle.js';
import { ProcExit, createWasi } from './wasi-shim.js';

/** Handed to the thread when it is given an instance to run. */
export interface ThreadInit {
  module: WebAssembly.Module;
  info: ModuleInfo;
  channel: ChannelInit;
  arenaBytes: number;
  /** Names the module in messages: `module FILE` or `service NAME`. */
  label: string;
}

/** Thread -> main (postMessage; never per request except module output). */
export type ThreadMessage =
  /** Instantiated and initialized; calls may start. */
  | { type: 'ready'; memPages: number; instantiateMs: number; tid: number }
  /** Instantiation or initialization failed; the thread ends. */
  | { type: 'failed'; code: ErrorCode; message: string }
  /** A line the module wrote to stdout or stderr. */
  | { type: 'output'; fd: 1 | 2; line: string };

class InitError extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
  }
}

interface Exports {
  handle_request(req: number, resp: number): number;
  flexi_wasm_alloc(n: number): number;
  flexi_wasm_free(p: number): void;
  flexi_wasm_release(resp: number): void;
  flexi_abi_version: WebAssembly.Global;
  memory?: WebAssembly.Memory;
  _initialize?: () => void;
  flexi_init?: () => number;
  flexi_deinit?: () => void;
  request_deinit?: () => void;
}

interface Live {
  x: Exports;
  memory: WebAssembly.Memory;
  buffer: ArrayBuffer;
  m8: Uint8Array;
  m32: Uint32Array;
  reqBase: number;
  reqCap: number;
  respBase: number;
  arenaAddr: number;
  template: Uint8Array;
  flush(): void;
}

// Started empty (thread-handle.ts): wait for the instance to run.
const boot = workerData as ThreadBoot;
const goFlag = new Int32Array(boot.go);
Atomics.wait(goFlag, 0, 0);
const init = receiveMessageOnPort(boot.port)!.message as ThreadInit;
boot.port.close();
const port = parentPort!;
const ring = new Ring(init.channel, init.channel.port, CTL.SWAP_TO_MAIN);
const hdr = ring.hdr;
const capBytes = init.info.capPages * WASM_PAGE;
const REQUEST_AREA = 64 * 1024;

function describe(err: unknown): string {
  if (err instanceof ProcExit) return err.message;
  const e = err as Error;
  return e && typeof e.message === 'string' ? e.message : String(err);
}

function instantiate(): Live {
  const { module, info } = init;
  let memory: WebAssembly.Memory | undefined;
  const imports: WebAssembly.Imports = {};
  if (info.importedMemory) {
    const imp = WebAssembly.Module.imports(module).find((i) => i.kind === 'memory')!;
    memory = new WebAssembly.Memory({ initial: info.importedMemory.min, maximum: info.capPages, shared: info.importedMemory.shared } as WebAssembly.MemoryDescriptor);
    imports[imp.module] = { [imp.name]: memory };
  }
  let live: Live | undefined;
  const wasi = createWasi(info.wasiImports, {
    memory: () => live!.memory,
    output: (fd, line) => port.postMessage({ type: 'output', fd, line } satisfies ThreadMessage),
  });
  if (info.wasiImports.length) imports[WASI_MODULE] = wasi.imports as unknown as WebAssembly.ModuleImports;

  let x: Exports;
  try {
    x = new WebAssembly.Instance(module, imports).exports as unknown as Exports;
    memory ??= x.memory!;
    live = { x, memory, flush: wasi.flush } as Live;
    x._initialize?.();
  } catch (err) {
    throw new InitError('FLX_WASM_INIT', `${init.label}: instantiation failed: ${describe(err)}`);
  }
  refreshMemory(live);
  const addr = x.flexi_abi_version.value as number;
  if (addr + 4 > live.m8.length) throw new InitError('FLX_WASM_ABI', `${init.label}: flexi_abi_version points outside the module's memory`);
  const version = live.m32[addr >>> 2];
  if (version >>> 16 !== ABI_VERSION_MAJOR) {
    throw new InitError('FLX_WASM_ABI', `${init.label} was built for plugin ABI ${version >>> 16}.${version & 0xffff}; this host speaks ABI ${ABI_VERSION_MAJOR}.x: rebuild it against this flexilib.h`);
  }
  if (x.flexi_init) {
    let rc: number;
    try {
      rc = x.flexi_init();
    } catch (err) {
      throw new InitError('FLX_WASM_INIT', `${init.label}: flexi_init trapped: ${describe(err)}`);
    }
    if (rc !== 0) throw new InitError('FLX_WASM_INIT', `${init.label}: flexi_init returned ${rc}`);
  }
  const respSize = WASM32.RESPONSE.size + init.arenaBytes;
  const respBase = x.flexi_wasm_alloc(respSize);
  const reqBase = x.flexi_wasm_alloc(REQUEST_AREA);
  if (respBase === 0 || reqBase === 0) {
    throw new InitError('FLX_WASM_MEMORY', `${init.label}: flexi_wasm_alloc could not allocate the request and response areas (${mib(respSize + REQUEST_AREA)}) within the memory cap of ${mib(capBytes)}`);
  }
  live.reqBase = reqBase;
  live.reqCap = REQUEST_AREA;
  live.respBase = respBase;
  live.arenaAddr = respBase + WASM32.RESPONSE.size;
  live.template = responseTemplate(live.arenaAddr, init.arenaBytes);
  refreshMemory(live);
  return live;
}

/** Linear memory views go stale when the module grows its memory. */
function refreshMemory(live: Live): void {
  const buffer = live.memory.buffer as ArrayBuffer;
  if (buffer === live.buffer) return;
  live.buffer = buffer;
  live.m8 = new Uint8Array(buffer);
  live.m32 = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
}

function memPages(live: Live): number {
  return live.memory.buffer.byteLength / WASM_PAGE;
}

/** Memory within a quarter of the cap after a failure: the cap is the likely cause. */
function nearCap(live: Live): boolean {
  return live.memory.buffer.byteLength + capBytes / 4 >= capBytes;
}

function capNote(live: Live): string {
  return `linear memory at ${mib(live.memory.buffer.byteLength)} of its ${mib(capBytes)} cap`;
}

/** Serve the call in slot `views`. Returns false when the instance must be replaced. */
function serve(live: Live, views: Channel): boolean {
  const ctl = views.ctl;
  const len = ctl[CTL.REQ_LEN];
  const x = live.x;
  if (len > live.reqCap) {
    const cap = Math.max(len, live.reqCap * 2);
    x.flexi_wasm_free(live.reqBase);
    const base = x.flexi_wasm_alloc(cap);
    if (base === 0) {
      writeError(views, KIND.MEMORY, `${init.label}: a request of ${mib(len)} does not fit: ${capNote(live)}`);
      return false;
    }
    live.reqBase = base;
    live.reqCap = cap;
  }
  refreshMemory(live);
  views.accept();
  copyBytes(live.m8, live.reqBase, views.u8, DATA, len);
  relocateRequest(live.m32, live.reqBase, ABI_VERSION);
  live.m8.set(live.template, live.respBase);

  let rc: number;
  const t0 = performance.now();
  try {
    rc = x.handle_request(live.reqBase, live.respBase);
  } catch (err) {
    ctl[CTL.CALL_US] = Math.round((performance.now() - t0) * 1000);
    live.flush();
    ctl[CTL.MEM_PAGES] = memPages(live);
    const exit = err instanceof ProcExit;
    const what = exit ? describe(err) : `trapped: ${describe(err)}`;
    writeError(views, exit ? KIND.EXIT : nearCap(live) ? KIND.MEMORY : KIND.TRAP, `${init.label} ${what}${nearCap(live) ? ` (${capNote(live)})` : ''}`);
    return false;
  }
  ctl[CTL.CALL_US] = Math.round((performance.now() - t0) * 1000);
  ctl[CTL.RC] = rc;
  live.flush();
  refreshMemory(live);
  ctl[CTL.MEM_PAGES] = memPages(live);
  const bad = writeResponse(views, live.m8, live.m32, live.respBase);
  if (bad !== null) {
    writeError(views, KIND.BAD_RESPONSE, `${init.label} returned an invalid response: ${bad}`);
    return false;
  }
  let keep = true;
  if (rc !== 0 && nearCap(live)) {
    // The module failed with its memory nearly exhausted: say so, and start afresh
    // (linear memory never shrinks).
    writeError(views, KIND.MEMORY, `${init.label}: handle_request returned ${rc} with its ${capNote(live)}; a request probably needed more (raise memory = ...)`);
    keep = false;
  }
  try {
    if (overflowed(live.m32, live.respBase, live.arenaAddr)) x.flexi_wasm_release(live.respBase);
    x.request_deinit?.();
  } catch (err) {
    if (keep) writeError(views, KIND.TRAP, `${init.label} trapped after the call: ${describe(err)}`);
    return false;
  }
  return keep;
}

/**
 * Take the next call off AVAIL, sleeping while there is none. False: asked
 * to exit instead. No spinning first: the event loop wakes the thread once per
 * turn, after submitting every request it read (instance.ts), and a spinning
 * thread would take a core the event loops need (two cores, two workers).
 */
function takeCall(): boolean {
  for (;;) {
    const avail = Atomics.load(hdr, HDR.AVAIL);
    if (avail > 0) {
      // Main may take calls back meanwhile: only a call still there is ours.
      if (Atomics.compareExchange(hdr, HDR.AVAIL, avail, avail - 1) === avail) return true;
      continue;
    }
    if (Atomics.load(hdr, HDR.EXIT) !== 0) return false;
    Atomics.wait(hdr, HDR.AVAIL, 0);
  }
}

/** This thread's kernel id (Linux; 0 elsewhere): main reads its schedstat when it seems stuck (run-queue-probe.ts). */
function threadId(): number {
  try {
    const m = /\/task\/(\d+)$/.exec(readlinkSync('/proc/thread-self'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function main(): void {
  let live: Live | null;
  const t0 = performance.now();
  try {
    live = instantiate();
  } catch (err) {
    const code = err instanceof InitError ? err.code : 'FLX_WASM_INIT';
    port.postMessage({ type: 'failed', code, message: describe(err) } satisfies ThreadMessage);
    return;
  }
  port.postMessage({ type: 'ready', memPages: memPages(live), instantiateMs: Math.round((performance.now() - t0) * 100) / 100, tid: threadId() } satisfies ThreadMessage);
  for (let served = 0; ; ) {
    if (!takeCall()) break;
    const keep = serve(live!, ring.slots[served % RING_SLOTS]);
    served++;
    Atomics.store(hdr, HDR.DONE, served);
    Atomics.notify(hdr, HDR.DONE);
    if (!keep) {
      live = null;
      try {
        live = instantiate();
      } catch (err) {
        const code = err instanceof InitError ? err.code : 'FLX_WASM_INIT';
        port.postMessage({ type: 'failed', code, message: describe(err) } satisfies ThreadMessage);
        return;
      }
    }
  }
  try {
    live?.x.flexi_deinit?.();
  } catch {
    /* the instance is going away either way */
  }
}

main();
