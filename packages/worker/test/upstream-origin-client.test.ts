// The lean origin client (src/upstream/origin-client.ts and origin-connection.ts)
// against real origins on loopback: node:http ones, and a raw one that answers
// scripted bytes for what node:http would never send (an answer framed by the
// connection's end, a reset under a request, silence). Also the proxy's
// fast-lane entry with a whole request body (RequestLike.body).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { DEFAULT_UPSTREAM_SETTINGS, type RouteSpec } from '@flexilib/contract';
import { refusedPort } from '@flexilib/test-support';
import { OriginClient, sweepEvery } from '../src/upstream/origin-client.js';
import type { Exchange } from '../src/upstream/origin-connection.js';
import { ProxyExecutor } from '../src/upstream/proxy-executor.js';
import { UpstreamRegistry } from '../src/upstream/registry.js';

/** One request through the client, its outcome collected. */
class Collect implements Exchange {
  status = 0;
  headers: string[] = [];
  body = '';
  error: (Error & { code?: string }) | undefined;
  readonly done: Promise<void>;
  private end!: () => void;
  /** Pause after the first chunk and resume after this many ms (backpressure). */
  pauseMs = 0;
  chunks = 0;
  readonly head: string;
  constructor(readonly method: string, target: string, readonly wholeBody: Buffer | null = null, extra = '') {
    const length = wholeBody ? `content-length: ${wholeBody.length}\r\n` : '';
    this.head = `${method} ${target} HTTP/1.1\r\nhost: t\r\n${extra}${length}\r\n`;
    this.done = new Promise((r) => (this.end = r));
  }
  onConnect(): void {}
  private resume: (() => void) | undefined;
  onHead(status: number, headers: string[], _reason: string, resume: () => void): boolean {
    this.status = status;
    this.headers = headers;
    this.resume = resume;
    return true;
  }
  onData(chunk: Buffer): boolean {
    this.body += chunk.toString('latin1');
    this.chunks++;
    if (this.pauseMs > 0 && this.chunks === 1) {
      setTimeout(() => this.resume!(), this.pauseMs);
      return false;
    }
    return true;
  }
  onComplete(): void {
    this.end();
  }
  onError(err: Error): void {
    this.error = err;
    this.end();
  }
}

const timeouts = { connect: 2000, headers: 2000, body: 2000 };

/** GET each target in turn through `c`; their bodies (each must succeed). */
async function getInTurn(c: OriginClient, targets: string[]): Promise<string[]> {
  const bodies: string[] = [];
  for (const target of targets) {
    const x = new Collect('GET', target);
    c.dispatch(x);
    await x.done;
    assert.equal(x.error, undefined, target);
    bodies.push(x.body);
  }
  return bodies;
}

/** A raw origin: `answer` gets each request head (and the connection's request count) and writes what it likes. */
async function rawOrigin(answer: (head: string, socket: net.Socket, n: number) => void) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    let buf = '';
    let n = 0;
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      let end: number;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        answer(head, socket, n++);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return { port, sockets, close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }) };
}

