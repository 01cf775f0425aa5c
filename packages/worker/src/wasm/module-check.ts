/**
 * Compile a WASM plugin and check it against the contract before anything
 * runs: the required exports, WASI-only imports, a memory within the cap.
 * Used by the worker (module cache) and by the supervisor when a service is
 * registered (a refused module answers 400 with this message).
 */
import { FlexiError } from '@flexilib/contract';
import { WASM_PAGE } from '@flexilib/contract';
import type { WasmRun } from '@flexilib/contract';
import { WasmFormatError, capMemory } from './wasm-binary.js';
import { addFuel } from './fuel.js';
import { mib, WASI_MODULE, type ModuleInfo } from './module-info.js';

export { mib, WASI_MODULE, type ModuleInfo };

export interface CompiledModule {
  module: WebAssembly.Module;
  info: ModuleInfo;
  /** Why the module could not be made interruptible (run = auto: it runs on instance threads). */
  notInterruptible?: string;
}

const REQUIRED_FUNCTIONS = ['handle_request', 'flexi_wasm_alloc', 'flexi_wasm_free', 'flexi_wasm_release'] as const;

/**
 * Compile `bytes` with its memory capped at `capBytes`, and unless `run` is
 * thread, rewritten with fuel checks (fuel.ts) so that its calls can run on
 * the event loop. Throws FlexiError (FLX_WASM_COMPILE, _EXPORTS, _IMPORTS,
 * _MEMORY, _NOT_INTERRUPTIBLE) whose message starts with `label` (the file or
 * service) and says what to change.
 */
export async function compileModule(bytes: Uint8Array, capBytes: number, label: string, run: WasmRun = 'thread'): Promise<CompiledModule> {
  const capPages = Math.floor(capBytes / WASM_PAGE);
  let plan;
  try {
    plan = capMemory(bytes, capPages);
  } catch (err) {
    if (!(err instanceof WasmFormatError)) throw err;
    // The engine's message is the more precise one when it has one.
    await compileOrThrow(bytes, label);
    throw new FlexiError('FLX_WASM_COMPILE', `${label} is not a valid WebAssembly module: ${err.message}`);
  }
  let module: WebAssembly.Module | undefined;
  let notInterruptible: string | undefined;
  if (run !== 'thread') {
    try {
      module = await WebAssembly.compile(addFuel(plan.bytes) as BufferSource);
    } catch (err) {
      // Refused by the rewrite (an unknown instruction), or by the engine (the original tells: below).
      notInterruptible = (err as Error).message.replace(/^WebAssembly\.compile\(\): /, '');
    }
  }
  const fueled = module !== undefined;
  module ??= await compileOrThrow(plan.bytes, label);
  if (run === 'loop' && !fueled) {
    throw new FlexiError('FLX_WASM_NOT_INTERRUPTIBLE', `${label} cannot run on the event loop (run = loop): it cannot be made interruptible (${notInterruptible}); use run = auto or run = thread`);
  }
  const exports = new Map(WebAssembly.Module.exports(module).map((e) => [e.name, e.kind]));
  const imports = WebAssembly.Module.imports(module);

  if (exports.has('_start') && !exports.has('_initialize')) {
    throw new FlexiError('FLX_WASM_EXPORTS', `${label} is a WASI command (it exports _start): build it as a reactor with -mexec-model=reactor`);
  }
  const missing: string[] = REQUIRED_FUNCTIONS.filter((name) => exports.get(name) !== 'function');
  if (exports.get('flexi_abi_version') !== 'global') missing.push('flexi_abi_version');
  const mem = plan.memory;
  if (!mem?.imported && exports.get('memory') !== 'memory') missing.push('memory');
  if (missing.length) {
    const hint = missing.includes('handle_request')
      ? 'a WASM plugin exports int handle_request(const flexi_request *, flexi_response *)'
      : 'build it against this flexilib.h, whose __wasm__ part exports them';
    throw new FlexiError('FLX_WASM_EXPORTS', `${label} does not export ${missing.join(', ')}: ${hint} (see docs/wasm.md)`);
  }

  const wasiImports: string[] = [];
  const refused: string[] = [];
  for (const imp of imports) {
    if (imp.module === WASI_MODULE && imp.kind === 'function') wasiImports.push(imp.name);
    else if (imp.kind === 'memory' && mem?.imported) continue;
    else refused.push(`${imp.module}.${imp.name} (${imp.kind})`);
  }
  if (refused.length) {
    throw new FlexiError('FLX_WASM_IMPORTS', `${label} imports ${refused.join(', ')}, which the sandbox does not provide: only ${WASI_MODULE} functions are available`);
  }

  if (!mem) throw new FlexiError('FLX_WASM_EXPORTS', `${label} has no linear memory: a plugin's structs live in its memory`);
  if (mem.memory64) throw new FlexiError('FLX_WASM_MEMORY', `${label} uses a 64-bit memory; the ABI's WASM layout is wasm32`);
  if (mem.min > capPages) {
    throw new FlexiError('FLX_WASM_MEMORY', `${label} needs ${mib(mem.min * WASM_PAGE)} of linear memory at start, above its cap of ${mib(capBytes)}: raise the cap (memory = ...)`);
  }
  return {
    module,
    info: {
      importedMemory: mem.imported ? { ...mem, max: Math.min(mem.max ?? capPages, capPages) } : undefined,
      minPages: mem.min,
      capPages: Math.min(mem.max ?? capPages, capPages),
      wasiImports,
      fueled,
      optional: {
        initialize: exports.get('_initialize') === 'function',
        init: exports.get('flexi_init') === 'function',
        deinit: exports.get('flexi_deinit') === 'function',
        requestDeinit: exports.get('request_deinit') === 'function',
      },
    },
    notInterruptible,
  };
}

async function compileOrThrow(bytes: Uint8Array, label: string): Promise<WebAssembly.Module> {
  try {
    return await WebAssembly.compile(bytes as BufferSource);
  } catch (err) {
    // The engine quotes the first bytes it found ("found 72 6f 6f 74"): a file read by path
    // (POST /services) must not leak its contents into an answer, so drop them.
    const msg = (err as Error).message.replace(/^WebAssembly\.compile\(\): /, '').replace(/, found( [0-9a-f]{2})+/g, '');
    throw new FlexiError('FLX_WASM_COMPILE', `${label} is not a valid WebAssembly module: ${msg}`);
  }
}
