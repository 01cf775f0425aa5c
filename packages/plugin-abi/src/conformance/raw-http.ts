/**
 * A deliberately raw HTTP/1.1 client for the conformance runner: it sends the
 * request line and exactly the headers given (an HTTP library would add Host,
 * Connection and others, and header-counting plugins would see them), then
 * reads one response framed by Content-Length (or by close).
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
  body: Buffer;
}

export function rawRequest(host: string, port: number, req: RawRequest, timeoutMs = 10_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const chunks: Buffer[] = [];
    let head: { status: number; reason: string; headers: Map<string, string>; bodyStart: number; length: number | undefined } | undefined;
    const timer = setTimeout(() => fail(new Error(`no complete response within ${timeoutMs} ms`)), timeoutMs);
    function done(res: RawResponse): void {
      clearTimeout(timer);
      socket.destroy();
      resolve(res);
    }
    function fail(err: Error): void {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    }
    function tryFinish(ended: boolean): void {
      const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      if (chunks.length > 1) chunks.splice(0, chunks.length, all);
      if (!head) {
        const end = all.indexOf('\r\n\r\n');
        if (end < 0) {
          if (ended) fail(new Error('connection closed before the response headers'));
          return;
        }
        const lines = all.subarray(0, end).toString('latin1').split('\r\n');
        const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0]);
        if (!m) return fail(new Error(`malformed status line: ${JSON.stringify(lines[0])}`));
        const headers = new Map<string, string>();
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(':');
          const name = line.slice(0, colon).trim().toLowerCase();
          const value = line.slice(colon + 1).trim();
          headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
        }
        const cl = headers.get('content-length');
        head = { status: Number(m[1]), reason: m[2] ?? '', headers, bodyStart: end + 4, length: cl === undefined ? undefined : Number(cl) };
      }
      const have = all.length - head.bodyStart;
      if (head.length !== undefined ? have >= head.length : ended) {
        const body = all.subarray(head.bodyStart, head.bodyStart + (head.length ?? have));
        done({ status: head.status, reason: head.reason, headers: head.headers, body: Buffer.from(body) });
      } else if (ended) {
        fail(new Error(`connection closed after ${have} of ${head.length} body bytes`));
      }
    }
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      tryFinish(false);
    });
    socket.on('end', () => tryFinish(true));
    socket.on('error', fail);
    socket.on('connect', () => {
      let text = `${req.method} ${req.target} HTTP/1.1\r\n`;
      for (const [n, v] of req.headers) text += `${n}: ${v}\r\n`;
      socket.write(`${text}\r\n`, 'latin1');
      if (req.body.length) socket.write(req.body);
    });
  });
}
