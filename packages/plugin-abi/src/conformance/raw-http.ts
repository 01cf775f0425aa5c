/**
 * The one raw HTTP/1.1 client (the conformance runner's, the tests' and the
 * bench's): it writes exactly the bytes given (an HTTP library would add Host,
 * Connection and others, and header-counting plugins would see them) and reads
 * whole responses framed by Content-Length, chunked encoding, or the close.
 *
 *   RawConnection    one connection, raw bytes both ways (pipelining, split heads)
 *   rawRequest()     one request on a fresh connection, the response parsed
 *   parseResponse()  a raw response's status, headers and (de-chunked) body
 */
import net from 'node:net';

export interface RawRequest {
  method: string;
  target: string;
  headers: Array<[string, string]>;
  body: Buffer;
}

export interface RawResponse {
  status: number;
  reason: string;
  /** Names lower-cased; repeated headers joined with ", ". */
  headers: Map<string, string>;
  /** The header lines as received, in order (names as sent). */
  rawHeaders: Array<[string, string]>;
  /** The body, chunked encoding undone. */
  body: Buffer;
  /** The whole response as received, head and body. */
  raw: Buffer;
}

/**
 * One raw connection: write bytes as given, read whole responses, raw. For
 * pipelining, split heads and byte-for-byte comparisons, which no HTTP client
 * allows.
 *
 * @example
 * const c = new RawConnection(port);
 * c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(2));
 * const [a, b] = await c.responses(2);
 */
export class RawConnection {
  readonly sock: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  private error: Error | undefined;
  ended = false;
  readonly closed: Promise<void>;

  constructor(port: number, host = '127.0.0.1') {
    this.sock = net.connect(port, host);
    this.sock.on('data', (c: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, c]) : c;
      this.wake?.();
    });
    this.closed = new Promise((resolve) => this.sock.on('close', () => resolve()));
    this.sock.on('end', () => {
      this.ended = true;
      this.wake?.();
    });
    // Kept for responses(): a refused connection fails the wait at once, naming the cause.
    this.sock.on('error', (err) => {
      this.error = err;
      this.ended = true;
      this.wake?.();
    });
  }

  write(data: string | Buffer): void {
    this.sock.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /**
   * The next `n` responses, raw. `bodyless[i]`: response i answers a HEAD
   * (no body whatever its headers say).
   */
  async responses(n: number, bodyless: boolean[] = [], timeoutMs = 10_000): Promise<Buffer[]> {
    const out: Buffer[] = [];
    const deadline = Date.now() + timeoutMs;
    while (out.length < n) {
      const one = this.take(bodyless[out.length] ?? false);
      if (one) {
        out.push(one);
        continue;
      }
      if (this.ended) {
        const why = this.error ? ` (${this.error.message})` : '';
        throw new Error(`connection ended${why} after ${out.length} of ${n} responses: ${this.buf.toString('latin1').slice(0, 200)}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${out.length} of ${n} responses within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = null;
    }
    return out;
  }

  /** One whole response off the front of the buffer, raw; undefined until it is all there. */
  private take(head: boolean): Buffer | undefined {
    const size = responseSize(this.buf, head, this.ended);
    if (size === undefined) return undefined;
    const one = this.buf.subarray(0, size);
    this.buf = this.buf.subarray(size);
    return one;
  }

  close(): void {
    this.sock.destroy();
  }
}

/**
 * The length of the whole response at the start of `buf`, or undefined until
 * it is all there. `bodyless`: it answers a HEAD. Without Content-Length or
 * chunked encoding the body runs to the close (`ended`).
 */
export function responseSize(buf: Buffer, bodyless: boolean, ended: boolean): number | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const text = buf.subarray(0, end).toString('latin1');
  const status = Number(text.split(' ')[1]);
  let size: number;
  if (bodyless || status === 204 || status === 304 || status < 200) size = end + 4;
  else if (/\r\ntransfer-encoding: *chunked/i.test(text)) {
    // Chunks up to the last (size 0) and its empty trailer.
    let at = end + 4;
    for (;;) {
      const eol = buf.indexOf('\r\n', at);
      if (eol < 0) return undefined;
      const n = parseInt(buf.subarray(at, eol).toString('latin1'), 16);
      if (n === 0) {
        if (buf.length < eol + 4) return undefined;
        size = eol + 4;
        break;
      }
      at = eol + 2 + n + 2;
      if (buf.length < at) return undefined;
    }
  } else {
    const m = /\r\ncontent-length: *(\d+)/i.exec(text);
    if (!m) return ended ? buf.length : undefined;
    size = end + 4 + Number(m[1]);
  }
  return buf.length < size ? undefined : size;
}

/** The status code of a raw response. */
export function responseStatus(raw: Buffer): number {
  return Number(raw.subarray(0, raw.indexOf('\r\n')).toString('latin1').split(' ')[1]);
}

/** The body of a raw response, chunked encoding undone. */
export function responseBody(raw: Buffer): Buffer {
  const end = raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, end).toString('latin1');
  let at = end + 4;
  if (!/\r\ntransfer-encoding: *chunked/i.test(head)) return raw.subarray(at);
  const parts: Buffer[] = [];
  for (;;) {
    const eol = raw.indexOf('\r\n', at);
    const n = parseInt(raw.subarray(at, eol).toString('latin1'), 16);
    if (!(n > 0)) return Buffer.concat(parts);
    parts.push(raw.subarray(eol + 2, eol + 2 + n));
    at = eol + 2 + n + 2;
  }
}

/** Status, reason, headers and body of one whole raw response; throws on a malformed status line. */
export function parseResponse(raw: Buffer): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  const lines = raw.subarray(0, end < 0 ? raw.length : end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0]);
  if (!m) throw new Error(`malformed status line: ${JSON.stringify(lines[0])}`);
  const headers = new Map<string, string>();
  const rawHeaders: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const value = line.slice(colon + 1).trim();
    rawHeaders.push([line.slice(0, colon).trim(), value]);
    const name = line.slice(0, colon).trim().toLowerCase();
    headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
  }
  return { status: Number(m[1]), reason: m[2] ?? '', headers, rawHeaders, body: Buffer.from(responseBody(raw)), raw };
}

/** The bytes of a request: its line, exactly its headers, its body. */
export function requestBytes(req: RawRequest): Buffer {
  let text = `${req.method} ${req.target} HTTP/1.1\r\n`;
  for (const [n, v] of req.headers) text += `${n}: ${v}\r\n`;
  return Buffer.concat([Buffer.from(`${text}\r\n`, 'latin1'), req.body]);
}

/** One request on a fresh connection to host:port, and its response parsed. */
export async function rawRequest(host: string, port: number, req: RawRequest, timeoutMs = 10_000): Promise<RawResponse> {
  const c = new RawConnection(port, host);
  try {
    c.write(requestBytes(req));
    const [raw] = await c.responses(1, [req.method === 'HEAD'], timeoutMs).catch((err: Error) => {
      throw new Error(`${req.method} ${req.target} to ${host}:${port}: ${err.message}`);
    });
    return parseResponse(raw);
  } finally {
    c.close();
  }
}
