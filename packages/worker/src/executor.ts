/**
 * The contract every executor kind implements (native libraries, upstream
 * pools, WASM modules). The router hands each matched request to the
 * route's executor; the executor owns answering it, errors included.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { RouteSpec } from '@flexilib/contract';

/** The request fields the plugin executors copy into a plugin's memory (native slot,
 * WASM channel); node's IncomingMessage satisfies it, and so can a plain object
 * (`flexilib invoke` calls plugins without a server). */
export interface RequestLike {
  method?: string;
  url?: string;
  /** [name, value, name, value, ...], received order, names as sent. */
  rawHeaders: string[];
  httpVersionMajor: number;
  httpVersionMinor: number;
  socket: { remoteAddress?: string; remotePort?: number };
  /** The whole request body when the fast lane read it (Content-Length framed); undefined on
   * node:http's path, where executors read the body from the request stream. */
  body?: Buffer;
}

export type ExecutorKind = 'native' | 'upstream' | 'wasm' | 'lambda' | 'worker';

/** Per-request facts an executor reports back for the access log and metrics. */
export interface RequestStats {
  /** Arena bytes available to the call (0 for upstream routes); the access log calls it preAlloc. */
  arenaBytes: number;
  /** Bytes allocated beyond the arena. */
  alloc: number;
  /** Response body bytes, when the executor knows them (else taken from content-length). */
  bytes: number;
}

/**
 * One route's slot in the current metrics file (layout R offsets), for what
 * an executor counts beyond its requests: WASM instances and cold starts.
 */
export interface RouteCounters {
  /** The metrics file (one per route table) the counters belong to. */
  readonly table: object;
  add(field: number, n: number): void;
  set(field: number, value: number): void;
}

/** Where an error answer is counted: the request's metrics file (RequestMeter). */
export interface ErrorCounter {
  error(ex: Executor | undefined, code: string): void;
}

/** An answer produced without node:http's response object (see Executor.direct). */
export interface DirectAnswer {
  status: number;
  /** The reason phrase, when not node's standard one for the status. */
  reason: string | undefined;
  /** Flat [name, value, ...], content-type and content-length included. */
  headers: string[];
  body: Buffer | string | HeldBody;
}

/**
 * A direct answer's body left in the executor's own memory (a plugin's arena
 * or the block it took from malloc), for the fast lane to write from there
 * instead of from a copy in a JS Buffer. Held until sent or released, and at
 * most until the executor's next call.
 */
export interface HeldBody {
  readonly length: number;
  /** Write `head` (latin1) and then the body on `socket`, and let the memory go. */
  sendAfter(socket: Socket, head: string): void;
  /** Let the memory go unsent (an answer replaced, or one that has no body). */
  release(): void;
  /** The bytes, copied into a Buffer; the memory is let go. */
  take(): Buffer;
}

/**
 * What an asynchronous executor needs of a response: node's ServerResponse
 * has it, and so does the fast lane's own (lane-response.ts).
 */
export interface ResponseSink {
  readonly headersSent: boolean;
  writeHead(statusCode: number, reason: string, headers: OutgoingHttpHeaders | string[]): unknown;
  writeHead(statusCode: number, headers: OutgoingHttpHeaders | string[]): unknown;
  /**
   * writeHead for names and values node's strict HTTP parser took from a
   * response (an origin's): the fast lane skips re-checking them. Only the
   * lane's response has it; node's validates as always. `length`: their
   * Content-Length, as the caller read it (-1: none).
   */
  writeParsedHead?(statusCode: number, reason: string | undefined, headers: string[], length: number): unknown;
  /** False: wait for 'drain' before writing more. */
  write(chunk: Buffer): boolean;
  /** A string body is written in `encoding` (default utf8), as node's end() does. */
  end(body?: string | Buffer, encoding?: BufferEncoding): unknown;
  once(event: 'drain', listener: () => void): unknown;
  /** Emitted once, when the response is complete or the client went away. */
  on(event: 'close', listener: () => void): unknown;
  /** Cut the connection (the answer cannot be completed). */
  destroy(): unknown;
  /** Set on observed responses (metrics on): the request's metrics file and route, where an error answer is counted. */
  readonly meter?: ErrorCounter | null;
  readonly executor?: Executor;
}

export interface Executor {
  readonly kind: ExecutorKind;
  readonly route: RouteSpec;
  /** Answer the request. Must always end the response, whatever happens. */
  handle(req: IncomingMessage, res: ServerResponse, stats: RequestStats): void;
  /**
   * Answer a request synchronously, for the fast lane (fast-lane.ts), or
   * return null having done nothing, and node:http will serve it through
   * handle(). Its body, if any, is req.body (whole, within the route's
   * limit). The answer is valid until the executor's next call.
   */
  direct?(req: RequestLike, stats: RequestStats): DirectAnswer | null;
  /**
   * The fast lane's asynchronous form (upstream, threaded native and WASM
   * routes): answer a plain request through `res`, now or later. Its body, if
   * any, is req.body (whole, within the route's limit: the lane hands larger
   * ones to node:http). `req` is the lane's reused object, valid only during
   * the call: whatever the answer needs later is copied before returning.
   */
  laneHandle?(req: RequestLike, res: ResponseSink, stats: RequestStats): void;
  /** With direct: log an answer that breaks node:http's rules (a bad header,
   * status or reason) and return the one-line reason of the 502 sent instead. */
  refused?(err: Error): string;
  /** A new metrics file (route table) opened: count what the executor keeps itself into `counters` from now on. */
  countInto?(counters: RouteCounters): void;
  /** Release what the executor holds (slots, libraries). */
  close(): void;
}
