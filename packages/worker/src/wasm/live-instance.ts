/**
 * One instantiated module, wherever it runs (an instance thread, or the
 * event loop for an interruptible module): instantiation, _initialize, the
 * ABI check, flexi_init, the request and response areas, and the memory views
 * that go stale when the module grows its memory. Light imports only: each
 * instance thread is an isolate that loads what it imports.
 *
 * Per instance, in linear memory (allocated once with the module's own malloc):
 *   request area:  [flexi_request][flexi_header x n][strings][body]   (regrown when a request outgrows it)
 *   response area: [flexi_response][arena (RESPONSE_PREALLOCATION_KB)]
 */
import { ABI_VERSION_MAJOR, WASM32 } from '@flexilib/plugin-abi/layout';
import type { ErrorCode } from '@flexilib/contract';
import { WASM_PAGE } from '@flexilib/contract/wasm-limits';
import { responseTemplate } from './channel.js';
import { FUEL_GLOBAL, mib, type ModuleInfo, TICK_TABLE, WASI_MODULE } from './module-info.js';
import { ProcExit, createWasi, type WasiHost } from './wasi-shim.js';

export class InitError extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
  }
}

export interface Exports {
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
  [FUEL_GLOBAL]?: WebAssembly.Global;
  [TICK_TABLE]?: WebAssembly.Table;
}

export interface Live {
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
  capBytes: number;
  flush(): void;
}

export interface InstantiateOptions {
  module: WebAssembly.Module;
  info: ModuleInfo;
  arenaBytes: number;
  label: string;
  /** A complete line the module wrote to stdout (1) or stderr (2). */
  output: WasiHost['output'];
  /** How the module's clock sleeps (poll_oneoff) are served (default: block this thread). */
  sleep?: WasiHost['sleep'];
  /**
   * For a module rewritten with fuel checks (fuel.ts): called when the fuel
   * runs out; throws to interrupt the module, or refills `fuel`.
   */
  tick?: (fuel: WebAssembly.Global) => void;
}

const REQUEST_AREA = 64 * 1024;

/**
 * A module that imports a function and exports it again: what it exports is a
 * WebAssembly function wrapping the JS one, which a funcref table accepts.
 *   (module (type (func)) (import "h" "t" (func (type 0))) (export "t" (func 0)))
 */
const WRAPPER = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0, 2, 7, 1, 1, 0x68, 1, 0x74, 0, 0, 7, 5, 1, 1, 0x74, 0, 0]);
let wrapperModule: WebAssembly.Module | undefined;

function wasmFunction(fn: () => void): unknown {
  wrapperModule ??= new WebAssembly.Module(WRAPPER);
  return new WebAssembly.Instance(wrapperModule, { h: { t: fn } }).exports.t;
}

export function describe(err: unknown): string {
  if (err instanceof ProcExit) return err.message;
  const e = err as Error;
  return e && typeof e.message === 'string' ? e.message : String(err);
}

