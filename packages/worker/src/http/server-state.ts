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
 * A finished request as the recorder reads it. Each front end owns one and
 * refills it for every request (the recorder reads it synchronously), so
 * recording allocates nothing per request.
 */
export interface FinishedRequest {
  req: LoggedRequest;
  executor: Executor | undefined;
  meter: RequestMeter | null;
  status: number;
  /** false: the client left before the answer was complete (recorded as 499). */
  finished: boolean;
  bytes: number;
  arenaBytes: number;
  alloc: number;
  startMs: number;
  /** When the head was ready; 0 when unknown. */
  ttfbMs: number;
  /** The fast lane answered (not node:http). */
  fast: boolean;
}

/** The placeholder request of a FinishedRequest between two requests (none is held on to). */
export const NO_REQUEST = null as unknown as LoggedRequest;

/** A front end's reusable FinishedRequest, every field set so that its shape never changes. */
export function finishedRequest(fast: boolean): FinishedRequest {
  return { req: NO_REQUEST, executor: undefined, meter: null, status: 0, finished: false, bytes: 0, arenaBytes: 0, alloc: 0, startMs: 0, ttfbMs: 0, fast };
}

/** What a response object keeps of its request for recording (node:http's observed response, the lane's LaneResponse). */
export interface ObservedResponseState {
  readonly req: LoggedRequest;
  readonly executor: Executor | undefined;
  readonly meter: RequestMeter | null;
  readonly startMs: number;
  readonly ttfbMs: number;
}

/** Copy into `done` the request, executor, meter and times a response kept. */
export function takeObserved(done: FinishedRequest, res: ObservedResponseState): void {
  done.req = res.req;
  done.executor = res.executor;
  done.meter = res.meter;
  done.startMs = res.startMs;
  done.ttfbMs = res.ttfbMs;
}

/**
 * Records a finished request in the metrics and the access log; node:http's
 * responses and the fast lane's answers alike. It lets go of the request,
 * executor and meter in `done` afterwards.
 */
export type RequestRecorder = (done: FinishedRequest) => void;
