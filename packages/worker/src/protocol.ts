/**
 * The one message contract between the supervisor and its workers (node:cluster
 * IPC). Nothing crosses per request: only lifecycle and control messages.
 */
import type { Config } from './config.js';
import type { WorkerOptions } from './options.js';
import type { UpstreamCounters, UpstreamState } from './upstream/upstream-state.js';

/** Handed to a worker at fork, in the FLEXILIB_WORKER_INIT environment variable (JSON). */
export interface WorkerInit {
  options: WorkerOptions;
  config: Config;
  /** A private folder of this supervisor's run (under /dev/shm when present) for
   * files shared with the supervisor, e.g. `worker-<cluster id>.*` mappings. */
  runDir: string;
  /** Upstream pools as the supervisor knows them right now (membership, health), so a
   * worker forked late starts with API changes and health verdicts already applied. */
  upstreams: UpstreamState;
}

export const WORKER_INIT_ENV = 'FLEXILIB_WORKER_INIT';

/** Supervisor -> worker. */
export type ToWorker =
  /** Switch to this (already validated) config; requests in flight finish on the old routes. */
  | { type: 'config'; config: Config; generation: number }
  /** A library file changed on disk: load the new version for new requests. */
  | { type: 'reload-library'; file: string }
  /** Upstream pools changed (an origin added or removed, marked up or down, un-ejected, or the
   * config reloaded): the whole new picture. Sent before a `config` that names new pools. */
  | { type: 'upstream-state'; state: UpstreamState };

/** Worker -> supervisor. */
export type FromWorker =
  /** The worker's server is listening (sent once). */
  | { type: 'listening'; port: number; address: string }
  /** A config switch finished. */
  | { type: 'config-applied'; generation: number }
  /** Outcome of a library reload. */
  | { type: 'library-reloaded'; file: string; ok: boolean; error?: string }
  /** A connection to an upstream origin failed while proxying (refused, reset, connect timeout);
   * the worker ejected it locally. Sent once per ejection, not per request. */
  | { type: 'upstream-failure'; pool: string; origin: string; code: string; message: string }
  /** This worker's upstream counters since it started (cumulative); sent at most once a second, when they moved. */
  | { type: 'upstream-stats'; counters: UpstreamCounters };

export function isFromWorker(msg: unknown): msg is FromWorker {
  return typeof msg === 'object' && msg !== null && typeof (msg as { type?: unknown }).type === 'string';
}
