/**
 * Request bodies through the fast lane (src/http/fast-lane.ts): POSTs with a
 * Content-Length body, however the client splits it, get the same bytes from
 * a server with the lane as from one without it (--no-fast-lane), Date aside;
 * the lane serves those within its cap and the route's limit (counted by
 * flexilib_fast_lane_requests_total), and leaves every other body (larger,
 * chunked, odd lengths, Expect) to node:http; a client that leaves or stalls
 * mid-body gets what node:http gives it and is logged as node logs it.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compilePlugin, eventually, exampleSource, RawConnection, scrape, sleep, startFlexilib, tempDir, writeConfig, type Flexilib } from '@flexilib/test-support';

const get = (target: string) => `GET ${target} HTTP/1.1\r\nHost: test\r\n\r\n`;
/** A body of `n` bytes, every byte value in turn (so a byte moved or lost shows). */
const bytes = (n: number, seed = 0) => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
};
const head = (target: string, length: number | string, extra: string[] = [], method = 'POST') =>
  `${method} ${target} HTTP/1.1\r\nHost: test\r\n${extra.map((h) => `${h}\r\n`).join('')}Content-Length: ${length}\r\n\r\n`;
const post = (target: string, body: Buffer, extra: string[] = [], method = 'POST') => Buffer.concat([Buffer.from(head(target, body.length, extra, method), 'latin1'), body]);
/** The Date header differs by the second: compare everything else. */
const undated = (b: Buffer) => b.toString('latin1').replace(/\r\nDate: [^\r]*/, '\r\nDate: -');
const statusOf = (b: Buffer) => Number(b.toString('latin1').split(' ')[1]);
const bodyOf = (b: Buffer) => b.subarray(b.indexOf('\r\n\r\n') + 4);