describe('the lean origin client', () => {
  const closers: Array<() => Promise<void> | void> = [];
  after(async () => {
    for (const c of closers.reverse()) await c();
  });

  it('reuses one keep-alive connection, frames by length, chunks and the end of the connection, and sends no body for HEAD or 304', async () => {
    const o = await rawOrigin((head, s) => {
      const target = head.split(' ')[1];
      if (target === '/len') s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: caf\xe9\r\n\r\nhello', 'latin1');
      else if (target === '/chunked') s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n');
      else if (target === '/head') s.write('HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n');
      else if (target === '/304') s.write('HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n');
      else if (target === '/eof') s.end('HTTP/1.1 200 OK\r\n\r\nuntil the end');
    });
    closers.push(o.close);
    const c = new OriginClient('t', '127.0.0.1', o.port, 0, timeouts);
    closers.push(() => c.close());
    const results: Collect[] = [];
    for (const [method, target] of [['GET', '/len'], ['GET', '/chunked'], ['HEAD', '/head'], ['GET', '/304'], ['GET', '/len'], ['GET', '/eof']]) {
      const x = new Collect(method, target);
      c.dispatch(x);
      await x.done;
      results.push(x);
    }
    assert.deepEqual(results.map((r) => [r.status, r.body, r.error?.message]), [
      [200, 'hello', undefined], [200, 'abcde', undefined], [200, '', undefined], [304, '', undefined], [200, 'hello', undefined], [200, 'until the end', undefined],
    ]);
    // Header bytes pass as latin1 strings, unchanged.
    assert.deepEqual(results[0].headers, ['Content-Length', '5', 'X-A', 'caf\xe9']);
  });

  it('queues requests beyond max_connections and serves them in order on the connections it has', async () => {
    let conns = 0;
    const o = await rawOrigin((head, s, n) => {
      if (n === 0) conns++;
      const target = head.split(' ')[1];
      setTimeout(() => s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${target.length}\r\n\r\n${target}`), 20);
    });
    closers.push(o.close);
    const c = new OriginClient('t', '127.0.0.1', o.port, 2, timeouts);
    closers.push(() => c.close());
    const xs = Array.from({ length: 6 }, (_, i) => new Collect('GET', `/r${i}`));
    for (const x of xs) c.dispatch(x);
    await Promise.all(xs.map((x) => x.done));
    assert.deepEqual(xs.map((x) => x.body), ['/r0', '/r1', '/r2', '/r3', '/r4', '/r5']);
    assert.equal(conns, 2);
  });

  it('sends a GET again on a new connection when a reused one closes before answering; a POST gets the error', async () => {
    const o = await rawOrigin((head, s, n) => {
      // The second request on any connection: closed unanswered (an origin closing an idle connection).
      if (n >= 1) return void s.destroy();
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
    closers.push(o.close);
    const c = new OriginClient('t', '127.0.0.1', o.port, 0, timeouts);
    closers.push(() => c.close());
    const first = new Collect('GET', '/a');
    c.dispatch(first);
    await first.done;
    const again = new Collect('GET', '/b');
    c.dispatch(again);
    await again.done;
    assert.equal(again.error, undefined);
    assert.equal(again.body, 'ok');
    const post = new Collect('POST', '/c', Buffer.from('x'));
    c.dispatch(post);
    await post.done;
    assert.ok(post.error && ['UND_ERR_SOCKET', 'ECONNRESET'].includes(post.error.code!), String(post.error?.code));
  });

  it('completes a Content-Length answer from its bytes however they are split, and reuses the connection', async () => {
    let conns = 0;
    const o = await rawOrigin((head, s, n) => {
      if (n === 0) conns++;
      const target = head.split(' ')[1];
      if (target === '/split') {
        // Head and first bytes, then the rest in two more writes.
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc');
        setTimeout(() => s.write('defg'), 20);
        setTimeout(() => s.write('hij'), 40);
      } else if (target === '/empty') s.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
      else s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${target.length}\r\n\r\n${target}`);
    });
    closers.push(o.close);
    const c = new OriginClient('t', '127.0.0.1', o.port, 0, timeouts);
    closers.push(() => c.close());
    assert.deepEqual(await getInTurn(c, ['/split', '/empty', '/after', '/split', '/last']), ['abcdefghij', '', '/after', 'abcdefghij', '/last']);
    assert.equal(conns, 1);
  });

  it('never reuses a connection whose origin sent bytes nobody asked for: after an answer, in the same write or later', async () => {
    let conns = 0;
    const o = await rawOrigin((head, s, n) => {
      if (n === 0) conns++;
      const target = head.split(' ')[1];
      const answer = `HTTP/1.1 200 OK\r\nContent-Length: ${target.length}\r\n\r\n${target}`;
      // A second answer begun in the same write, or a whole one sent once the first was read.
      if (target === '/ahead') s.write(`${answer}HTTP/1.1 200 OK\r\nContent-Le`);
      else if (target === '/later') {
        s.write(answer);
        setTimeout(() => s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray'), 50);
      } else s.write(answer);
    });
    closers.push(o.close);
    const c = new OriginClient('t', '127.0.0.1', o.port, 0, timeouts);
    closers.push(() => c.close());
    const bodies = await getInTurn(c, ['/ahead', '/next', '/later']);
    // /later's stray answer arrives while its connection is idle.
    await new Promise((r) => setTimeout(r, 150));
    bodies.push(...(await getInTurn(c, ['/wait', '/last'])));
    assert.deepEqual(bodies, ['/ahead', '/next', '/later', '/wait', '/last']);
    // /ahead's connection and /later's were closed for their stray bytes; /next and /wait opened new ones.
    assert.equal(conns, 3);
  });

  it('fails with the codes the proxy classifies: refused, header timeout, body timeout, a malformed answer', async () => {
    const silent = await rawOrigin((head, s) => {
      if (head.includes('/stall')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfirst');
      else if (head.includes('/bad')) s.write('HTTP/1.1 abc\r\n\r\n');
    });
    closers.push(silent.close);
    const dead = await refusedPort();
    closers.push(dead.close);
    const outcome = async (port: number, target: string) => {
      const c = new OriginClient('t', '127.0.0.1', port, 0, { connect: 2000, headers: 200, body: 200 });
      const x = new Collect('GET', target);
      c.dispatch(x);
      await x.done;
      c.close();
      return x.error?.code;
    };
    assert.equal(await outcome(dead.port, '/'), 'ECONNREFUSED');
    assert.equal(await outcome(silent.port, '/hang'), 'UND_ERR_HEADERS_TIMEOUT');
    assert.equal(await outcome(silent.port, '/stall'), 'UND_ERR_BODY_TIMEOUT');
    assert.match(String(await outcome(silent.port, '/bad')), /^HPE_/);
  });

  it('a timeout counts from the last activity and never fires before its value; the sweep looks at a fifth of the shortest', async () => {
    assert.equal(sweepEvery({ connect: 5000, headers: 60_000, body: 60_000 }), 250);
    assert.equal(sweepEvery({ connect: 5000, headers: 300, body: 60_000 }), 60);
    assert.equal(sweepEvery({ connect: 20, headers: 0, body: 0 }), 10);
    assert.equal(sweepEvery({ connect: 0, headers: 0, body: 0 }), 250);
    const o = await rawOrigin((head, s) => {
      if (!head.includes('/drip')) return; // /hang: no answer
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n');
      let sent = 0;
      const t = setInterval(() => {
        s.write(String(sent));
        if (++sent === 8) clearInterval(t);
      }, 80);
    });
    closers.push(o.close);
    const c = new OriginClient('t', '127.0.0.1', o.port, 0, { connect: 5000, headers: 300, body: 200 });
    closers.push(() => c.close());
    // 8 bytes 80 ms apart: 640 ms in all, never 200 ms without one.
    const drip = new Collect('GET', '/drip');
    c.dispatch(drip);
    await drip.done;
    assert.equal(drip.error, undefined);
    assert.equal(drip.body, '01234567');
    // The same connection, silent: cut by the headers timeout, not before it, and long before anything else would.
    const start = performance.now();
    const hang = new Collect('GET', '/hang');
    c.dispatch(hang);
    await hang.done;
    const took = performance.now() - start;
    assert.equal(hang.error?.code, 'UND_ERR_HEADERS_TIMEOUT');
    assert.ok(took >= 300 && took < 5000, `cut after ${took.toFixed(0)} ms`);
  });

  it('stops reading the origin while the client is slow, and the body timeout waits for it', async () => {
    const o = await rawOrigin((_head, s) => {
      s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n');
      setTimeout(() => s.write('6\r\nsecond\r\n0\r\n\r\n'), 50);
    });
    closers.push(o.close);
    const c = new OriginClient('t', '127.0.0.1', o.port, 0, { connect: 2000, headers: 2000, body: 150 });
    closers.push(() => c.close());
    const x = new Collect('GET', '/');
    x.pauseMs = 400; // longer than the body timeout: paused, so not the origin's silence
    c.dispatch(x);
    await x.done;
    assert.equal(x.error, undefined);
    assert.equal(x.body, 'firstsecond');
  });
});

describe("the proxy's fast-lane entry with a whole body", () => {
  it('writes req.body after the head with its Content-Length, on the connection the next request reuses', async () => {
    const seen: Array<{ method: string; body: string; length?: string; xff?: string; port: number }> = [];
    const origin = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('latin1');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        seen.push({ method: req.method!, body, length: req.headers['content-length'], xff: req.headers['x-forwarded-for'] as string, port: req.socket.remotePort! });
        res.end(`got ${body.length}`);
      });
    });
    origin.listen(0, '127.0.0.1');
    await once(origin, 'listening');
    const url = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
    const registry = new UpstreamRegistry({ pools: [{ name: 'o', settings: DEFAULT_UPSTREAM_SETTINGS, slot: 1, origins: [{ url, healthy: true, epoch: 0, slot: 2 }] }] });
    const route = { key: '/up', line: 1, pathPrefix: '/up', target: { kind: 'upstream', pool: 'o' }, options: {} } as unknown as RouteSpec;
    const ex = new ProxyExecutor(route, registry.pool('o'), registry, pino({ level: 'silent' }));
    // The front: reads the body whole, as the fast lane does, and hands it over as req.body.
    const front = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => ex.laneHandle({ method: req.method, url: req.url, rawHeaders: req.rawHeaders, httpVersionMajor: 1, httpVersionMinor: 1, socket: req.socket, body: Buffer.concat(chunks) }, res, { arenaBytes: 0, alloc: 0, bytes: -1 }));
    });
    front.listen(0, '127.0.0.1');
    await once(front, 'listening');
    const port = (front.address() as AddressInfo).port;
    try {
      const body = Buffer.from(Array.from({ length: 3000 }, (_, i) => String.fromCharCode(i & 0xff)).join(''), 'latin1');
      const agent = new http.Agent({ keepAlive: true });
      const send = (method: string, payload?: Buffer) =>
        new Promise<string>((resolve, reject) => {
          const r = http.request({ port, host: '127.0.0.1', method, path: '/up/x', agent }, (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c));
            res.on('end', () => resolve(`${res.statusCode} ${text}`));
          });
          r.on('error', reject);
          r.end(payload);
        });
      assert.equal(await send('POST', body), '200 got 3000');
      assert.equal(await send('GET'), '200 got 0');
      agent.destroy();
      assert.equal(seen[0].body, body.toString('latin1'), 'the body reached the origin byte for byte');
      assert.equal(seen[0].length, '3000');
      assert.equal(seen[0].xff, '127.0.0.1');
      assert.equal(seen[1].length, undefined, 'a bodyless GET carries no Content-Length');
      assert.equal(seen[0].port, seen[1].port, 'both requests on one keep-alive connection');
    } finally {
      registry.close();
      front.close();
      origin.closeAllConnections();
      origin.close();
    }
  });
});
