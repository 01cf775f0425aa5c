/**
 * What the two front ends share, node:http's server (http-server.ts) and the
 * fast lane in front of it (fast-lane.ts): the state they dispatch with and
 * how they record a finished request. Its own module so that neither front
 * end imports the other's types back.
 */
import type { LoggedRequest } from '../observe/access-log.js';
import type { RequestMeter } from '../observe/metrics/request-meter.js';
import type { Executor } from '../executor.js';
import type { Router } from '../routing/router.js';

export interface ServerState {
  router: Router;
  /** Counts requests for /metrics; null when metrics are off. Swapped with the router on a config switch. */
  meter: RequestMeter | null;
}

/**
 * Records a finished request in the metrics and the access log; node:http's
 * responses and the fast lane's answers alike. `ttfbMs` is 0 when unknown;
 * `fast` when the fast lane answered.
 */
export type RequestRecorder = (
  req: LoggedRequest,
  ex: Executor | undefined,
  meter: RequestMeter | null,
  status: number,
  finished: boolean,
  bytes: number,
  arenaBytes: number,
  alloc: number,
  startMs: number,
  ttfbMs: number,
  fast: boolean,
) => void;
