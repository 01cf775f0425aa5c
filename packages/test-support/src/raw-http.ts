/** One request with exactly the headers given, on 127.0.0.1: the tests' shorthand for the one raw client (@flexilib/plugin-abi/conformance). */
import { rawRequest as rawRequestTo } from '@flexilib/plugin-abi/conformance';

export interface RawResponse {
  status: number;
  /** Lower-case names; a repeated header keeps its last value. */
  headers: Record<string, string>;
  body: Buffer;
  /** From connecting to the last body byte. */
  ms: number;
}

export interface RawRequestOptions {
  method?: string;
  target?: string;
  /** Default [['Host', 'localhost']]. */
  headers?: Array<[string, string]>;
  body?: Buffer | string;
  /** Default 20 s. */
  timeoutMs?: number;
}

/**
 * One request over a fresh connection with exactly these headers (node's
 * client would add Connection and others, and plugins may count headers).
 * Content-Length is added when there is a body and none is given.
 *
 * @example
 * const r = await rawRequest(f.port, { target: '/echo', method: 'POST', body: 'ping' });
 * assert.equal(r.body.toString(), 'POST /echo\nping');
 */
export async function rawRequest(port: number, opts: RawRequestOptions = {}): Promise<RawResponse> {
  const headers = [...(opts.headers ?? [['Host', 'localhost']])];
  const body = opts.body === undefined ? Buffer.alloc(0) : Buffer.from(opts.body);
  if (opts.body !== undefined && !headers.some(([k]) => k.toLowerCase() === 'content-length')) headers.push(['Content-Length', String(body.length)]);
  const t0 = performance.now();
  const r = await rawRequestTo('127.0.0.1', port, { method: opts.method ?? 'GET', target: opts.target ?? '/', headers, body }, opts.timeoutMs ?? 20_000);
  const last: Record<string, string> = {};
  for (const [k, v] of r.rawHeaders) last[k.toLowerCase()] = v;
  return { status: r.status, headers: last, body: r.body, ms: performance.now() - t0 };
}
