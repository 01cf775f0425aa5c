/** HTTP to 127.0.0.1: one request, and probing until every worker gives the wanted answer. */
import http from 'node:http';
import { sleep } from './eventually.js';

export interface RequestOptions {
  method?: string;
  headers?: http.OutgoingHttpHeaders;
  body?: string | Buffer;
  /**
   * Default false: a fresh connection per request (Connection: close), so
   * node:cluster spreads requests over the workers. Pass a keep-alive agent
   * to reuse connections.
   */
  agent?: http.Agent | false;
  /** The whole exchange must finish within this (default 10 s). */
  timeoutMs?: number;
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  /** The body decoded as UTF-8. */
  body: string;
  /** The body as received, byte for byte. */
  bytes: Buffer;
}

/**
 * One request to 127.0.0.1:port. Rejects on a connection error or a timeout.
 *
 * @example
 * const r = await request(f.port, '/echo', { method: 'POST', body: 'ping' });
 * assert.equal(r.body, 'POST /echo\nping');
 */
export function request(port: number, target = '/', opts: RequestOptions = {}): Promise<Reply> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: target, method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const bytes = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: bytes.toString('utf8'), bytes });
      });
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`request ${target} to 127.0.0.1:${port} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    if (opts.body !== undefined) req.end(opts.body);
    else req.end();
  });
}

export interface AnswersOptions {
  /** Consecutive good answers needed (default 6, so every worker has agreed). */
  n?: number;
  timeoutMs?: number;
  /** Pause between probes (default 10 ms). */
  everyMs?: number;
}

/**
 * Probe `target` on fresh connections until `n` answers in a row satisfy
 * `ok`; resolves with the time it took. A connection error breaks the streak.
 *
 * @example
 * await waitForAnswers(f.port, '/v', (r) => r.body === 'v2');
 */
export async function waitForAnswers(port: number, target: string, ok: (r: Reply) => boolean, opts: AnswersOptions = {}): Promise<number> {
  const start = Date.now();
  const n = opts.n ?? 6;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  let streak = 0;
  let last = '';
  while (Date.now() < start + timeoutMs) {
    try {
      const r = await request(port, target, { timeoutMs: 2000 });
      last = `${r.status} ${r.body.trim()}`;
      streak = ok(r) ? streak + 1 : 0;
    } catch (e) {
      last = (e as Error).message;
      streak = 0;
    }
    if (streak >= n) return Date.now() - start;
    await sleep(opts.everyMs ?? 10);
  }
  throw new Error(`${target}: no ${n} good answers in a row within ${timeoutMs} ms (last: ${last})`);
}
