/**
 * A WASM route's or service's limits: the sandbox's per-request time limit and
 * memory cap, and how its instances scale. Set in proxy.ini's `[route KEY]`
 * section (timeout, memory, instances, idle) or in a service registration.
 */
import { parseSize } from '../size.js';
import { parseDuration } from '../duration.js';

export interface WasmLimits {
  /** A request not answered within this many ms answers 504 and its instance is stopped. */
  timeoutMs: number;
  /** Cap on the module's linear memory, bytes (a multiple of the 64 KiB page). */
  memoryBytes: number;
  /** Instances (threads) one worker process runs at most for this module; calls beyond queue. */
  instances: number;
  /** An instance idle this long is released (scale to zero); 0 releases it after every request. */
  idleMs: number;
  /**
   * Where calls run: `loop` on the worker's event loop (the module rewritten
   * to be interruptible), `thread` on instance threads, `auto` the loop when
   * the rewrite succeeds, else threads.
   */
  run: WasmRun;
}

export const WASM_RUNS = ['auto', 'loop', 'thread'] as const;
export type WasmRun = (typeof WASM_RUNS)[number];

/**
 * Defaults. 10 s: long enough for any plausible plugin call, short enough that
 * a stuck module frees its client well before node:http's request timeout.
 * 128 MiB: room for a 16 MiB response grown by doubling (old and new block
 * coexist during realloc) with slack for fragmentation. 4 instances: a worker
 * process can overlap four blocking calls of one module; most modules use one.
 * 60 s idle: a module serving a request a minute stays warm.
 */
export const DEFAULT_WASM_LIMITS: WasmLimits = {
  timeoutMs: 10_000,
  memoryBytes: 128 * 1024 * 1024,
  instances: 4,
  idleMs: 60_000,
  run: 'auto',
};

export const WASM_PAGE = 65536;
/** wasm32 addresses 4 GiB at most. */
const MAX_MEMORY = 65536 * WASM_PAGE;
const MAX_TIMEOUT_MS = 300_000;
const MAX_INSTANCES = 64;
const MAX_IDLE_MS = 86_400_000;

/** The option names, as proxy.ini and the services API spell them. */
export const WASM_LIMIT_OPTIONS = ['timeout', 'memory', 'instances', 'idle', 'run'] as const;
export type WasmLimitOption = (typeof WASM_LIMIT_OPTIONS)[number];

/**
 * Validate one limit given as text (proxy.ini) or a number (JSON: ms, bytes,
 * count). Returns the field to set and its value, or an error message naming
 * what was expected.
 */
export function parseWasmLimit(option: WasmLimitOption, value: string | number): { key: 'timeoutMs' | 'memoryBytes' | 'instances' | 'idleMs'; value: number } | { key: 'run'; value: WasmRun } | { error: string } {
  const text = String(value);
  switch (option) {
    case 'timeout': {
      const n = typeof value === 'number' ? value : parseDuration(text);
      if (n === undefined || !Number.isInteger(n) || n < 1 || n > MAX_TIMEOUT_MS) {
        return { error: `timeout = "${text}": expected a duration from 1ms to ${MAX_TIMEOUT_MS / 1000}s, such as 500ms or 10s` };
      }
      return { key: 'timeoutMs', value: n };
    }
    case 'memory': {
      const n = typeof value === 'number' ? value : parseSize(text);
      if (n === undefined || !Number.isInteger(n) || n < WASM_PAGE || n > MAX_MEMORY) {
        return { error: `memory = "${text}": expected a size from 64k to 4g, such as 64m` };
      }
      // Round down to whole pages: the cap is enforced as the memory's maximum page count.
      return { key: 'memoryBytes', value: Math.floor(n / WASM_PAGE) * WASM_PAGE };
    }
    case 'instances': {
      const n = Number(text);
      if (!Number.isInteger(n) || n < 1 || n > MAX_INSTANCES) return { error: `instances = "${text}": expected an integer from 1 to ${MAX_INSTANCES}` };
      return { key: 'instances', value: n };
    }
    case 'idle': {
      const n = typeof value === 'number' ? value : parseDuration(text);
      if (n === undefined || !Number.isInteger(n) || n < 0 || n > MAX_IDLE_MS) {
        return { error: `idle = "${text}": expected a duration from 0 to 24h, such as 30s` };
      }
      return { key: 'idleMs', value: n };
    }
    case 'run': {
      if (!(WASM_RUNS as readonly string[]).includes(text)) return { error: `run = "${text}": expected ${WASM_RUNS.join(', ')}` };
      return { key: 'run', value: text as WasmRun };
    }
  }
}

/** Defaults overridden by what a route or service sets. */
export function resolveLimits(partial: Partial<WasmLimits> | undefined): WasmLimits {
  return { ...DEFAULT_WASM_LIMITS, ...partial };
}
