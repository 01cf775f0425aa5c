/**
 * Try a module before accepting it (service registration): compile and check
 * it, then instantiate it once in a thread of its own — _initialize, the ABI
 * version, flexi_init, the request and response areas — within its time
 * limit, and stop it. What fails here would fail every request later, so the
 * admin API answers 400 with this message instead.
 */
import type { Logger } from 'pino';
import { FlexiError } from '@flexilib/contract';
import { WasmInstance, type InstanceOwner } from './instance.js';
import type { WasmLimits } from '@flexilib/contract';
import { compileModule, type ModuleInfo } from './module-check.js';
import { ThreadHandle } from './thread-handle.js';

export interface ProbeResult {
  info: ModuleInfo;
  /** Thread start plus instantiation, ms: what a cold start costs. */
  coldStartMs: number;
}

const NO_OWNER: InstanceOwner = { released: () => {}, died: () => {}, resubmit: () => {}, stalled: () => {} };

export async function probeModule(bytes: Uint8Array, limits: WasmLimits, label: string, opts: { arenaBytes: number; log: Logger }): Promise<ProbeResult> {
  // With its `run`: a module that cannot run on the event loop under run = loop is refused here, not at its first request.
  const compiled = await compileModule(bytes, limits.memoryBytes, label, limits.run);
  const t0 = performance.now();
  const inst = new WasmInstance(compiled, { arenaBytes: opts.arenaBytes, maxRequestBytes: 0, label, log: opts.log, owner: NO_OWNER, generation: 0, thread: new ThreadHandle() });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new FlexiError('FLX_WASM_INIT', `${label}: instantiation and flexi_init did not finish within ${limits.timeoutMs} ms`)), limits.timeoutMs);
  });
  try {
    await Promise.race([inst.started, timeout]);
    return { info: compiled.info, coldStartMs: performance.now() - t0 };
  } finally {
    clearTimeout(timer);
    inst.stop();
  }
}
