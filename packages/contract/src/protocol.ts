/**
 * The one message contract between the supervisor and its workers (node:cluster
 * IPC). Nothing crosses per request: only lifecycle and control messages.
 * Each end checks what it receives with message-check.ts.
 *
 * A worker that starts gets the state of the moment in WorkerInit; what the
 * supervisor sends it before its `hello` waits in the WorkerPool and follows
 * the init. A config reload asks only the workers that listen, and a worker
 * whose WorkerInit went stale while it was starting gets a `config` when it
 * reports `listening`.
 */
import type { Config } from './config.js';
import type { WorkerOptions } from './options.js';
import type { UpstreamState } from './upstream/upstream-state.js';
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

/** Handed to a worker at fork, as the first IPC message (WorkerInitMessage): an
 * environment variable would cap the config's size (spawn E2BIG past 128 KiB). */
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
}

/** Set ('1') in a worker's environment: what it is, so worker-main run by hand says so. */
export const WORKER_ENV = 'FLEXILIB_WORKER';

/** Supervisor -> worker, once, in answer to the worker's `hello` (messages sent
 * before a worker listens for them are lost): what the worker starts with. */
export interface WorkerInitMessage {
  type: 'init';
  init: WorkerInit;
}

/** The bound TCP socket that comes with a `listen` message (node's tcp_wrap; net.Server.listen takes it). */
export type ListenHandle = object;

/**
 * Supervisor -> worker messages the worker answers, each with exactly one reply
 * of the kind REPLY_OF names. The supervisor asks through its WorkerPool's
 * request() (worker-requests.ts), which numbers each request: the worker copies
 * `requestId` into its reply, so a late reply to an earlier request is never
 * taken for a later one.
 */
export type WorkerRequest =
  /** Switch to this (already validated) config and this quarantine set; requests
   * in flight finish on the old routes. Sent on SIGHUP, and to re-sync a worker
   * whose WorkerInit went stale while it was starting. */
  | { type: 'config'; config: Config; generation: number; quarantined: QuarantineNotice[] }
  /** A library file changed on disk (complete ELF, debounced): load the new
   * version for new requests if this worker has it loaded; calls in flight finish
   * on the old one. `lift`: the library was quarantined and the change lifts it —
   * if the new version fails to load, drop the old one rather than serve it
   * again. (SIGHUP lifts every quarantine with its `config`.) */
  | { type: 'reload-library'; file: string; lift?: boolean }
  /** The complete set of registered WASM services replaces the previous one. */
  | { type: 'wasm-services'; services: WasmServiceSpec[]; generation: number };

/** The worker's answers to WorkerRequests. */
export type WorkerReply =
  /** A config switch finished. */
  | { type: 'config-applied'; generation: number }
  /** Outcome of a `reload-library`. `loaded`: this worker had the library loaded
   * and loaded the new version (false: nothing to do, the next use loads the file). */
  | { type: 'library-reloaded'; file: string; ok: boolean; loaded: boolean; error?: string }
  /** A wasm-services set is in effect: new requests see it. */
  | { type: 'wasm-services-applied'; generation: number };

/** Which reply answers which request: the one place the pairs are declared. */
export const REPLY_OF = {
  config: 'config-applied',
  'reload-library': 'library-reloaded',
  'wasm-services': 'wasm-services-applied',
} as const satisfies Record<WorkerRequest['type'], WorkerReply['type']>;

/** A request or a reply on the wire: with the number that pairs them. */
export type Numbered<M> = M & { requestId: number };

/** The reply a request gets, e.g. ReplyTo<{ type: 'config', ... }> is the numbered `config-applied`. */
export type ReplyTo<M extends WorkerRequest> = Numbered<Extract<WorkerReply, { type: (typeof REPLY_OF)[M['type']] }>>;

/** Supervisor -> worker. */
export type ToWorker =
  | Numbered<WorkerRequest>
  /** The library crashed workers too often: its routes answer 503 + Retry-After
   * until a `reload-library` with `lift` or a `config` (SIGHUP) ends it. */
  | { type: 'quarantine'; notice: QuarantineNotice }
  /** Serve: listen on the supervisor's socket, which comes as this message's
   * handle (ListenHandle). Sent to a worker once its init is sent, to a spare
   * when it takes over. The supervisor holds the socket for its whole life, so
   * the port never changes and has a listener while no worker does. */
  | { type: 'listen' }
  /** Shut down gracefully: stop accepting, finish the requests in flight, close
   * keep-alive connections, exit 0. The supervisor enforces the deadline. */
  | { type: 'stop' }
  /** Upstream pools changed (an origin added or removed, marked up or down, un-ejected, or the
   * config reloaded): the whole new picture. Sent before a `config` that names new pools. */
  | { type: 'upstream-state'; state: UpstreamState };

/** Worker -> supervisor. */
export type FromWorker =
  | Numbered<WorkerReply>
  /** The worker listens for IPC messages: send its WorkerInitMessage now. */
  | { type: 'hello' }
  /** A spare (WorkerInit.standby) is set up and waits for `listen`. */
  | { type: 'standby' }
  /** The worker's server is listening (sent once). */
  | { type: 'listening'; port: number; address: string }
  /** A connection to an upstream origin failed while proxying (refused, reset, connect timeout);
   * the worker ejected it locally. Sent once per ejection, not per request. `epoch`: the origin's
   * epoch the worker saw when it failed (several workers seeing one event report the same epoch). */
  | { type: 'upstream-failure'; pool: string; origin: string; epoch: number; code: string; message: string }
  /** A threaded plugin call ran past its timeout and cannot be cancelled: replace this worker
   * (a replacement listens, then this one gets `stop`; its exit is not replaced again). Sent once. */
  | { type: 'retire'; reason: string };
