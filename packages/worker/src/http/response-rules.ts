/**
 * The server's rules for turning what a plugin produced into an HTTP answer,
 * in one place so every executor kind (native, WASM) and `flexilib invoke`
 * answer alike:
 *
 *   status 0                   -> 200
 *   handle_request returned ≠0 -> 500, unless the plugin set a status >= 400;
 *                                 the body written so far is kept, or
 *                                 "Internal Server Error" when there is none
 *   no content-type header     -> content-type: text/plain
 *   always                     -> content-length of the body (the host frames it)
 *   status outside 200–599     -> refused (final-status.ts); the executor answers 502
 *
 * Applied in place on the hot path: nothing is allocated but the
 * content-length string.
 */
import type { HeldBody, ResponseSink } from '../executor.js';
import { checkFinalStatus } from './final-status.js';

/** What a plugin call produced, as the rules need it. Made by newPluginResponse only, so every
 * executor's object has one hidden class and the functions here stay monomorphic. */
export interface PluginResponse {
  status: number;
  reason: string | undefined;
  /** Flat [name, value, name, value, ...] as node:http's writeHead takes them. */
  headers: string[];
  hasContentType: boolean;
  /** Small native bodies come as a latin1 string: node:http then sends head and body
   * in one write instead of a writev of two buffers, and no Buffer is made. Larger
   * ones for the fast lane stay in native memory (HeldBody), sent from there. */
  body: Buffer | string | HeldBody;
  /** Bytes the plugin took beyond the arena (malloc). */
  heapBytes: number;
  /** Bytes of the arena the call used. */
  arenaUsed: number;
}

/** A response object to be reused call after call by its owner (a slot, an executor). */
export function newPluginResponse(): PluginResponse {
  return { status: 0, reason: undefined, headers: [], hasContentType: false, body: '', heapBytes: 0, arenaUsed: 0 };
}

/** Rewrite `out` (status, body, headers) by the rules above; `rc` is handle_request's return. */
export function applyResponseRules(out: PluginResponse, rc: number): void {
  if (out.status === 0) out.status = 200;
  if (rc !== 0) {
    if (out.status < 400) out.status = 500;
    if (out.body.length === 0) out.body = 'Internal Server Error';
  }
  if (!out.hasContentType) {
    out.headers.push('content-type', 'text/plain');
    out.hasContentType = true;
  }
  out.headers.push('content-length', String(out.body.length));
}

/**
 * Write a settled answer, through node:http or the fast lane's LaneResponse
 * (the same bytes either way). Returns null once it is sent, or
 * the reason it was refused (a non-final status, or a header node:http
 * rejects) before anything was written: the caller logs it and answers 502.
 */
export function writeAnswer(res: ResponseSink, out: PluginResponse): Error | null {
  try {
    checkFinalStatus(out.status);
    if (out.reason !== undefined) res.writeHead(out.status, out.reason, out.headers);
    else res.writeHead(out.status, out.headers);
  } catch (err) {
    releaseHeld(out.body);
    return err as Error;
  }
  const body = out.body;
  if (typeof body === 'string') res.end(body, 'latin1');
  else res.end(body instanceof Uint8Array ? body : body.take());
  return null;
}

/** Let a body held in native memory go (an answer replaced or refused); nothing for a string or Buffer. */
export function releaseHeld(body: Buffer | string | HeldBody): void {
  if (typeof body !== 'string' && !(body instanceof Uint8Array)) body.release();
}
