/**
 * The one message contract between the supervisor and its workers (node:cluster
 * IPC). Nothing crosses per request: only lifecycle and control messages.
 * Each end checks what it receives with message-check.ts.
 *
 * The supervisor sends control messages only to workers that reported
 * `listening` (a worker still starting might drop them); a worker that starts
 * gets the state of the moment in WorkerInit, and is re-synced with a `config`
 * message when that state changed while it was starting.
 */
import type { Config } from './config.js';
import type { WorkerOptions } from './options.js';
import type { UpstreamCounters, UpstreamState } from './upstream/upstream-state.js';
import type { WasmLimits } from './wasm/limits.js';

/** A library whose routes answer 503 because it crashed workers too often. */
export interface QuarantineNotice {
  /** The library's resolved path, as in the config's route targets. */
  library: string;
  /** One line for the 503 body, e.g. "library /x/libcrash.so crashed workers 3 times in 60 s (SIGSEGV) ...". */
  reason: string;
  /** Seconds for the Retry-After header. */
  retryAfterS: number;
}

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
  /** The config's generation (0 at start, +1 on every successful SIGHUP); recorded
   * with each call in progress in the call marker, so the supervisor maps a route
   * index back to the right config after a crash. */
  generation: number;
  /** Libraries quarantined at fork time: their routes answer 503 from the start. */
  quarantined: QuarantineNotice[];
  /** A spare: set everything up but do not listen until a `listen` message
   * (sent when a worker dies, so the replacement listens within milliseconds). */
  standby?: boolean;
  /** A private folder of this supervisor's run (under /dev/shm when present) for
   * files shared with the supervisor: `worker-<cluster id>.marker` (the call
   * marker, marker-layout.ts) and `worker-<cluster id>.metrics`. */
  runDir: string;
  /** Upstream pools as the supervisor knows them right now (membership, health), so a
   * worker forked late starts with API changes and health verdicts already applied. */
  upstreams: UpstreamState;
  /** The registered WASM services at fork time (checked before proxy.ini's routes). */
  services?: WasmServiceSpec[];
  /** The supervisor's Lambda function host: its loopback invoke port (lambda routes post events to it). */
  lambdaPort?: number;
}

export const WORKER_INIT_ENV = 'FLEXILIB_WORKER_INIT';

/** Supervisor -> worker. */
export type ToWorker =
  /** Switch to this (already validated) config and this quarantine set; requests
   * in flight finish on the old routes. Sent on SIGHUP, and to re-sync a worker
   * whose WorkerInit went stale while it was starting. Answered by `config-applied`. */
  | { type: 'config'; config: Config; generation: number; quarantined: QuarantineNotice[] }
  /** A library file changed on disk (complete ELF, debounced): load the new
   * version for new requests if this worker has it loaded; calls in flight finish
   * on the old one. `lift`: the library was quarantined and the change lifts it —
   * if the new version fails to load, drop the old one rather than serve it
   * again. Answered by `library-reloaded`. */
  | { type: 'reload-library'; file: string; lift?: boolean }
  /** The library crashed workers too often: its routes answer 503 + Retry-After until lifted. */
  | { type: 'quarantine'; notice: QuarantineNotice }
  /** The quarantine of this library ends (SIGHUP sends a `config` instead). */
  | { type: 'quarantine-lift'; library: string }
  /** A spare takes over: listen now, on this port (the real one once known, so
   * a server started with port 0 keeps its port when every worker died). */
  | { type: 'listen'; port: number }
  /** Shut down gracefully: stop accepting, finish the requests in flight, close
   * keep-alive connections, exit 0. The supervisor enforces the deadline. */
  | { type: 'stop' }
  /** Upstream pools changed (an origin added or removed, marked up or down, un-ejected, or the
   * config reloaded): the whole new picture. Sent before a `config` that names new pools. */
  | { type: 'upstream-state'; state: UpstreamState }
  /** The complete set of registered WASM services replaces the previous one. */
  | { type: 'wasm-services'; services: WasmServiceSpec[]; generation: number };

/** Worker -> supervisor. */
export type FromWorker =
  /** A spare (WorkerInit.standby) is set up and waits for `listen`. */
  | { type: 'standby' }
  /** The worker's server is listening (sent once). */
  | { type: 'listening'; port: number; address: string }
  /** A config switch finished. */
  | { type: 'config-applied'; generation: number }
  /** Outcome of a `reload-library`. `loaded`: this worker had the library loaded
   * and loaded the new version (false: nothing to do, the next use loads the file). */
  | { type: 'library-reloaded'; file: string; ok: boolean; loaded: boolean; error?: string }
  /** A connection to an upstream origin failed while proxying (refused, reset, connect timeout);
   * the worker ejected it locally. Sent once per ejection, not per request. */
  | { type: 'upstream-failure'; pool: string; origin: string; code: string; message: string }
  /** This worker's upstream counters since it started (cumulative); sent at most once a second, when they moved. */
  | { type: 'upstream-stats'; counters: UpstreamCounters }
  /** A threaded plugin call ran past its timeout and cannot be cancelled: replace this worker
   * (a replacement listens, then this one gets `stop`; its exit is not replaced again). Sent once. */
  | { type: 'retire'; reason: string }
  /** A wasm-services set is in effect: new requests see it. */
  | { type: 'wasm-services-applied'; generation: number };