/** Instantiate and initialize; throws InitError saying what failed. */
export function instantiate(o: InstantiateOptions): Live {
  const { module, info, label } = o;
  const capBytes = info.capPages * WASM_PAGE;
  let memory: WebAssembly.Memory | undefined;
  const imports: WebAssembly.Imports = {};
  if (info.importedMemory) {
    const imp = WebAssembly.Module.imports(module).find((i) => i.kind === 'memory')!;
    memory = new WebAssembly.Memory({ initial: info.importedMemory.min, maximum: info.capPages, shared: info.importedMemory.shared } as WebAssembly.MemoryDescriptor);
    imports[imp.module] = { [imp.name]: memory };
  }
  let live: Live | undefined;
  const wasi = createWasi(info.wasiImports, { memory: () => live!.memory, output: o.output, sleep: o.sleep });
  if (info.wasiImports.length) imports[WASI_MODULE] = wasi.imports as unknown as WebAssembly.ModuleImports;

  let x: Exports;
  try {
    x = new WebAssembly.Instance(module, imports).exports as unknown as Exports;
    if (info.fueled) {
      const fuel = x[FUEL_GLOBAL]!;
      const tick = o.tick;
      // On a thread (no tick given) the fuel only refills: Worker.terminate() stops a runaway there.
      x[TICK_TABLE]!.set(0, wasmFunction(tick ? () => tick(fuel) : () => void (fuel.value = 1 << 30)) as never);
    }
    memory ??= x.memory!;
    live = { x, memory, capBytes, flush: wasi.flush } as Live;
    x._initialize?.();
  } catch (err) {
    throw new InitError('FLX_WASM_INIT', `${label}: instantiation failed: ${describe(err)}`);
  }
  refreshMemory(live);
  const addr = x.flexi_abi_version.value as number;
  if (addr + 4 > live.m8.length) throw new InitError('FLX_WASM_ABI', `${label}: flexi_abi_version points outside the module's memory`);
  const version = live.m32[addr >>> 2];
  if (version >>> 16 !== ABI_VERSION_MAJOR) {
    throw new InitError('FLX_WASM_ABI', `${label} was built for plugin ABI ${version >>> 16}.${version & 0xffff}; this host speaks ABI ${ABI_VERSION_MAJOR}.x: rebuild it against this flexilib.h`);
  }
  if (x.flexi_init) {
    let rc: number;
    try {
      rc = x.flexi_init();
    } catch (err) {
      throw new InitError('FLX_WASM_INIT', `${label}: flexi_init trapped: ${describe(err)}`);
    }
    if (rc !== 0) throw new InitError('FLX_WASM_INIT', `${label}: flexi_init returned ${rc}`);
  }
  const respSize = WASM32.RESPONSE.size + o.arenaBytes;
  const respBase = x.flexi_wasm_alloc(respSize);
  const reqBase = x.flexi_wasm_alloc(REQUEST_AREA);
  if (respBase === 0 || reqBase === 0) {
    throw new InitError('FLX_WASM_MEMORY', `${label}: flexi_wasm_alloc could not allocate the request and response areas (${mib(respSize + REQUEST_AREA)}) within the memory cap of ${mib(capBytes)}`);
  }
  live.reqBase = reqBase;
  live.reqCap = REQUEST_AREA;
  live.respBase = respBase;
  live.arenaAddr = respBase + WASM32.RESPONSE.size;
  live.template = responseTemplate(live.arenaAddr, o.arenaBytes);
  refreshMemory(live);
  return live;
}

/**
 * Make the request area hold `len` bytes (the module's free + alloc). False
 * when the module's allocator cannot: the instance is to be replaced.
 */
export function growRequestArea(live: Live, len: number): boolean {
  if (len <= live.reqCap) return true;
  const cap = Math.max(len, live.reqCap * 2);
  live.x.flexi_wasm_free(live.reqBase);
  const base = live.x.flexi_wasm_alloc(cap);
  if (base === 0) return false;
  live.reqBase = base;
  live.reqCap = cap;
  return true;
}

/** Linear memory views go stale when the module grows its memory. */
export function refreshMemory(live: Live): void {
  const buffer = live.memory.buffer as ArrayBuffer;
  if (buffer === live.buffer) return;
  live.buffer = buffer;
  live.m8 = new Uint8Array(buffer);
  live.m32 = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
}

export function memPages(live: Live): number {
  return live.memory.buffer.byteLength / WASM_PAGE;
}

/** Memory within a quarter of the cap after a failure: the cap is the likely cause. */
export function nearCap(live: Live): boolean {
  return live.memory.buffer.byteLength + live.capBytes / 4 >= live.capBytes;
}

export function capNote(live: Live): string {
  return `linear memory at ${mib(live.memory.buffer.byteLength)} of its ${mib(live.capBytes)} cap`;
}
