/**
 * The fast lane (src/http/fast-lane.ts) against node:http: the same plugins and
 * requests sent to a server with the lane (the default) and one without it
 * (--no-fast-lane) must get the same bytes back (the Date header aside);
 * what the lane does not take is node:http's, on the same connection; the
 * lane's own connections time out, apply backpressure and close on stop.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compilePlugin, eventually, exampleSource, fixture, RawConnection, scrape, sleep, startFlexilib, tempDir, writeConfig, type Flexilib } from '@flexilib/test-support';

const get = (target: string, headers: string[] = []) => `GET ${target} HTTP/1.1\r\nHost: test\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`;
/** The Date header differs by the second: compare everything else. */
const undated = (b: Buffer) => b.toString('latin1').replace(/\r\nDate: [^\r]*/, '\r\nDate: -');
const statusOf = (b: Buffer) => Number(b.toString('latin1').split(' ')[1]);
const bodyOf = (b: Buffer) => b.subarray(b.indexOf('\r\n\r\n') + 4).toString('latin1');

describe('fast lane', () => {
  const tmp = tempDir();
  let lane: Flexilib;
  let plain: Flexilib;

  before(async () => {
    const lib = (n: string) => path.join(tmp.dir, n);
    await Promise.all([
      compilePlugin(exampleSource, lib('example.so')),
      compilePlugin(fixture('shapes.c'), lib('shapes.so')),
      compilePlugin(fixture('bad-header.c'), lib('bad-header.so')),
    ]);
    const config = writeConfig(
      tmp.dir,
      ['/shape = shapes.so', '/bad-header = bad-header.so', '/threaded = example.so', '/ = example.so', '', '[route /threaded]', 'mode = threaded'].join('\n'),
    );
    const args = ['--max-header-size', '4096', '--keep-alive-timeout', '1000', '--headers-timeout', '1500'];
    [lane, plain] = await Promise.all([
      startFlexilib({ config, workers: 1, args }),
      startFlexilib({ config, workers: 1, args: [...args, '--no-fast-lane'] }),
    ]);
    // Libraries load on first use, through node:http; the lane serves loaded ones.
    for (const f of [lane, plain]) {
      const c = new RawConnection(f.port);
      c.write(get('/') + get('/shape') + get('/bad-header'));
      await c.responses(3);
      c.close();
    }
  });

  after(async () => {
    const codes = await Promise.all([lane?.stop(), plain?.stop()]);
    tmp.cleanup();
    assert.deepEqual(codes, [0, 0]);
  });

  /** Send the same requests on one connection to both servers, one at a time; the answers, raw. */
  async function both(requests: string[], bodyless: boolean[] = []): Promise<[Buffer[], Buffer[]]> {
    const run = async (f: Flexilib) => {
      const c = new RawConnection(f.port);
      const out: Buffer[] = [];
      for (let i = 0; i < requests.length; i++) {
        c.write(requests[i]);
        out.push(...(await c.responses(1, [bodyless[i] ?? false])));
      }
      c.close();
      return out;
    };
    return [await run(lane), await run(plain)];
  }

  it('answers byte for byte as node:http does (Date aside)', async () => {
    const requests = [
      get('/'),
      get('/', ['Connection: keep-alive', 'x-one: 1']),
      get('/', ['x-status: 418']),
      get('/', ['x-throw: 1']),
      get('/', ['x-log-this: hi']),
      get('/echo?q=1'),
      `DELETE /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n`,
      get('/shape'),
      get('/shape', ['x-set-status: 204']),
      get('/shape', ['x-set-status: 304']),
      get('/shape', ['x-set-status: 299', 'x-reason: Very Fine']),
      get('/shape', ['x-set-status: 1000']),
      get('/shape', ['x-set-status: 99']),
      get('/shape', ['x-add-1: Date: Mon, 01 Jan 2024 00:00:00 GMT']),
      get('/shape', ['x-add-1: Keep-Alive: timeout=99', 'x-add-2: X-Two: 2']),
      get('/shape', ['x-add-1: Content-Type: application/json', 'x-add-2: X-Latin: caf\xe9']),
      get('/shape', ['x-add-1: Bad Name: x']),
      get('/shape', ['x-body-size: 0']),
      get('/shape', ['x-body-size: 20000']),
      get('/shape', ['x-body-size: 300000']),
      get('/bad-header'),
      get('/threaded'),
      `HEAD / HTTP/1.1\r\nHost: test\r\n\r\n`,
      `POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 4\r\n\r\nping`,
      // An empty value, then an empty name: the name must still be refused (502).
      get('/shape', ['x-add-1: X-Empty:', 'x-add-2: : v']),
    ];
    const bodyless = requests.map((r) => r.startsWith('HEAD'));
    const [fast, slow] = await both(requests, bodyless);
    for (let i = 0; i < requests.length; i++) {
      assert.equal(undated(fast[i]), undated(slow[i]), `request ${i}: ${JSON.stringify(requests[i])}`);
    }
    // The cases meant: a plugin's bad status, bad header name and CRLF in a value are 502s naming the route.
    for (const i of [11, 12, 16, 20, 24]) {
      assert.equal(statusOf(fast[i]), 502, `request ${i}`);
      assert.match(bodyOf(fast[i]), /^plugin for route "\/(shape|bad-header)" produced an invalid response: /);
    }
    assert.equal(bodyOf(fast[19]).length, 300000);
    assert.equal(bodyOf(fast[19]).slice(0, 28), 'abcdefghijklmnopqrstuvwxyzab');
  });

  it('a plugin answer with Connection: close closes the connection, as node:http does', async () => {
    for (const f of [lane, plain]) {
      const c = new RawConnection(f.port);
      c.write(get('/shape', ['x-add-1: Connection: close']));
      const [r] = await c.responses(1);
      assert.match(r.toString('latin1'), /\r\nConnection: close\r\n/);
      await c.closed;
    }
  });

  it('serves plain requests of loaded inline routes itself, and counts them', async () => {
    const count = async (f: Flexilib) => {
      const s = await scrape(f.adminPort);
      return [s.sum('flexilib_fast_lane_requests_total', { route: '/shape' }), s.sum('flexilib_requests_total', { route: '/shape' })];
    };
    const [laneBefore, laneTotalBefore] = await count(lane);
    const [plainBefore] = await count(plain);
    for (const f of [lane, plain]) {
      const c = new RawConnection(f.port);
      for (let i = 0; i < 20; i++) {
        c.write(get('/shape'));
        assert.equal(bodyOf((await c.responses(1))[0]), 'shaped');
      }
      // Not the lane's: a HEAD, a body, a threaded route.
      c.write(`HEAD /shape HTTP/1.1\r\nHost: test\r\n\r\n`);
      await c.responses(1, [true]);
      c.write(`POST /shape HTTP/1.1\r\nHost: test\r\nContent-Length: 2\r\n\r\nhi`);
      await c.responses(1);
      c.close();
    }
    await eventually('the lane server counts 22 more /shape requests', async () => ((await count(lane))[1] === laneTotalBefore + 22 ? true : undefined), 5000);
    const [laneAfter] = await count(lane);
    assert.equal(laneAfter - laneBefore, 20, 'the 20 plain GETs went through the lane; HEAD and POST through node:http');
    const [plainAfter] = await count(plain);
    assert.equal(plainAfter, plainBefore);
    assert.equal(plainAfter, 0, '--no-fast-lane: nothing through the lane');
  });

  it('logs lane requests with the same fields as node:http requests', async () => {
    const c = new RawConnection(lane.port);
    c.write(get('/shape?lane=1', ['x-body-size: 123']));
    await c.responses(1);
    c.close();
    const line = await eventually('the access line', () => lane.logs.find((l) => l.kind === 'access' && l.target === '/shape?lane=1'));
    assert.equal(line.method, 'GET');
    assert.equal(line.httpVersion, '1.1');
    assert.equal(line.route, '/shape');
    assert.equal(line.status, 200);
    assert.equal(line.bytes, 123);
    assert.equal(line.preAlloc, 8192);
    assert.equal(line.alloc, 0);
    assert.match(String(line.remote), /^127\.0\.0\.1:\d+$/);
    assert.ok(typeof line.ttfbMs === 'number' && typeof line.ttlbMs === 'number' && (line.ttlbMs as number) >= (line.ttfbMs as number));
  });

  it('hands a connection to node:http mid-stream: pipelined mixes, split heads, chunked bodies', async () => {
    const c = new RawConnection(lane.port);
    // One write: lane, node (a body), lane again — answered in order.
    c.write(get('/shape') + `POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 4\r\n\r\nping` + get('/shape', ['x-set-status: 201']));
    const three = await c.responses(3);
    assert.deepEqual(three.map(statusOf), [200, 200, 201]);
    assert.deepEqual(three.map(bodyOf), ['shaped', 'POST /echo\nping', 'shaped']);
    // A head split across two writes, then a chunked body, on the same connection.
    c.write('GET /shape HTTP/1.1\r\nHo');
    await sleep(50);
    c.write('st: test\r\nx-set-status: 202\r\n\r\n');
    assert.equal(statusOf((await c.responses(1))[0]), 202);
    c.write('POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
    assert.equal(bodyOf((await c.responses(1))[0]), 'POST /echo\nabc');
    c.close();

    // A split head on a fresh connection is node's from its first byte on.
    const d = new RawConnection(lane.port);
    d.write('GET /shape HTTP/1.1\r\n');
    await sleep(50);
    d.write('Host: test\r\n\r\n' + get('/shape'));
    assert.deepEqual((await d.responses(2)).map(bodyOf), ['shaped', 'shaped']);
    d.close();
  });

  it('leaves bad requests to node:http, which refuses them as it always does', async () => {
    const cases: Array<[string, number]> = [
      ['GET /shape HTTP/1.1\r\nHost: test\r\nBad Header\r\n\r\n', 400],
      ['GET /shape HTTP/1.1\r\nHost: test\r\nX-Fold: a\r\n b\r\n\r\n', 400],
      ['GET /shape HTTP/1.1\r\nHost: test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', 400],
      ['GET /shape HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
      ['GET /shape HTTP/1.1\r\n\r\n', 400],
      [`GET /shape HTTP/1.1\r\nHost: test\r\nX-Big: ${'x'.repeat(5000)}\r\n\r\n`, 431],
      ['GET /sh\x01ape HTTP/1.1\r\nHost: test\r\n\r\n', 400],
      ['GET /shape HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n', 400],
      ['GET /shape HTTP/1.1\r\nHost: test\r\nContent-Length: 0\t\r\n\r\n', 400],
    ];
    for (const [raw, status] of cases) {
      const got: number[] = [];
      for (const f of [lane, plain]) {
        const c = new RawConnection(f.port);
        c.write(raw);
        const [r] = await c.responses(1);
        got.push(statusOf(r));
        await c.closed;
      }
      assert.deepEqual(got, [status, status], JSON.stringify(raw.slice(0, 60)));
    }
    // The server kept serving.
    const c = new RawConnection(lane.port);
    c.write(get('/shape'));
    assert.equal(bodyOf((await c.responses(1))[0]), 'shaped');
    c.close();
  });

  it('answers Connection: close and HTTP/1.0 requests through node:http, closing after', async () => {
    for (const raw of [get('/shape', ['Connection: close']), 'GET /shape HTTP/1.0\r\nHost: test\r\n\r\n']) {
      const c = new RawConnection(lane.port);
      c.write(raw);
      const [r] = await c.responses(1);
      assert.equal(bodyOf(r), 'shaped');
      await c.closed;
    }
  });

  it('stops reading a client that pipelines without reading, and answers everything once it reads', async () => {
    const n = 3000;
    const c = new RawConnection(lane.port);
    c.sock.pause();
    c.write(get('/shape', ['x-body-size: 1000']).repeat(n));
    await sleep(300);
    c.sock.resume();
    const all = await c.responses(n, [], 30_000);
    assert.equal(all.length, n);
    assert.ok(all.every((r) => statusOf(r) === 200 && bodyOf(r).length === 1000));
    c.close();
  });

  it('answers 408 to a connection that sends nothing within the headers timeout, as node:http does', async () => {
    for (const f of [lane, plain]) {
      const c = new RawConnection(f.port);
      // --headers-timeout 1500: well within this bound.
      const [r] = await c.responses(1, [], 8000);
      assert.equal(statusOf(r), 408);
      await c.closed;
    }
  });

  it('closes an idle lane connection after the keep-alive timeout', async () => {
    const c = new RawConnection(lane.port);
    c.write(get('/shape'));
    await c.responses(1);
    // --keep-alive-timeout 1000 (node:http adds a second): closed by the server, well within this bound.
    await Promise.race([c.closed, sleep(8000).then(() => assert.fail('the idle connection was not closed'))]);
    assert.ok(c.ended, 'closed with a FIN from the server');
  });

  it('closes idle lane connections on a graceful stop, and the worker exits 0', async () => {
    const f = await startFlexilib({ config: path.join(tmp.dir, 'proxy.ini'), workers: 1 });
    try {
      // The first request loads the library through node:http, which keeps that connection.
      const first = new RawConnection(f.port);
      first.write(get('/shape'));
      await first.responses(1);
      first.close();
      const c = new RawConnection(f.port);
      c.write(get('/shape'));
      await c.responses(1);
      const code = await f.stop();
      assert.equal(code, 0);
      await c.closed;
      assert.ok(c.ended, 'the idle connection was ended, not reset');
    } finally {
      await f.kill();
    }
  });
});
