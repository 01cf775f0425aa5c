/** HTTP/1.1 written by hand: exactly the request line and headers given, nothing added by a client library. */
import net from 'node:net';

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
 * Content-Length is added when there is a body and none is given. The answer
 * must carry a Content-Length.
 *
 * @example
 * const r = await rawRequest(f.port, { target: '/echo', method: 'POST', body: 'ping' });
 * assert.equal(r.body.toString(), 'POST /echo\nping');
 */
export function rawRequest(port: number, opts: RawRequestOptions = {}): Promise<RawResponse> {
  const method = opts.method ?? 'GET';
  const target = opts.target ?? '/';
  const headers = opts.headers ?? [['Host', 'localhost']];
  const body = opts.body === undefined ? undefined : Buffer.from(opts.body);
  const timeoutMs = opts.timeoutMs ?? 20_000;
  let head = `${method} ${target} HTTP/1.1\r\n`;
  for (const [k, v] of headers) head += `${k}: ${v}\r\n`;
  if (body && !headers.some(([k]) => k.toLowerCase() === 'content-length')) head += `Content-Length: ${body.length}\r\n`;
  head += '\r\n';
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no complete answer to ${method} ${target} within ${timeoutMs} ms`));
    }, timeoutMs);
    const tryParse = () => {
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = all.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      const hdrs: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const c = l.indexOf(':');
        hdrs[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
      }
      const len = Number(hdrs['content-length'] ?? -1);
      if (len < 0 || all.length - end - 4 < len) return;
      clearTimeout(timer);
      sock.destroy();
      resolve({ status, headers: hdrs, body: all.subarray(end + 4, end + 4 + len), ms: performance.now() - t0 });
    };
    sock.on('data', (c: Buffer) => {
      chunks.push(c);
      tryParse();
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.write(head);
    if (body) sock.write(body);
  });
}
