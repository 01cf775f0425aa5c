/**
 * The layout of a worker's metrics file: counters the worker writes with plain
 * typed-array stores into a MAP_SHARED mapping and the supervisor reads, with
 * no IPC per request and nothing lost when the worker is killed (the data
 * lives in the page cache, not in the worker).
 *
 * One file per (worker, route table): `worker-<cluster id>.<seq>.metrics` in
 * the run folder; a config reload gives each worker a new file with the new
 * route table (seq counts up), and the old one is sealed once its last
 * request ends. Everything is float64, 8-byte aligned, so each store and each
 * load is a single aligned 8-byte access — never torn on x86-64 or arm64.
 *
 *   [header: HEADER_SLOTS f64]
 *   [route 0 "(none)": ROUTE_SLOTS f64][route 1]...[route R-1]   requests that matched no route, then proxy.ini's routes in order
 *   [library 0: LIBRARY_SLOTS f64]...[library L-1]
 *   [route 0's error answers: one f64 per code of `errors`]...[route R-1's]
 *   [table: UTF-8 JSON {routes: [{key, kind}], libraries: [file], errors: [code]}]
 *
 * The file is written under a temporary name and renamed into place once the
 * header and table are complete, so a reader never sees a half-made file.
 */

import { ERRORS, type ErrorCode } from '../errors.js';

/** "FLXM" */
export const MAGIC = 0x464c584d;
export const LAYOUT_VERSION = 2;

/** Header fields (float64 indices). */
export const H = {
  magic: 0,
  version: 1,
  pid: 2,
  workerId: 3,
  seq: 4,
  routeCount: 5,
  libraryCount: 6,
  /** float64 index of route 0's slot */
  routesAt: 7,
  /** float64 index of library 0's slot */
  librariesAt: 8,
  /** byte offset and length of the JSON table */
  tableAt: 9,
  tableLength: 10,
  /** requests begun and not yet closed on this file's routes (a gauge) */
  inflight: 11,
  /** 1 once the route table is retired and idle: the worker writes no more */
  sealed: 12,
  /** float64 index of route 0's error-answer counters, and how many codes each route has */
  errorsAt: 13,
  errorCodeCount: 14,
} as const;
export const HEADER_SLOTS = 16;

/**
 * Request duration buckets, seconds (the `le` bounds). Finer than
 * prom-client's defaults at the low end: a native route answers in tens of
 * microseconds, a slow plugin in seconds.
 */
export const DURATION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

/** Status classes, in slot order. "aborted": the client went away before the response finished. */
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'aborted'] as const;
export const ABORTED = 5;

/** Fields of one route's slot (float64 offsets within the slot). */
export const R = {
  /** requests by status class: STATUS_CLASSES.length counters */
  requests: 0,
  /** non-cumulative duration bucket counts, DURATION_BUCKETS.length + 1 (the last is +Inf) */
  buckets: 6,
  durationSum: 6 + DURATION_BUCKETS.length + 1,
  responseBytes: 6 + DURATION_BUCKETS.length + 2,
  /** bytes plugins took beyond the pre-allocated arena */
  overflowBytes: 6 + DURATION_BUCKETS.length + 3,
  /** requests that took any bytes beyond the arena */
  overflowRequests: 6 + DURATION_BUCKETS.length + 4,
  /** requests the fast lane answered (the rest of the route's went through node:http) */
  fastLane: 6 + DURATION_BUCKETS.length + 5,
  /** WASM routes: live instances of the route's module (a gauge: only live files count, see WASM_GAUGE) */
  wasmInstances: 6 + DURATION_BUCKETS.length + 6,
  /** WASM routes: instances started (thread + instantiate), and the seconds those starts took */
  wasmColdStarts: 6 + DURATION_BUCKETS.length + 7,
  wasmColdStartSeconds: 6 + DURATION_BUCKETS.length + 8,
} as const;
export const ROUTE_SLOTS = 32;
/** The one route field that is a level, not a count: a final (dead or sealed) file's value is not added to the totals. */
export const WASM_GAUGE = R.wasmInstances;

/** Fields of one library's slot. */
export const L = { loads: 0, reloads: 1, loadFailures: 2, reloadFailures: 3 } as const;
export const LIBRARY_SLOTS = 4;

/** The route slot 0: requests no route matched (404). */
export const UNMATCHED_ROUTE = { key: '(none)', kind: 'none' } as const;

/**
 * The codes error answers are counted by (their `x-flexilib-error` header),
 * in slot order: the error catalogue's keys, so a code added there gets a
 * slot. A file names its codes in its table, so a reader never relies on this
 * order matching its own.
 */
export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];
/** Code -> slot within a route's error counters; built once. */
export const ERROR_SLOT: ReadonlyMap<string, number> = new Map(ERROR_CODES.map((code, i) => [code, i]));

export interface MetricsTable {
  routes: Array<{ key: string; kind: string }>;
  libraries: string[];
  /** The codes of each route's error counters, in slot order. */
  errors: string[];
}

export function fileSize(routes: number, libraries: number, errorCodes: number, tableBytes: number): number {
  return (HEADER_SLOTS + routes * (ROUTE_SLOTS + errorCodes) + libraries * LIBRARY_SLOTS) * 8 + tableBytes;
}

export const METRICS_FILE_RE = /^worker-(\d+)\.(\d+)\.metrics$/;

export function metricsFileName(workerId: number, seq: number): string {
  return `worker-${workerId}.${seq}.metrics`;
}
