import net from 'node:net';

/**
 * One raw connection: write bytes as given, read whole responses, raw
 * (framed by Content-Length or chunked encoding). For pipelining, split
 * heads and byte-for-byte comparisons, which no HTTP client allows.
 *
 * @example
 * const c = new RawConnection(f.port);
 * c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(2));
 * const [a, b] = await c.responses(2);
 */
export class RawConnection {
  readonly sock: net.Socket;
  private buf = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  ended = false;
  readonly closed: Promise<void>;

  constructor(port: number) {
    this.sock = net.connect(port, '127.0.0.1');
    this.sock.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.wake?.();
    });
    this.closed = new Promise((resolve) => this.sock.on('close', () => resolve()));
    this.sock.on('end', () => {
      this.ended = true;
      this.wake?.();
    });
    this.sock.on('error', () => {});
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
      if (this.ended) throw new Error(`connection ended after ${out.length} of ${n} responses: ${this.buf.toString('latin1').slice(0, 200)}`);
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
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const text = this.buf.subarray(0, end).toString('latin1');
    const status = Number(text.split(' ')[1]);
    let size: number;
    if (head || status === 204 || status === 304 || status < 200) size = end + 4;
    else if (/\r\ntransfer-encoding: *chunked/i.test(text)) {
      // Chunks up to the last (size 0) and its empty trailer.
      let at = end + 4;
      for (;;) {
        const eol = this.buf.indexOf('\r\n', at);
        if (eol < 0) return undefined;
        const n = parseInt(this.buf.subarray(at, eol).toString('latin1'), 16);
        if (n === 0) {
          if (this.buf.length < eol + 4) return undefined;
          size = eol + 4;
          break;
        }
        at = eol + 2 + n + 2;
        if (this.buf.length < at) return undefined;
      }
    } else {
      const m = /\r\ncontent-length: *(\d+)/i.exec(text);
      size = end + 4 + (m ? Number(m[1]) : 0);
    }
    if (this.buf.length < size) return undefined;
    const one = this.buf.subarray(0, size);
    this.buf = this.buf.subarray(size);
    return one;
  }

  close(): void {
    this.sock.destroy();
  }
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
