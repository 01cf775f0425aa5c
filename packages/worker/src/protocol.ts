/**
 * The one message contract between the supervisor and its workers (node:cluster
 * IPC). Nothing crosses per request: only lifecycle and control messages.
 */
import type { Config } from './config.js';
import type { WorkerOptions } from './options.js';
import type { WasmLimits } from './wasm/limits.js';

/** A WASM service registered at run time on the admin API; the supervisor persists them. */
export interface WasmServiceSpec {
  name: string;
  /** Path prefix, no trailing slash: the service serves PREFIX, PREFIX/, PREFIX/... and PREFIX?... */
  prefix: string;
  /** Absolute path of the module file the supervisor stored (named by its hash: never rewritten). */
  module: string;
  sha256: string;
  /** Limits set at registration; the rest are the defaults. */
  limits: Partial<WasmLimits>;
}

/** Handed to a worker at fork, in the FLEXILIB_WORKER_INIT environment variable (JSON). */
export interface WorkerInit {
  options: WorkerOptions;
  config: Config;
  /** A private folder of this supervisor's run (under /dev/shm when present) for
   * files shared with the supervisor, e.g. `worker-<cluster id>.*` mappings. */
  runDir: string;
  /** The registered WASM services at fork time (checked before proxy.ini's routes). */
  services?: WasmServiceSpec[];
}

export const WORKER_INIT_ENV = 'FLEXILIB_WORKER_INIT';

/** Supervisor -> worker. */
export type ToWorker =
  /** Switch to this (already validated) config; requests in flight finish on the old routes. */
  | { type: 'config'; config: Config; generation: number }
  /** A library file changed on disk: load the new version for new requests. A .wasm
   * module is recompiled and its instances replaced (answered with library-reloaded too). */
  | { type: 'reload-library'; file: string }
  /** The complete set of registered WASM services replaces the previous one. */
  | { type: 'wasm-services'; services: WasmServiceSpec[]; generation: number };

/** Worker -> supervisor. */
export type FromWorker =
  /** The worker's server is listening (sent once). */
  | { type: 'listening'; port: number; address: string }
  /** A config switch finished. */
  | { type: 'config-applied'; generation: number }
  /** Outcome of a library reload. */
  | { type: 'library-reloaded'; file: string; ok: boolean; error?: string }
  /** A wasm-services set is in effect: new requests see it. */
  | { type: 'wasm-services-applied'; generation: number };

export function isFromWorker(msg: unknown): msg is FromWorker {
  return typeof msg === 'object' && msg !== null && typeof (msg as { type?: unknown }).type === 'string';
}
