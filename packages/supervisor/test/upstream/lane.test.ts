/**
 * Upstream routes through the fast lane (packages/worker/src/http/fast-lane.ts and
 * lane-response.ts): the same origin answers proxied by a server with the lane
 * (the default) and one without it (--no-fast-lane) reach the client as the
 * same bytes, Date aside; pipelined requests wait their turn; a client that
 * leaves aborts the origin request and is logged as 499; a graceful stop lets
 * the answer in flight finish. A raw origin sends heads node:http's own server
 * never would (every tchar in a name, obs-text, odd case, hop-by-hop lists):
 * the lane relays what node's parser accepted without validating it again,
 * and must still give node:http's bytes.
 */
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { eventually, RawConnection, responseBody, responseStatus, scrape, sleep, startFlexilib, tempDir, writeConfig, type Flexilib } from '@flexilib/test-support';
import { startOrigin, type Origin } from './origins.js';

const get = (target: string, headers: string[] = []) => `GET ${target} HTTP/1.1\r\nHost: test\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`;
/** Dates differ by the second (the origin's and the proxy's own). */
const undated = (b: Buffer) => b.toString('latin1').replace(/\r\ndate: [^\r]*/gi, '\r\nDate: -');

/** Answers of the raw origin by target (latin1 bytes as written, after the status line's "HTTP/1.1 "). */
const RAW: Record<string, string> = {
  '/raw/tchar': "200 OK\r\nX-!#$%&'*+.^_`|~Name: every tchar\r\nContent-Length: 2\r\n\r\nok",
  '/raw/obs-text': '200 OK\r\nX-Obs: caf\xe9 \xff\x80 in\tside\r\nX-Empty:\r\nX-Spaced:   padded   \r\nContent-Length: 2\r\n\r\nok',
  '/raw/case': '200 OK\r\nDATE: Thu, 01 Jan 2026 00:00:00 GMT\r\ncontent-LENGTH: 3\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nCONNECTION: Keep-Alive\r\n\r\nabc',
  '/raw/hop': '200 OK\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\nProxy-Foo: p\r\nTE: trailers\r\nTrailer: x-t\r\nUpgrade: h2c\r\nX-Kept: k\r\nContent-Length: 3\r\n\r\nhop',
  '/raw/chunked': '200 OK\r\nTransfer-Encoding: chunked\r\nX-Kept: k\r\n\r\n3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nX-T: t\r\n\r\n',
  '/raw/reason': '203 Quite \xe9trange\r\nContent-Length: 1\r\n\r\nr',
  '/raw/ctl-reason': '200 Fine\x01Odd\r\nContent-Length: 1\r\n\r\nc',
  '/raw/304': '304 Not Modified\r\nETag: "e"\r\nContent-Length: 10\r\n\r\n',
};

