// The lean origin client's own answer-head parser (src/upstream/answer-head-parser.ts)
// against node's http client (llhttp) as the reference: a raw origin on
// loopback sends scripted answers, well-formed and odd, whole and split
// across reads, and each must come out of the lean client as node's client
// reads it: status, reason, headers as sent, body, or an error for both.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { OriginClient } from '../src/upstream/origin-client.js';
import type { Exchange } from '../src/upstream/origin-connection.js';

/** What a client made of an answer. */
interface Outcome {
  status: number;
  reason: string;
  headers: string[];
  body: string;
  error: boolean;
}

/** Answers by request target; `{n}` is replaced by the connection's request count. */
const ANSWERS: Record<string, string> = {
  '/plain': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello',
  '/empty': 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n',
  '/no-reason': 'HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok',
  '/own-reason': 'HTTP/1.1 404 Nothing Here, Sorry \xe9\r\nContent-Length: 4\r\n\r\nnope',
  '/padding': 'HTTP/1.1 200 OK\r\nX-Pad:  \t spaced out \t \r\nX-Empty:\r\ncontent-length: 005 \r\n\r\nfive!',
  '/latin1': 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: caf\xe9\r\n\r\n\xff\x00\x80',
  '/binary': `HTTP/1.1 200 OK\r\nContent-Length: 256\r\n\r\n${Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join('')}`,
  '/keepalive': 'HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=3, max=100\r\nContent-Length: 2\r\n\r\nka',
  '/close': 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye',
  '/204': 'HTTP/1.1 204 No Content\r\nX-Why: none\r\n\r\n',
  '/304': 'HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\nETag: "x"\r\n\r\n',
  '/599': 'HTTP/1.1 599 Odd\r\nContent-Length: 1\r\n\r\n!',
  // Outside the lean subset: llhttp reads these (and the connection's later answers).
  '/chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n',
  '/interim': 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate',
  '/http10': 'HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nold!',
  '/list': 'HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nContent-Length: 4\r\n\r\nlist',
  '/many': `HTTP/1.1 200 OK\r\n${Array.from({ length: 150 }, (_, i) => `X-H${i}: v${i}\r\n`).join('')}Content-Length: 4\r\n\r\nmany`,
  '/big-head': `HTTP/1.1 200 OK\r\nX-Big: ${'b'.repeat(12_000)}\r\nContent-Length: 3\r\n\r\nbig`,
  // Malformed: both clients must fail.
  '/space-before-colon': 'HTTP/1.1 200 OK\r\nX-Bad : 1\r\nContent-Length: 2\r\n\r\nno',
  '/ctl-in-value': 'HTTP/1.1 200 OK\r\nX-Bad: a\x01b\r\nContent-Length: 2\r\n\r\nno',
  '/bad-length': 'HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\nno',
  '/two-lengths': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nno',
  '/length-and-chunked': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  '/bare-lf': 'HTTP/1.1 200 OK\nContent-Length: 2\n\nno',
  '/fold': 'HTTP/1.1 200 OK\r\nX-Fold: a\r\n  b\r\nContent-Length: 2\r\n\r\nno',
  '/huge-head': `HTTP/1.1 200 OK\r\nX-Huge: ${'h'.repeat(20_000)}\r\nContent-Length: 2\r\n\r\nno`,
};

/** A raw origin answering ANSWERS by target, each answer written in pieces cut at `cuts` (10 ms apart: separate reads). */
async function rawOrigin(cuts: () => number[] = () => []) {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    let buf = '';
    socket.on('data', async (d) => {
      buf += d.toString('latin1');
      let end: number;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        const [method, target] = buf.slice(0, end).split(' ');
        buf = buf.slice(end + 4);
        const script = ANSWERS[target] ?? 'HTTP/1.1 500 Unknown\r\nContent-Length: 0\r\n\r\n';
        // A HEAD gets the head alone, as a correct origin sends it.
        const answer = Buffer.from(method === 'HEAD' ? script.slice(0, script.indexOf('\r\n\r\n') + 4) : script, 'latin1');
        let from = 0;
        for (const at of [...cuts(), answer.length]) {
          if (at <= from || at > answer.length) continue;
          socket.write(answer.subarray(from, at));
          from = at;
          if (at < answer.length) await sleep(10);
        }
        if (target === '/close') socket.end();
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    connections: () => connections,
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}

/** node's http client (llhttp, its own connection) on one request. */
function viaNode(port: number, method: string, target: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const out: Outcome = { status: 0, reason: '', headers: [], body: '', error: false };
    const req = http.request({ host: '127.0.0.1', port, method, path: target, agent: false }, (res) => {
      out.status = res.statusCode!;
      out.reason = res.statusMessage ?? '';
      out.headers = res.rawHeaders;
      res.setEncoding('latin1');
      res.on('data', (d: string) => (out.body += d));
      res.on('end', () => resolve(out));
      res.on('error', () => resolve({ ...out, error: true }));
    });
    req.on('error', () => resolve({ ...out, error: true }));
    req.end();
  });
}

