/**
 * The conformance check run before every measurement: send the request wrk
 * sends, byte for byte, on a raw socket and compare the answer with the
 * baseline's. A benchmark of servers answering different bytes would compare
 * nothing, so a difference stops the bench.
 */
import net from 'node:net';
import type { Conformance } from './scenario.ts';

/** What wrk 4 sends for `wrk http://127.0.0.1:PORT/`: the request line and a Host header (wrk.lua's wrk.format). */
export function wrkRequest(port: number): string {
  return `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`;
}

/** The number of headers in wrkRequest, hence the body the C example answers it with (" 1"). */
export const WRK_REQUEST_HEADERS = 1;

export interface RawResponse {
  /** Everything received, headers and body. */
  raw: Buffer;
  status: number;
  /** Lower-cased names; the last value wins. */
  headers: Map<string, string>;
  body: Buffer;
}

/** Send `request` on a fresh connection and read one response (framed by content-length). */
export function fetchRaw(port: number, request: string, timeoutMs = 5000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no complete answer from 127.0.0.1:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (err: Error | null, r?: RawResponse) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(r!);
    };
    sock.once('connect', () => sock.write(request));
    sock.on('error', (err) => done(err));
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = all.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '')?.[1] ?? NaN);
      const headers = new Map<string, string>();
      for (const line of head.slice(1)) {
        const i = line.indexOf(':');
        if (i > 0) headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
      }
      const len = Number(headers.get('content-length') ?? NaN);
      if (!Number.isFinite(len)) return done(new Error(`answer without content-length: ${JSON.stringify(head.join('\n'))}`));
      if (all.length < end + 4 + len) return;
      done(null, { raw: all.subarray(0, end + 4 + len), status, headers, body: all.subarray(end + 4, end + 4 + len) });
    });
  });
}

/** The raw answer with the Date header's value masked: the one part that legitimately differs. */
export function normalize(raw: Buffer): string {
  return raw.toString('latin1').replace(/^(date:)[^\r\n]*/gim, '$1 <date>');
}

/**
 * Compare a scenario's answer with the baseline's; returns a description of
 * the first difference, or undefined when they conform.
 */
export function compareAnswers(baseline: RawResponse, other: RawResponse, mode: Conformance): string | undefined {
  if (mode === 'identical') {
    const a = normalize(baseline.raw);
    const b = normalize(other.raw);
    return a === b ? undefined : `the answers differ:\n  baseline: ${JSON.stringify(a)}\n  this:     ${JSON.stringify(b)}`;
  }
  const problems: string[] = [];
  if (other.status !== baseline.status) problems.push(`status ${other.status}, baseline ${baseline.status}`);
  if (!other.body.equals(baseline.body)) problems.push(`body ${JSON.stringify(other.body.toString('latin1'))}, baseline ${JSON.stringify(baseline.body.toString('latin1'))}`);
  for (const h of ['content-type', 'x-custom-foo']) {
    if (other.headers.get(h) !== baseline.headers.get(h)) problems.push(`${h}: ${JSON.stringify(other.headers.get(h))}, baseline ${JSON.stringify(baseline.headers.get(h))}`);
  }
  return problems.length ? `the answers differ: ${problems.join('; ')}` : undefined;
}
