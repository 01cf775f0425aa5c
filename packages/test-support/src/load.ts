/** Bounded keep-alive load: a few loops, each with one request in flight at a time. */
import http from 'node:http';
import { request } from './http.js';

export interface LoadResult {
  ok: number;
  failed: number;
  /** The first 20 failures (status and body, or the connection error). */
  errors: string[];
  /** Count of each 200 body seen (trimmed). */
  bodies: Map<string, number>;
  /** Non-200 statuses seen. */
  statuses: Map<number, number>;
  /** Longest time without any successful answer, ms. */
  maxGapMs: number;
  /** Failures of each loop (each loop has one request in flight at a time). */
  failedByLoop: number[];
  /** With `countHeader`: count of each value of that header on 200 answers (e.g. which origin answered). */
  byHeader: Map<string, number>;
}

export interface LoadOptions {
  /** Loops (and keep-alive connections), default 8. */
  concurrency?: number;
  /** Stop by itself after this long (default 60 s) if stop() is not called. */
  maxMs?: number;
  headers?: Record<string, string>;
  /** Default GET. */
  method?: string;
  /** Sent with every request. */
  body?: string | Buffer;
  /** Stop by itself after this many requests in all (default: no limit; maxMs still applies). */
  maxRequests?: number;
  /** Count the 200 answers by this response header's value, in `byHeader`. */
  countHeader?: string;
}

/**
 * `concurrency` loops, each sending requests one after another on keep-alive
 * connections, until stop() (or `maxRequests`, or `maxMs`: `done` resolves
 * when the loops end by themselves). A failure is a connection error or a status
 * other than 200. `result` is live while the load runs.
 *
 * @example
 * const traffic = load(f.port, '/v', { concurrency: 8, maxMs: 30_000 });
 * t.after(() => traffic.stop());
 * // ... reload, kill, signal ...
 * const res = await traffic.stop();
 * assert.equal(res.failed, 0, res.errors.join('; '));
 */
export function load(port: number, target: string, opts: LoadOptions = {}): { result: LoadResult; done: Promise<LoadResult>; stop(): Promise<LoadResult> } {
  const n = opts.concurrency ?? 8;
  const agent = new http.Agent({ keepAlive: true, maxSockets: n });
  const result: LoadResult = { ok: 0, failed: 0, errors: [], bodies: new Map(), statuses: new Map(), maxGapMs: 0, failedByLoop: new Array<number>(n).fill(0), byHeader: new Map() };
  let running = true;
  let lastOk = Date.now();
  const maxRequests = opts.maxRequests ?? Infinity;
  let sent = 0;
  const onOk = (body: string, header: string | undefined) => {
    const now = Date.now();
    result.maxGapMs = Math.max(result.maxGapMs, now - lastOk);
    lastOk = now;
    result.ok++;
    result.bodies.set(body, (result.bodies.get(body) ?? 0) + 1);
    if (header !== undefined) result.byHeader.set(header, (result.byHeader.get(header) ?? 0) + 1);
  };
  const stopAt = Date.now() + (opts.maxMs ?? 60_000);
  const loop = async (_: unknown, i: number) => {
    while (running && sent < maxRequests && Date.now() < stopAt) {
      sent++;
      try {
        const r = await request(port, target, { agent, method: opts.method, body: opts.body, headers: opts.headers, timeoutMs: 5000 });
        if (r.status === 200) onOk(r.body.trim(), opts.countHeader === undefined ? undefined : String(r.headers[opts.countHeader.toLowerCase()]));
        else {
          result.failed++;
          result.failedByLoop[i]++;
          result.statuses.set(r.status, (result.statuses.get(r.status) ?? 0) + 1);
          if (result.errors.length < 20) result.errors.push(`${r.status} ${r.body.trim()}`);
        }
      } catch (e) {
        result.failed++;
        result.failedByLoop[i]++;
        if (result.errors.length < 20) result.errors.push((e as Error).message);
      }
    }
  };
  const done = Promise.all(Array.from({ length: n }, loop)).then(() => {
    agent.destroy();
    return result;
  });
  return {
    result,
    done,
    stop(): Promise<LoadResult> {
      running = false;
      return done;
    },
  };
}
