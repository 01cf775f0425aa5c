/**
 * The one message contract between the supervisor and its workers (node:cluster
 * IPC). Nothing crosses per request: only lifecycle and control messages.
 */
import type { Config } from './config.js';
import type { WorkerOptions } from './options.js';

/** Handed to a worker at fork, in the FLEXILIB_WORKER_INIT environment variable (JSON). */
export interface WorkerInit {
  options: WorkerOptions;
  config: Config;
  /** A private folder of this supervisor's run (under /dev/shm when present) for
   * files shared with the supervisor, e.g. `worker-<cluster id>.*` mappings. */
  runDir: string;
}

export const WORKER_INIT_ENV = 'FLEXILIB_WORKER_INIT';

/** Supervisor -> worker. */
export type ToWorker =
  /** Switch to this (already validated) config; requests in flight finish on the old routes. */
  | { type: 'config'; config: Config; generation: number }
  /** A library file changed on disk: load the new version for new requests. */
  | { type: 'reload-library'; file: string };

/** Worker -> supervisor. */
export type FromWorker =
  /** The worker's server is listening (sent once). */
  | { type: 'listening'; port: number; address: string }
  /** A config switch finished. */
  | { type: 'config-applied'; generation: number }
  /** Outcome of a library reload. */
  | { type: 'library-reloaded'; file: string; ok: boolean; error?: string };

export function isFromWorker(msg: unknown): msg is FromWorker {
  return typeof msg === 'object' && msg !== null && typeof (msg as { type?: unknown }).type === 'string';
}
