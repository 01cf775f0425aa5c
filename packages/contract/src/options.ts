/** The worker's settings, decided by the supervisor (flags and env) and handed over at fork. */
export interface WorkerOptions {
  port: number;
  host: string;
  /** Arena bytes per call slot (RESPONSE_PREALLOCATION_KB * 1024). */
  arenaBytes: number;
  maxBodyBytes: number;
  /** node:http's limit on the request line plus headers. */
  maxHeaderBytes: number;
  keepAliveTimeoutMs: number;
  /** Time a client has to send the complete request headers (slowloris guard). */
  headersTimeoutMs: number;
  /** Time a client has to send the complete request. */
  requestTimeoutMs: number;
  /** Time a threaded native call may take when its route sets no `timeout` (the supervisor's
   * --hang-timeout; 0: never): past it the client gets 504 and the worker is replaced. */
  callTimeoutMs: number;
  /** A connection whose client takes none of its pending answer for this long is closed (0: never). */
  sendTimeoutMs: number;
  accessLog: boolean;
  /** Count requests into the shared metrics file the supervisor scrapes (--no-metrics, METRICS=0 turn it off). */
  metrics: boolean;
  logLevel: string;
  logFormat: 'json' | 'text';
  /** Serve plain requests of inline native and upstream routes without node:http's objects (the worker's http/fast-lane.ts; --no-fast-lane, FAST_LANE=0 turn it off). */
  fastLane: boolean;
}

export const DEFAULT_WORKER_OPTIONS: WorkerOptions = {
  port: 8069,
  host: '0.0.0.0',
  arenaBytes: 8 * 1024,
  maxBodyBytes: 1024 * 1024,
  maxHeaderBytes: 16 * 1024,
  keepAliveTimeoutMs: 5000,
  headersTimeoutMs: 20_000,
  requestTimeoutMs: 60_000,
  sendTimeoutMs: 60_000,
  callTimeoutMs: 30_000,
  accessLog: true,
  metrics: true,
  logLevel: 'info',
  logFormat: 'json',
  fastLane: true,
};