describe('fast lane: request bodies', () => {
  const tmp = tempDir();
  let lane: Flexilib;
  let plain: Flexilib;

  before(async () => {
    await compilePlugin(exampleSource, path.join(tmp.dir, 'example.so'));
    // The example answers /echo... with "METHOD TARGET\n" and the body; /echo-small has a 100-byte limit.
    const config = writeConfig(tmp.dir, ['/echo-small = example.so', '/ = example.so', '', '[route /echo-small]', 'max_body = 100'].join('\n'));
    const args = ['--keep-alive-timeout', '5000', '--headers-timeout', '1500', '--request-timeout', '2500'];
    [lane, plain] = await Promise.all([startFlexilib({ config, workers: 1, args }), startFlexilib({ config, workers: 1, args: [...args, '--no-fast-lane'] })]);
    // The library loads on first use, through node:http; the lane serves it once loaded.
    for (const f of [lane, plain]) {
      const c = new RawConnection(f.port);
      c.write(get('/') + get('/echo-small'));
      await c.responses(2);
      c.close();
    }
  });

  after(async () => {
    const codes = await Promise.all([lane?.stop(), plain?.stop()]);
    tmp.cleanup();
    assert.deepEqual(codes, [0, 0]);
  });

  /** Requests through the lane so far, and all requests, of a route. */
  async function counts(f: Flexilib, route = '/'): Promise<{ fast: number; all: number }> {
    const s = await scrape(f.adminPort);
    return { fast: s.sum('flexilib_fast_lane_requests_total', { route }), all: s.sum('flexilib_requests_total', { route }) };
  }

  /** Wait until `f` has counted `n` more requests of `route` than `from`; the lane's share of them. */
  async function counted(f: Flexilib, from: { fast: number; all: number }, n: number, route = '/'): Promise<number> {
    const now = await eventually(`${n} more ${route} requests counted`, async () => {
      const c = await counts(f, route);
      return c.all >= from.all + n ? c : undefined;
    });
    assert.equal(now.all, from.all + n, `${route}: requests counted`);
    return now.fast - from.fast;
  }

  /**
   * On a fresh connection to each server: write the pieces with a pause
   * between (each its own read on the server), then read `n` answers, raw.
   */
  async function exchange(f: Flexilib, pieces: Array<string | Buffer>, n: number): Promise<Buffer[]> {
    const c = new RawConnection(f.port);
    c.sock.setNoDelay(true);
    for (let i = 0; i < pieces.length; i++) {
      if (i > 0) await sleep(40);
      c.write(pieces[i]);
    }
    const out = await c.responses(n, [], 20_000);
    c.close();
    return out;
  }

  async function both(pieces: Array<string | Buffer>, n: number, what: string): Promise<Buffer[]> {
    const fast = await exchange(lane, pieces, n);
    const slow = await exchange(plain, pieces, n);
    for (let i = 0; i < n; i++) assert.equal(undated(fast[i]), undated(slow[i]), `${what}: answer ${i}`);
    return fast;
  }

  it('answers bodies of 0 B to 300 KiB byte for byte as node:http, and logs them alike; the lane takes those up to its cap', async () => {
    // The last, over the lane's cap, is node:http's, and so is the connection from then on.
    const sizes = [0, 1, 1024, 64 * 1024, 256 * 1024];
    const over = 300 * 1024;
    const requests: Buffer[] = [
      ...sizes.map((n) => post(`/echo?size=${n}`, bytes(n, n))),
      // Other methods, a padded and a zero-led Content-Length, a GET with a body.
      post('/echo?put', bytes(10), [], 'PUT'),
      post('/echo?patch', bytes(10), [], 'PATCH'),
      post('/echo?get', bytes(5), [], 'GET'),
      Buffer.from(`${head('/echo?padded', '  5  ')}hello`, 'latin1'),
      Buffer.from(`${head('/echo?zeros', '0005')}hello`, 'latin1'),
      // At the route's limit: still the lane's.
      post('/echo-small?100', bytes(100)),
      post(`/echo?size=${over}`, bytes(over, over)),
    ];
    const [laneBefore, plainBefore, smallBefore] = [await counts(lane), await counts(plain), await counts(lane, '/echo-small')];
    const answers: Buffer[][] = [];
    for (const f of [lane, plain]) {
      const c = new RawConnection(f.port);
      const out: Buffer[] = [];
      for (const r of requests) {
        c.write(r);
        out.push(...(await c.responses(1, [], 20_000)));
      }
      c.close();
      answers.push(out);
    }
    const [fast, slow] = answers;
    for (let i = 0; i < requests.length; i++) assert.equal(undated(fast[i]), undated(slow[i]), `request ${i}`);
    const all = [...sizes, over];
    for (const [i, n] of all.entries()) {
      const a = i < sizes.length ? fast[i] : fast[requests.length - 1];
      assert.equal(statusOf(a), 200);
      assert.ok(bodyOf(a).equals(Buffer.concat([Buffer.from(`POST /echo?size=${n}\n`), bytes(n, n)])), `the ${n}-byte body echoed whole`);
    }
    assert.equal(bodyOf(fast[sizes.length + 3]).toString('latin1'), 'POST /echo?padded\nhello');

    // Everything but the 300 KiB body (over the lane's cap) went through the lane.
    const root = requests.length - 1;
    assert.equal(await counted(lane, laneBefore, root), root - 1);
    assert.equal(await counted(lane, smallBefore, 1, '/echo-small'), 1);
    assert.equal(await counted(plain, plainBefore, root), 0, '--no-fast-lane: nothing through the lane');

    // The access log: the same status and bytes for each, whichever path served it.
    for (const n of all) {
      const target = `/echo?size=${n}`;
      const [a, b] = await Promise.all(
        [lane, plain].map((f) => eventually(`the access line of ${target}`, () => f.logs.find((l) => l.kind === 'access' && l.target === target))),
      );
      for (const k of ['method', 'status', 'bytes', 'route', 'httpVersion', 'preAlloc', 'alloc']) assert.deepEqual(a[k], b[k], `${target}: ${k}`);
      assert.equal(a.bytes, `POST ${target}\n`.length + n);
    }
  });

  it('reads a body however it is split: at the head, mid-body, and with pipelined requests behind it', async () => {
    const body = bytes(3000, 7);
    const whole = post('/echo?split', body);
    const at = whole.indexOf('\r\n\r\n') + 4;
    const big = post('/echo?big', bytes(64 * 1024, 3));
    const bigAt = big.indexOf('\r\n\r\n') + 4;
    const cases: Array<{ what: string; pieces: Array<string | Buffer>; n: number }> = [
      { what: 'head | body', pieces: [whole.subarray(0, at), whole.subarray(at)], n: 1 },
      { what: 'head and a byte | the rest', pieces: [whole.subarray(0, at + 1), whole.subarray(at + 1)], n: 1 },
      { what: 'head | three pieces of body', pieces: [whole.subarray(0, at), whole.subarray(at, at + 10), whole.subarray(at + 10, at + 2000), whole.subarray(at + 2000)], n: 1 },
      { what: 'mid-body | the last byte', pieces: [whole.subarray(0, whole.length - 1), whole.subarray(whole.length - 1)], n: 1 },
      { what: 'head | body and a pipelined GET', pieces: [whole.subarray(0, at), Buffer.concat([whole.subarray(at), Buffer.from(get('/echo?after'))])], n: 2 },
      {
        what: 'head | body, a pipelined GET and the next POST part way | the rest',
        pieces: [whole.subarray(0, at + 5), Buffer.concat([whole.subarray(at + 5), Buffer.from(get('/echo?after')), whole.subarray(0, at + 100)]), whole.subarray(at + 100)],
        n: 3,
      },
      { what: 'a GET, then a POST whose body follows', pieces: [Buffer.concat([Buffer.from(get('/echo?first')), whole.subarray(0, at)]), whole.subarray(at)], n: 2 },
      { what: '64 KiB in 4 KiB pieces', pieces: [big.subarray(0, bigAt), ...Array.from({ length: 16 }, (_, i) => big.subarray(bigAt + i * 4096, bigAt + (i + 1) * 4096))], n: 1 },
    ];
    let requests = 0;
    const before = await counts(lane);
    for (const c of cases) {
      const answers = await both(c.pieces, c.n, c.what);
      assert.ok(answers.every((a) => statusOf(a) === 200), c.what);
      requests += c.n;
    }
    assert.equal(await counted(lane, before, requests), requests, 'every split request was the lane\'s');
  });

  it('reads a body split at every place, as it goes straight to the plugin', async () => {
    // Split in two at every byte of the body (each piece its own read; a head
    // split is node:http's, and so is its connection), then a 64 KiB body at
    // its edges and at node's 64 KiB reads.
    const whole = post('/echo?every', bytes(600, 11));
    const at0 = whole.indexOf('\r\n\r\n') + 4;
    const big = post('/echo?every-big', bytes(64 * 1024, 13));
    const bigAt = big.indexOf('\r\n\r\n') + 4;
    const splits: Array<[Buffer, number]> = [];
    for (let at = at0; at < whole.length; at++) splits.push([whole, at]);
    for (const at of [bigAt, bigAt + 1, 65536 - 1, 65536, 65536 + 1, big.length - 1]) splits.push([big, at]);
    const before = await counts(lane);
    const answers: Buffer[][] = [];
    for (const f of [lane, plain]) {
      const c = new RawConnection(f.port);
      c.sock.setNoDelay(true);
      const out: Buffer[] = [];
      for (const [r, at] of splits) {
        c.write(r.subarray(0, at));
        await sleep(2);
        c.write(r.subarray(at));
        out.push(...(await c.responses(1, [], 20_000)));
      }
      c.close();
      answers.push(out);
    }
    for (const [i, [r, at]] of splits.entries()) {
      assert.equal(undated(answers[0][i]), undated(answers[1][i]), `split at ${at} of ${r.length}`);
      const target = r === whole ? '/echo?every' : '/echo?every-big';
      assert.ok(bodyOf(answers[0][i]).equals(Buffer.concat([Buffer.from(`POST ${target}\n`), bodyOf(r)])), `split at ${at}: the body echoed whole`);
    }
    assert.equal(await counted(lane, before, splits.length), splits.length, 'every split request was the lane\'s');
  });

  it('gathers a body sent in many small pieces', async () => {
    const whole = post('/echo?trickle', bytes(2000, 17));
    const at = whole.indexOf('\r\n\r\n') + 4;
    // 50 reads of 40 bytes, then a pipelined GET behind the last.
    const pieces: Buffer[] = [whole.subarray(0, at)];
    for (let i = at; i < whole.length; i += 40) pieces.push(whole.subarray(i, Math.min(i + 40, whole.length)));
    pieces[pieces.length - 1] = Buffer.concat([pieces[pieces.length - 1], Buffer.from(get('/echo?behind'))]);
    const before = await counts(lane);
    const [a, b] = await both(pieces, 2, 'a body in 50 pieces');
    assert.equal(statusOf(a), 200);
    assert.ok(bodyOf(a).equals(Buffer.concat([Buffer.from('POST /echo?trickle\n'), bytes(2000, 17)])));
    assert.equal(bodyOf(b).toString('latin1'), 'GET /echo?behind\n');
    assert.equal(await counted(lane, before, 2), 2);
  });

  it('a client that does not read keeps its answers whole while another connection is served meanwhile', async () => {
    // 40 answers of 256 KiB: far more than loopback's socket buffers hold, so
    // the kernel takes part of one and the rest waits in the worker, while the
    // other connection's calls reuse the plugin's memory.
    const slowOnes = Array.from({ length: 40 }, (_, i) => post(`/echo?slow=${i}`, bytes(256 * 1024, i)));
    const quickOnes = Array.from({ length: 3 }, (_, i) => post(`/echo?quick=${i}`, bytes(64 * 1024, 100 + i)));
    const before = await counts(lane);
    const got: Array<{ slow: Buffer[]; quick: Buffer[] }> = [];
    for (const f of [lane, plain]) {
      const slow = new RawConnection(f.port);
      slow.sock.pause();
      for (const r of slowOnes) slow.write(r);
      await sleep(300);
      const quick = new RawConnection(f.port);
      const quickAnswers: Buffer[] = [];
      for (const r of quickOnes) {
        quick.write(r);
        quickAnswers.push(...(await quick.responses(1, [], 20_000)));
      }
      quick.close();
      slow.sock.resume();
      got.push({ slow: await slow.responses(slowOnes.length, [], 60_000), quick: quickAnswers });
      slow.close();
    }
    const [fast, node] = got;
    for (let i = 0; i < slowOnes.length; i++) {
      assert.equal(undated(fast.slow[i]), undated(node.slow[i]), `slow answer ${i}`);
      assert.ok(bodyOf(fast.slow[i]).equals(Buffer.concat([Buffer.from(`POST /echo?slow=${i}\n`), bytes(256 * 1024, i)])), `slow answer ${i} intact`);
    }
    for (let i = 0; i < quickOnes.length; i++) {
      assert.equal(undated(fast.quick[i]), undated(node.quick[i]), `quick answer ${i}`);
      assert.ok(bodyOf(fast.quick[i]).equals(Buffer.concat([Buffer.from(`POST /echo?quick=${i}\n`), bytes(64 * 1024, 100 + i)])), `quick answer ${i} intact`);
    }
    const n = slowOnes.length + quickOnes.length;
    assert.equal(await counted(lane, before, n), n, 'all of them through the lane');
  });

  it('leaves odd and oversized bodies to node:http, which answers them as it always does', async () => {
    const cases: Array<{ what: string; raw: string | Buffer; status: number[] }> = [
      { what: 'over the route limit', raw: post('/echo-small?101', bytes(101)), status: [413] },
      { what: 'a sign', raw: `${head('/echo', '+3')}abc`, status: [400] },
      { what: 'a list', raw: `${head('/echo', '3,3')}abc`, status: [400] },
      { what: 'two numbers', raw: `${head('/echo', '1 2')}abc`, status: [400] },
      { what: 'hex', raw: `${head('/echo', '0x3')}abc`, status: [400] },
      { what: 'empty', raw: `${head('/echo', '')}abc`, status: [400] },
      { what: 'two Content-Lengths', raw: `${head('/echo', '3', ['Content-Length: 3'])}abc`, status: [400] },
      { what: 'Content-Length and Transfer-Encoding', raw: `${head('/echo', '3', ['Transfer-Encoding: chunked'])}3\r\nabc\r\n0\r\n\r\n`, status: [400] },
      { what: 'Expect: 100-continue', raw: `${head('/echo?expect', '3', ['Expect: 100-continue'])}abc`, status: [100, 200] },
      { what: 'chunked', raw: 'POST /echo?chunked HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n', status: [200] },
      { what: 'past the digits the lane reads', raw: `${head('/echo', '1234567890')}abc`, status: [413] },
    ];
    const before = { small: await counts(lane, '/echo-small'), root: await counts(lane) };
    for (const c of cases) {
      const answers = await both([c.raw], c.status.length, c.what);
      assert.deepEqual(answers.map(statusOf), c.status, c.what);
    }
    const [small, root] = [await counts(lane, '/echo-small'), await counts(lane)];
    assert.equal(small.fast - before.small.fast + root.fast - before.root.fast, 0, 'none of them through the lane');
    // The server kept serving, through the lane.
    const [r] = await exchange(lane, [post('/echo?still', bytes(10))], 1);
    assert.equal(statusOf(r), 200);
  });

  for (const how of ['half-closes', 'closes', 'stalls'] as const) {
    it(`answers and logs a client that ${how} mid-body as node:http does`, async () => {
      const target = `/echo?left=${how}`;
      const start = Buffer.concat([Buffer.from(head(target, 5000), 'latin1'), bytes(1000)]);
      const got: Array<{ bytes: string; status: unknown }> = [];
      for (const f of [lane, plain]) {
        const c = new RawConnection(f.port);
        const received: Buffer[] = [];
        c.sock.on('data', (b: Buffer) => received.push(b));
        c.write(start);
        await sleep(100);
        if (how === 'half-closes') c.sock.end();
        else if (how === 'closes') c.close();
        // stalls: --request-timeout 2500; node checks it every 375 ms.
        await Promise.race([c.closed, sleep(10_000).then(() => assert.fail(`${how}: the server kept the connection`))]);
        const line = await eventually(`the access line of ${target}`, () => f.logs.find((l) => l.kind === 'access' && l.target === target));
        got.push({ bytes: Buffer.concat(received).toString('latin1').replace(/\r\nDate: [^\r]*/, ''), status: line.status });
      }
      assert.deepEqual(got[0], got[1]);
      assert.equal(got[0].status, 499);
      const answer = { 'half-closes': /^HTTP\/1\.1 400 /, closes: /^$/, stalls: /^HTTP\/1\.1 408 / }[how];
      assert.match(got[0].bytes, answer);
      // The server kept serving, through the lane.
      const [r] = await exchange(lane, [post('/echo?still', bytes(10))], 1);
      assert.equal(statusOf(r), 200);
    });
  }

  it('finishes a body in progress on a graceful stop, answering with Connection: close', async () => {
    const f = await startFlexilib({ config: path.join(tmp.dir, 'proxy.ini'), workers: 1 });
    try {
      const first = new RawConnection(f.port);
      first.write(get('/'));
      await first.responses(1);
      first.close();
      const whole = post('/echo?stopping', bytes(2000));
      const c = new RawConnection(f.port);
      c.sock.setNoDelay(true);
      c.write(whole.subarray(0, 500));
      await sleep(200);
      const stopped = f.stop();
      await sleep(300);
      c.write(whole.subarray(500));
      const [r] = await c.responses(1);
      assert.equal(statusOf(r), 200);
      assert.match(r.toString('latin1'), /\r\nConnection: close\r\n/);
      assert.equal(bodyOf(r).length, '/echo?stopping'.length + 6 + 2000);
      await c.closed;
      assert.equal(await stopped, 0);
    } finally {
      await f.kill();
    }
  });
});

