/**
 * What the host learned about a module, as its instance threads receive it.
 * Apart from module-check.ts so that an instance thread (an isolate of its
 * own, per instance) loads none of the compiler's checks or the contract.
 */
import type { MemoryLimits } from './wasm-binary.js';

export const WASI_MODULE = 'wasi_snapshot_preview1';
/** The exports fuel.ts adds (the host refills the global, and fills the table with its tick). */
export const FUEL_GLOBAL = '__flexi_fuel';
export const TICK_TABLE = '__flexi_tick';

/** What the host learned about a module, passed to its instance threads. */
export interface ModuleInfo {
  /** The memory the host must create and import (undefined: the module defines and exports its own). */
  importedMemory?: MemoryLimits;
  /** Pages at start. */
  minPages: number;
  /** The cap, pages. */
  capPages: number;
  /** WASI functions the module imports (each gets a shim or an ENOSYS stub). */
  wasiImports: string[];
  /**
   * Rewritten with fuel checks (fuel.ts): its calls may run on the event
   * loop; wherever it runs, the host fills its tick table.
   */
  fueled: boolean;
  /** Optional exports present. */
  optional: { initialize: boolean; init: boolean; deinit: boolean; requestDeinit: boolean };
}

/** Bytes as MiB (or KiB below 1 MiB), for messages. */
export function mib(bytes: number): string {
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KiB`;
  const m = bytes / (1024 * 1024);
  return `${Number.isInteger(m) ? m : m.toFixed(1)} MiB`;
}