/** One request through the lean client. */
class Call implements Exchange {
  readonly out: Outcome = { status: 0, reason: '', headers: [], body: '', error: false };
  readonly head: string;
  readonly wholeBody = null;
  readonly done: Promise<Outcome>;
  private end!: (o: Outcome) => void;
  constructor(readonly method: string, target: string) {
    this.head = `${method} ${target} HTTP/1.1\r\nhost: t\r\n\r\n`;
    this.done = new Promise((r) => (this.end = r));
  }
  onConnect(): void {}
  /** The client's own header array (the lean parser hands over the same one while an origin repeats its head). */
  raw: string[] = [];
  onHead(status: number, headers: string[], reason: string): boolean {
    this.raw = headers;
    Object.assign(this.out, { status, reason, headers: [...headers] });
    return true;
  }
  onData(chunk: Buffer): boolean {
    this.out.body += chunk.toString('latin1');
    return true;
  }
  onComplete(): void {
    this.end(this.out);
  }
  onError(): void {
    this.end({ ...this.out, error: true });
  }
}

const timeouts = { connect: 2000, headers: 2000, body: 2000 };

/** The last call's header array. */
let lastRaw: string[] = [];

function viaLean(c: OriginClient, method: string, target: string): Promise<Outcome> {
  const call = new Call(method, target);
  c.dispatch(call);
  return call.done.finally(() => (lastRaw = call.raw));
}

/** Long strings, shortened for a readable diff. */
function short(s: string): string {
  return s.length > 80 ? `${s.slice(0, 20)}... (${s.length} characters)` : s;
}

/** The outcome as compared: a failure is only a failure (the two clients word it differently). */
function judged(o: Outcome): Outcome | 'error' {
  return o.error ? 'error' : { ...o, headers: o.headers.map(short), body: short(o.body) };
}

describe("the lean client's answer parser reads answers as node's client does", () => {
  const closers: Array<() => Promise<void> | void> = [];
  after(async () => {
    for (const c of closers.reverse()) await c();
  });

  it('every answer, each on a new connection', async () => {
    const o = await rawOrigin();
    closers.push(o.close);
    for (const target of Object.keys(ANSWERS)) {
      for (const method of target === '/plain' || target === '/keepalive' ? ['GET', 'HEAD'] : ['GET']) {
        const c = new OriginClient('t', '127.0.0.1', o.port, 0, timeouts);
        const lean = await viaLean(c, method, target);
        c.close();
        assert.deepEqual(judged(lean), judged(await viaNode(o.port, method, target)), `${method} ${target}`);
      }
    }
  });

  it('answers in a row on one kept connection, the lean ones and then those llhttp takes over', async () => {
    const o = await rawOrigin();
    closers.push(o.close);
    const c = new OriginClient('t', '127.0.0.1', o.port, 0, timeouts);
    closers.push(() => c.close());
    // Lean answers first (one connection throughout), then one that hands the connection to llhttp, then lean-shaped ones read by llhttp.
    const lean = ['/plain', '/plain', '/empty', '/no-reason', '/own-reason', '/padding', '/latin1', '/binary', '/keepalive', '/204', '/304', '/599', '/plain'];
    const then = ['/chunked', '/plain', '/plain', '/304', '/interim', '/plain'];
    const arrays: string[][] = [];
    for (const target of [...lean, ...then]) {
      assert.deepEqual(judged(await viaLean(c, 'GET', target)), judged(await viaNode(o.port, 'GET', target)), target);
      arrays.push(lastRaw);
    }
    // The same head twice: the lean parser hands over its array again (the proxy's answer memo then
    // compares by identity); llhttp makes a new one per answer, so the connection was read by each in turn.
    assert.equal(arrays[0], arrays[1], 'read by the lean parser');
    assert.notEqual(arrays[lean.length + 1], arrays[lean.length + 2], 'read by llhttp after the chunked answer');
    // node's client opened one connection per request; the lean client kept one.
    assert.equal(o.connections(), lean.length + then.length + 1);
  });

  it('an answer cut into two reads at every byte', async () => {
    for (const target of ['/plain', '/padding', '/204']) {
      const length = ANSWERS[target].length;
      let cut = 0;
      const o = await rawOrigin(() => [cut]);
      closers.push(o.close);
      const want = judged(await viaNode(o.port, 'GET', target));
      const c = new OriginClient('t', '127.0.0.1', o.port, 0, timeouts);
      closers.push(() => c.close());
      for (cut = 1; cut < length; cut++) assert.deepEqual(judged(await viaLean(c, 'GET', target)), want, `${target} cut at byte ${cut}`);
      // Reused throughout (one connection for node's request, one for the lean client's).
      assert.equal(o.connections(), 2, `${target}: the lean client kept its connection`);
    }
  });

  it('an answer delivered a byte per read', async () => {
    const o = await rawOrigin(() => Array.from({ length: ANSWERS['/keepalive'].length }, (_, i) => i + 1));
    closers.push(o.close);
    const c = new OriginClient('t', '127.0.0.1', o.port, 0, timeouts);
    closers.push(() => c.close());
    assert.deepEqual(judged(await viaLean(c, 'GET', '/keepalive')), judged(await viaNode(o.port, 'GET', '/keepalive')));
  });
});