/** A plugin whose answers outgrow its arena or not, as asked (x-size), with a status (x-status) or a header node refuses (x-bad). */
const SIZED_PLUGIN = `#include <flexilib.h>
static size_t num(const flexi_request *req, const char *name) {
  size_t len, n = 0;
  const char *v = flexi_request_header(req, name, &len);
  for (size_t i = 0; v && i < len && v[i] >= '0' && v[i] <= '9'; i++) n = n * 10 + (size_t)(v[i] - '0');
  return n;
}
int handle_request(const flexi_request *req, flexi_response *resp) {
  size_t size = num(req, "x-size");
  unsigned char chunk[1000];
  for (size_t done = 0; done < size;) {
    size_t n = size - done < sizeof chunk ? size - done : sizeof chunk;
    for (size_t i = 0; i < n; i++) chunk[i] = (unsigned char)(((done + i) * 31 + size) & 0xff);
    if (flexi_write(resp, chunk, n)) return 1;
    done += n;
  }
  if (num(req, "x-status")) flexi_set_status(resp, (int)num(req, "x-status"));
  if (flexi_request_header(req, "x-bad", NULL)) flexi_add_header(resp, "X-Bad", "a\\r\\nb");
  return 0;
}
`;

describe('fast lane: large plugin answers sent from native memory', () => {
  const tmp = tempDir();
  /** Per arena size: a server with the lane and one without. */
  const servers: Array<{ arenaKb: number; lane: Flexilib; plain: Flexilib }> = [];

  before(async () => {
    const src = path.join(tmp.dir, 'sized.c');
    writeFileSync(src, SIZED_PLUGIN);
    await compilePlugin(src, path.join(tmp.dir, 'sized.so'));
    const config = writeConfig(tmp.dir, '/ = sized.so\n');
    // 8 KiB (the default): a large body is in the block the plugin took from
    // malloc; 512 KiB: it is in the arena itself.
    for (const arenaKb of [8, 512]) {
      const args = ['--prealloc-kb', String(arenaKb)];
      const [lane, plain] = await Promise.all([startFlexilib({ config, workers: 1, args }), startFlexilib({ config, workers: 1, args: [...args, '--no-fast-lane'] })]);
      servers.push({ arenaKb, lane, plain });
      for (const f of [lane, plain]) {
        const c = new RawConnection(f.port);
        c.write(get('/'));
        await c.responses(1);
        c.close();
      }
    }
  });

  after(async () => {
    const codes = await Promise.all(servers.flatMap((s) => [s.lane.stop(), s.plain.stop()]));
    tmp.cleanup();
    assert.deepEqual(codes, codes.map(() => 0));
  });

  const sized = (target: string, size: number, extra: string[] = []) =>
    `GET ${target} HTTP/1.1\r\nHost: test\r\nx-size: ${size}\r\n${extra.map((h) => `${h}\r\n`).join('')}\r\n`;
  const pattern = (size: number) => {
    const b = Buffer.allocUnsafe(size);
    for (let i = 0; i < size; i++) b[i] = (i * 31 + size) & 0xff;
    return b;
  };

  it('answers, logs and counts them byte for byte as node:http, the arena reused between them', async () => {
    const cases: Array<{ target: string; raw: string; status: number; body?: number }> = [];
    for (const size of [16 * 1024, 16 * 1024 + 1, 20_000, 64 * 1024 + 11, 200_000, 1024 * 1024]) cases.push({ target: `/size=${size}`, raw: sized(`/size=${size}`, size), status: 200, body: size });
    // Held and never sent: no body with 204 and 304; a header node refuses answers 502 instead.
    cases.push({ target: '/no-content', raw: sized('/no-content', 64 * 1024, ['x-status: 204']), status: 204 });
    cases.push({ target: '/not-modified', raw: sized('/not-modified', 64 * 1024, ['x-status: 304']), status: 304 });
    cases.push({ target: '/bad', raw: sized('/bad', 64 * 1024, ['x-bad: 1']), status: 502 });
    cases.push({ target: '/after', raw: sized('/after', 70_000), status: 200, body: 70_000 });
    for (const { arenaKb, lane, plain } of servers) {
      const before = await scrape(lane.adminPort);
      const answers: Buffer[][] = [];
      for (const f of [lane, plain]) {
        const c = new RawConnection(f.port);
        const out: Buffer[] = [];
        // One at a time, then all of them pipelined (answered one behind the other).
        for (const k of cases) {
          c.write(k.raw);
          out.push(...(await c.responses(1, [], 20_000)));
        }
        c.write(cases.map((k) => k.raw).join(''));
        out.push(...(await c.responses(cases.length, [], 20_000)));
        c.close();
        answers.push(out);
      }
      const [fast, slow] = answers;
      for (let i = 0; i < fast.length; i++) {
        const k = cases[i % cases.length];
        const what = `${arenaKb} KiB arena, ${k.target} (${i < cases.length ? 'alone' : 'pipelined'})`;
        assert.equal(undated(fast[i]), undated(slow[i]), what);
        assert.equal(statusOf(fast[i]), k.status, what);
        if (k.body !== undefined) assert.ok(bodyOf(fast[i]).equals(pattern(k.body)), `${what}: the body whole`);
      }
      for (const k of cases) {
        const [a, b] = await Promise.all(
          [lane, plain].map((f) => eventually(`the access line of ${k.target}`, () => f.logs.find((l) => l.kind === 'access' && l.target === k.target))),
        );
        for (const key of ['status', 'bytes', 'preAlloc', 'alloc']) assert.deepEqual(a[key], b[key], `${arenaKb} KiB arena, ${k.target}: ${key}`);
      }
      const after = await eventually('the lane\'s requests counted', async () => {
        const s = await scrape(lane.adminPort);
        return s.sum('flexilib_requests_total', { route: '/' }) - before.sum('flexilib_requests_total', { route: '/' }) >= cases.length * 2 ? s : undefined;
      });
      const d = (name: string) => after.sum(name, { route: '/' }) - before.sum(name, { route: '/' });
      assert.equal(d('flexilib_fast_lane_requests_total'), cases.length * 2, `${arenaKb} KiB arena: all through the lane`);
      assert.equal(d('flexilib_requests_total'), cases.length * 2);
    }
  });
});