/** An origin writing RAW's bytes as they are (one request at a time per connection, kept alive). */
async function startRawOrigin(): Promise<net.Server> {
  const server = net.createServer((sock) => {
    let buf = '';
    sock.on('error', () => {});
    sock.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const target = buf.slice(0, buf.indexOf('\r\n')).split(' ')[1];
        buf = buf.slice(end + 4);
        sock.write(`HTTP/1.1 ${RAW[target] ?? '200 OK\r\nContent-Length: 0\r\n\r\n'}`, 'latin1');
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

describe('upstream routes through the fast lane', () => {
  const tmp = tempDir();
  let origin: Origin;
  let lane: Flexilib;
  let plain: Flexilib;
  /** Requests to /hold wait here until released. */
  const held: Array<() => void> = [];
  let aborted = 0;
  /** Request bodies the origin received at /kept-body. */
  const bodies: Buffer[] = [];
  let raw: net.Server;

  before(async () => {
    // Closed in this suite's after(), once both servers are stopped.
    origin = await startOrigin({ after: () => {} }, 'o', (req, res) => {
      // The proxy passes the whole target on: /up/len arrives as /up/len.
      const url = (req.url ?? '').replace(/^\/up/, '');
      if (url.startsWith('/len')) res.end('len-body');
      else if (url.startsWith('/chunked')) {
        res.write('part1-');
        setTimeout(() => res.end('part2'), 20);
      } else if (url.startsWith('/204')) {
        res.statusCode = 204;
        res.end();
      } else if (url.startsWith('/304')) {
        res.statusCode = 304;
        res.end();
      } else if (url.startsWith('/reason')) {
        res.statusCode = 299;
        res.statusMessage = 'Fine Indeed';
        res.end('r');
      } else if (url.startsWith('/obs')) {
        res.statusCode = 299;
        res.statusMessage = 'Fine caf\xe9';
        res.end('o');
      } else if (url.startsWith('/slow')) setTimeout(() => res.end('late'), 1500);
      else if (url.startsWith('/big')) {
        const chunk = Buffer.alloc(64 * 1024, 'b');
        let n = 0;
        const more = () => {
          while (n < 32) {
            n++;
            if (!res.write(chunk)) return void res.once('drain', more);
          }
          res.end();
        };
        more();
      } else if (url.startsWith('/kept-body')) {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const body = Buffer.concat(chunks);
          bodies.push(body);
          res.end(`${req.method} ${body.length} bytes, content-length ${req.headers['content-length']}`);
        });
      } else if (url.startsWith('/hold')) {
        res.on('close', () => {
          if (!res.writableFinished) aborted++;
        });
        held.push(() => res.end('released'));
      } else if (url.startsWith('/body')) {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const body = Buffer.concat(chunks);
          res.end(Buffer.concat([Buffer.from(`${req.method} ${req.headers['content-length']} ${body.length}\n`), body]));
        });
      } else res.end(`echo ${req.url} xff=${req.headers['x-forwarded-for']} host=${req.headers['x-forwarded-host']}`);
    });
    raw = await startRawOrigin();
    const rawUrl = `http://127.0.0.1:${(raw.address() as AddressInfo).port}`;
    const config = writeConfig(tmp.dir, ['/up = upstream:o', '/raw = upstream:r', '', '[upstream.o]', `servers = ${origin.url}`, 'header_timeout = 500ms', '', '[upstream.r]', `servers = ${rawUrl}`].join('\n'));
    [lane, plain] = await Promise.all([startFlexilib({ config, workers: 1 }), startFlexilib({ config, workers: 1, args: ['--no-fast-lane'] })]);
  });

  after(async () => {
    for (const release of held.splice(0)) release();
    const codes = await Promise.all([lane?.stop(), plain?.stop()]);
    await origin?.close();
    raw?.close();
    tmp.cleanup();
    assert.deepEqual(codes, [0, 0]);
  });

  it('proxies byte for byte as node:http does: lengths, chunks, bodiless statuses, reasons, timeouts', async () => {
    const targets = ['/up/len', '/up/chunked', '/up/204', '/up/304', '/up/reason', '/up/echo?q=1', '/up/slow', '/up/obs', '/up/big'];
    const answers: Buffer[][] = [];
    for (const f of [lane, plain]) {
      const c = new RawConnection(f.port);
      const out: Buffer[] = [];
      for (const t of targets) {
        c.write(get(t, ['X-Forwarded-For: 10.0.0.1']));
        out.push(...(await c.responses(1, [], 20_000)));
      }
      c.close();
      answers.push(out);
    }
    const [fast, slow] = answers;
    // /up/big's chunk sizes follow the reads from the origin, which vary: its head and body are compared.
    for (let i = 0; i < targets.length - 1; i++) assert.equal(undated(fast[i]), undated(slow[i]), targets[i]);
    const headOf = (b: Buffer) => undated(b.subarray(0, b.indexOf('\r\n\r\n')));
    assert.equal(headOf(fast[8]), headOf(slow[8]));
    assert.ok(responseBody(fast[8]).equals(responseBody(slow[8])), '/up/big bodies differ');
    assert.equal(responseBody(fast[1]).toString(), 'part1-part2');
    assert.match(fast[1].toString('latin1'), /\r\nTransfer-Encoding: chunked\r\n/);
    assert.equal(responseStatus(fast[2]), 204);
    assert.match(fast[4].toString('latin1'), /^HTTP\/1\.1 299 Fine Indeed\r\n/);
    assert.equal(responseBody(fast[5]).toString(), 'echo /up/echo?q=1 xff=10.0.0.1, 127.0.0.1 host=test');
    assert.equal(responseStatus(fast[6]), 504);
    // A reason phrase beyond ASCII passes as the origin's bytes (node:http wrote é as UTF-8, C3 A9).
    assert.match(fast[7].toString('latin1'), /^HTTP\/1\.1 299 Fine caf\xc3\xa9\r\n/);
    assert.equal(responseBody(fast[8]).length, 32 * 64 * 1024);
  });

  it("relays heads node's parser accepted byte for byte as node:http does: every tchar, obs-text, odd case, hop-by-hop lists", async () => {
    const targets = Object.keys(RAW);
    const answers: string[][] = [];
    for (const f of [lane, plain]) {
      const c = new RawConnection(f.port);
      const out: string[] = [];
      for (const t of targets) {
        c.write(get(t));
        out.push(undated((await c.responses(1, [], 20_000))[0]));
      }
      c.close();
      answers.push(out);
    }
    const [fast, slow] = answers;
    for (let i = 0; i < targets.length; i++) assert.equal(fast[i], slow[i], targets[i]);
    const of = (t: string) => fast[targets.indexOf(t)];
    assert.match(of('/raw/tchar'), /\r\nX-!#\$%&'\*\+\.\^_`\|~Name: every tchar\r\n/);
    assert.match(of('/raw/obs-text'), /\r\nX-Obs: caf\xe9 \xff\x80 in\tside\r\nX-Empty: \r\nX-Spaced: padded\r\n/);
    // (undated() rewrote the origin's DATE line: that it was kept shows in no Date of node's after Connection.)
    assert.match(of('/raw/case'), /^HTTP\/1\.1 200 OK\r\nDate: -\r\ncontent-LENGTH: 3\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nabc$/);
    assert.doesNotMatch(of('/raw/hop'), /X-Secret|Proxy-Foo|TE:|Trailer:|Upgrade:/);
    assert.match(of('/raw/hop'), /\r\nX-Kept: k\r\n[^]*\r\n\r\nhop$/);
    assert.equal(responseBody(Buffer.from(of('/raw/chunked'), 'latin1')).toString(), 'abcdefg');
    assert.match(of('/raw/reason'), /^HTTP\/1\.1 203 Quite \xe9trange\r\n/);
    assert.match(of('/raw/ctl-reason'), /^HTTP\/1\.1 502 /);
    assert.match(of('/raw/304'), /^HTTP\/1\.1 304 Not Modified\r\nETag: "e"\r\nContent-Length: 10\r\n[^]*\r\n\r\n$/);
  });

  it('proxies request bodies byte for byte as node:http does, whole or split, through the lane', async () => {
    const body = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff));
    const post = (target: string, b: Buffer) => Buffer.concat([Buffer.from(`POST ${target} HTTP/1.1\r\nHost: test\r\nContent-Length: ${b.length}\r\n\r\n`, 'latin1'), b]);
    const sizes = [0, 1, 1024, 64 * 1024];
    const split = post('/up/body?split', body(5000));
    const at = split.indexOf('\r\n\r\n') + 4;
    const before = (await scrape(lane.adminPort)).sum('flexilib_fast_lane_requests_total', { route: '/up' });
    const answers: Buffer[][] = [];
    for (const f of [lane, plain]) {
      const c = new RawConnection(f.port);
      c.sock.setNoDelay(true);
      const out: Buffer[] = [];
      for (const n of sizes) {
        c.write(post(`/up/body?${n}`, body(n)));
        out.push(...(await c.responses(1, [], 20_000)));
      }
      // Head, then the body and a pipelined GET in one piece.
      c.write(split.subarray(0, at));
      await sleep(40);
      c.write(Buffer.concat([split.subarray(at), Buffer.from(get('/up/len'))]));
      out.push(...(await c.responses(2, [], 20_000)));
      c.close();
      answers.push(out);
    }
    const [fast, slow] = answers;
    for (let i = 0; i < fast.length; i++) assert.equal(undated(fast[i]), undated(slow[i]), `answer ${i}`);
    for (let i = 0; i < sizes.length; i++) assert.ok(responseBody(fast[i]).equals(Buffer.concat([Buffer.from(`POST ${sizes[i]} ${sizes[i]}\n`), body(sizes[i])])), `${sizes[i]} bytes`);
    assert.equal(responseBody(fast[5]).toString(), 'len-body');
    await eventually('the lane proxied them all', async () => ((await scrape(lane.adminPort)).sum('flexilib_fast_lane_requests_total', { route: '/up' }) === before + sizes.length + 2 ? true : undefined));
  });

  it('answers pipelined requests in order, one at a time', async () => {
    const c = new RawConnection(lane.port);
    c.write(get('/up/chunked') + get('/up/len') + get('/up/reason') + get('/up/echo'));
    const four = await c.responses(4);
    assert.deepEqual(four.map((r) => responseBody(r).toString()), ['part1-part2', 'len-body', 'r', 'echo /up/echo xff=127.0.0.1 host=test']);
    c.close();
  });

  for (const how of ['closes', 'half-closes'] as const) {
    it(`aborts the origin request when the client ${how} its connection while waiting, and logs 499`, async () => {
      const before = aborted;
      const target = `/up/hold?${how}`;
      const c = new RawConnection(lane.port);
      c.write(get(target));
      await eventually('the origin holds the request', () => (held.length > 0 ? true : undefined));
      // A FIN either way: node:http and nginx both take it as the client leaving.
      if (how === 'closes') c.close();
      else c.sock.end();
      await eventually('the origin request was aborted', () => (aborted > before ? true : undefined));
      const line = await eventually('the access line', () => lane.logs.find((l) => l.kind === 'access' && l.target === target));
      assert.equal(line.status, 499);
      held.splice(0);
      await c.closed;
    });
  }

  it('counts what the lane proxied', async () => {
    const c = new RawConnection(lane.port);
    for (let i = 0; i < 5; i++) {
      c.write(get('/up/len'));
      await c.responses(1);
    }
    c.close();
    const s = await eventually('lane requests counted', async () => {
      const m = await scrape(lane.adminPort);
      return m.sum('flexilib_fast_lane_requests_total', { route: '/up' }) >= 5 ? m : undefined;
    });
    assert.equal(s.sum('flexilib_fast_lane_requests_total', { route: '/up' }), s.sum('flexilib_requests_total', { route: '/up' }), 'every /up request here was a plain GET');
    assert.equal((await scrape(plain.adminPort)).sum('flexilib_fast_lane_requests_total'), 0);
  });

  it('passes a request body byte for byte, with the same answer as node:http, and the connection lives on', async () => {
    const body = Buffer.alloc(5000);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7) & 0xff;
    const post = (target: string) => Buffer.concat([Buffer.from(`POST ${target} HTTP/1.1\r\nHost: test\r\nContent-Length: ${body.length}\r\n\r\n`, 'latin1'), body]);
    const answers: string[][] = [];
    bodies.length = 0;
    for (const f of [lane, plain]) {
      const c = new RawConnection(f.port);
      c.write(post('/up/kept-body'));
      const [first] = await c.responses(1, [], 20_000);
      c.write(get('/up/len'));
      const [second] = await c.responses(1, [], 20_000);
      c.close();
      answers.push([undated(first), undated(second)]);
    }
    assert.deepEqual(answers[0], answers[1]);
    assert.match(answers[0][0], /\r\n\r\nPOST 5000 bytes, content-length 5000$/);
    assert.equal(bodies.length, 2);
    for (const b of bodies) assert.ok(b.equals(body), 'the origin got the body byte for byte');
  });

  it('lets an answer in flight finish on a graceful stop, with Connection: close', async () => {
    const f = await startFlexilib({ config: lane.listening!.config as string, workers: 1 });
    try {
      const c = new RawConnection(f.port);
      c.write(get('/up/hold?stop=1'));
      await eventually('the origin holds the request', () => (held.length > 0 ? true : undefined));
      const stopped = f.stop();
      await sleep(300);
      for (const release of held.splice(0)) release();
      const [r] = await c.responses(1);
      assert.equal(responseBody(r).toString(), 'released');
      assert.match(r.toString('latin1'), /\r\nConnection: close\r\n/);
      await c.closed;
      assert.equal(await stopped, 0);
    } finally {
      await f.kill();
    }
  });
});
