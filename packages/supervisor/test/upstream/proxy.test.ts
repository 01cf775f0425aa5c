/**
 * Proxying through upstream pools: balancing, header rewriting, bodies both
 * ways, and the 502/503/504 answers, against real origins on loopback and the
 * real flexilib command.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { test } from 'node:test';
import { load, refusedPort, request, startFlexilib, tempDir, writeConfig, sleep } from '@flexilib/test-support';
import { startOrigin } from './origins.js';

test('proxy: balancing, headers, bodies and errors', { timeout: 60_000 }, async (t) => {
  const tmp = tempDir('upstream');
  t.after(() => tmp.cleanup());
  const dir = tmp.dir;
  const a = await startOrigin(t, 'a');
  const b = await startOrigin(t, 'b');
  const c = await startOrigin(t, 'c');
  const fast = await startOrigin(t, 'fast');
  const slow = await startOrigin(t, 'slow', (req, res) => {
    req.resume();
    setTimeout(() => res.end('slow'), 150);
  });
  let seen: { headers: http.IncomingHttpHeaders; rawHeaders: string[]; url?: string } | undefined;
  const echo = await startOrigin(t, 'echo', (req, res) => {
    seen = { headers: req.headers, rawHeaders: req.rawHeaders, url: req.url };
    const want = req.headers['x-want-status'];
    if (typeof want === 'string') {
      req.resume();
      res.writeHead(Number(want), { 'content-type': 'text/plain' });
      res.end(`origin says ${want}`);
      return;
    }
    if (req.url?.startsWith('/echo/big')) {
      // 16 MiB of a counter pattern, streamed in 64 KiB chunks, no content-length (chunked).
      const hash = createHash('sha256');
      let i = 0;
      const write = () => {
        while (i < 256) {
          const chunk = Buffer.alloc(65536, i++ & 0xff);
          hash.update(chunk);
          if (!res.write(chunk)) return void res.once('drain', write);
        }
        res.end();
      };
      res.setHeader('x-sha256-trailer', 'see body');
      write();
      return;
    }
    res.writeHead(200, {
      Connection: 'X-Secret, keep-alive',
      'X-Secret': 'must not pass',
      'Keep-Alive': 'timeout=10',
      'Proxy-Authenticate': 'Basic',
      'Set-Cookie': ['a=1', 'b=2'],
      'content-type': 'application/octet-stream',
    });
    req.pipe(res);
  });
  const hang = await startOrigin(t, 'hang', (req) => {
    req.resume(); // never answers
  });
  const cut = await startOrigin(t, 'cut', (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-length': '1000000' });
    res.write(Buffer.alloc(1000));
    setTimeout(() => res.destroy(), 50);
  });
  // Reads the whole body, then answers its length (an echo would answer before the limit is hit).
  const sink = await startOrigin(t, 'sink', (req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => res.end(`got ${n}`));
  });
  const stall = await startOrigin(t, 'stall', (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-length': '100' });
    res.write('first ten.'); // then silence
  });
  const dead = await refusedPort();
  t.after(() => dead.close());

  const config = writeConfig(dir, `# flat FlexiLib lines and sections side by side
/rr = upstream:rr
/lc = upstream:lc
/echo = upstream:echo
/refused = upstream:refused
/hang = upstream:hang
/cut = upstream:cut
/empty = upstream:empty
/limited = upstream:sink
/stall = upstream:stall

[route /limited]
max_body = 1k

[upstream.rr]
servers = ${a.url}, ${b.url}, ${c.url}
health_path = /health
health_interval = 500ms
health_timeout = 2s ; the machine may be busy: only a dead origin should fail a check

[upstream.lc]
servers = ${fast.url}, ${slow.url}
balance = least-conn
health_path = /health

[upstream.echo]
servers = ${echo.url}/
health_path = /health

[upstream.refused]
servers = http://127.0.0.1:${dead.port}
retries = 0
health_interval = 30s

[upstream.hang]
servers = ${hang.url}
header_timeout = 300ms
health_path = /health

[upstream.cut]
servers = ${cut.url}
health_path = /health

[upstream.empty]
servers =

[upstream.sink]
servers = ${sink.url}

[upstream.stall]
servers = ${stall.url}
idle_timeout = 300ms
`);
  const fx = await startFlexilib({ config, workers: 2, accessLog: false });
  t.after(() => fx.kill());

  await t.test('round-robin spreads evenly over the origins', async () => {
    const run = load(fx.port, '/rr/x', { concurrency: 6, maxRequests: 600, maxMs: 20_000, countHeader: 'x-origin' });
    const r = await run.done;
    assert.equal(r.failed, 0, r.errors.join('\n'));
    assert.equal(r.ok, 600);
    // Each worker rotates exactly; two workers together stay within a few requests of even.
    for (const name of ['a', 'b', 'c']) {
      const n = r.byHeader.get(name) ?? 0;
      assert.ok(n >= 180 && n <= 220, `origin ${name} got ${n} of 600: ${JSON.stringify([...r.byHeader])}`);
    }
  });

  await t.test('least-conn sends most requests to the origin that answers fastest', async () => {
    const r = await load(fx.port, '/lc/x', { concurrency: 8, maxRequests: 400, maxMs: 20_000, countHeader: 'x-origin' }).done;
    assert.equal(r.failed, 0, r.errors.join('\n'));
    const f = r.byHeader.get('fast') ?? 0;
    const s = r.byHeader.get('slow') ?? 0;
    // Round-robin would split 50/50; the slow origin holds each request 150 ms, so it is rarely the least busy.
    assert.ok(f > 2 * s, `fast ${f}, slow ${s}`);
    assert.ok(s > 0, 'the slow origin still gets requests when the fast one is busy');
  });

  await t.test("an origin's own 5xx passes through untouched (no x-flexilib-error)", async () => {
    const r = await request(fx.port, '/echo/status', { headers: { 'x-want-status': '502' } });
    assert.equal(r.status, 502);
    assert.equal(r.headers['x-flexilib-error'], undefined);
    assert.equal(r.body, 'origin says 502');
  });

  await t.test('hop-by-hop headers stay on their hop; X-Forwarded-* are set; Host passes', async () => {
    const r = await request(fx.port, '/echo/h?x=1', {
      method: 'POST',
      headers: {
        Host: 'shop.example',
        Connection: 'keep-alive, X-Drop-Me',
        'X-Drop-Me': 'secret',
        'Keep-Alive': 'timeout=5',
        'Proxy-Authorization': 'Basic Zm9v',
        TE: 'trailers',
        'X-Forwarded-For': '203.0.113.9',
        'X-Forwarded-Proto': 'https',
        'X-Keep': 'yes',
      },
      body: 'ping',
    });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ping');
    const h = seen!.headers;
    assert.equal(seen!.url, '/echo/h?x=1');
    assert.equal(h.host, 'shop.example');
    assert.equal(h['x-keep'], 'yes');
    assert.equal(h['x-drop-me'], undefined);
    assert.equal(h['keep-alive'], undefined);
    assert.equal(h['proxy-authorization'], undefined);
    assert.equal(h.te, undefined);
    assert.equal(h['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['x-forwarded-host'], 'shop.example');
    // Response side.
    assert.equal(r.headers['x-secret'], undefined);
    assert.equal(r.headers['proxy-authenticate'], undefined);
    assert.notEqual(r.headers['keep-alive'], 'timeout=10');
    assert.deepEqual(r.headers['set-cookie'], ['a=1', 'b=2']);
    assert.equal(r.headers['content-type'], 'application/octet-stream');
  });

  await t.test('bodies stream both ways byte-exact (chunked upload, 16 MiB chunked download)', async () => {
    const body = Buffer.alloc(3 * 1024 * 1024 + 7);
    for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
    const up = await new Promise<Buffer>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: fx.port, path: '/echo/up', method: 'PUT', headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
      });
      req.on('error', reject);
      for (let off = 0; off < body.length; off += 100_000) req.write(body.subarray(off, off + 100_000));
      req.end();
    });
    assert.equal(up.length, body.length);
    assert.ok(up.equals(body), 'echoed body differs');

    const expected = createHash('sha256');
    for (let i = 0; i < 256; i++) expected.update(Buffer.alloc(65536, i & 0xff));
    const got = createHash('sha256');
    let size = 0;
    await new Promise<void>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: fx.port, path: '/echo/big' }, (res) => {
        assert.equal(res.statusCode, 200);
        res.on('data', (c: Buffer) => {
          size += c.length;
          got.update(c);
        });
        res.on('end', resolve);
        res.on('error', reject);
      }).on('error', reject);
    });
    assert.equal(size, 256 * 65536);
    assert.equal(got.digest('hex'), expected.digest('hex'));
  });

  await t.test("a route's max_body applies to proxied bodies, declared or chunked (413)", async () => {
    const declared = await request(fx.port, '/limited/x', { method: 'POST', body: Buffer.alloc(2000), agent: false });
    assert.equal(declared.status, 413);
    assert.equal(declared.headers['x-flexilib-error'], 'FLX_UPSTREAM_BODY_TOO_LARGE');
    assert.equal(declared.body, 'route "/limited" (pool "sink"): request body exceeds the limit of 1024 bytes\n');
    const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: fx.port, path: '/limited/x', method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.write(Buffer.alloc(800));
      setTimeout(() => req.end(Buffer.alloc(800)), 50);
    });
    assert.equal(chunked.status, 413);
    assert.equal(chunked.body, 'route "/limited" (pool "sink"): request body exceeds the limit of 1024 bytes\n');
    const small = await request(fx.port, '/limited/x', { method: 'POST', body: 'fits' });
    assert.equal(small.status, 200);
    assert.equal(small.body, 'got 4');
  });

  await t.test('502 when the origin refuses, naming route, pool and origin', async () => {
    const r = await request(fx.port, '/refused/x');
    assert.equal(r.status, 502);
    assert.equal(r.headers['x-flexilib-error'], 'FLX_UPSTREAM_CONNECT');
    assert.match(r.body, /^route "\/refused" \(pool "refused"\): origin http:\/\/127\.0\.0\.1:\d+ refused the connection\n$/);
  });

  await t.test('504 when the origin sends no headers within header_timeout', async () => {
    const r = await request(fx.port, '/hang/x');
    assert.equal(r.status, 504);
    assert.equal(r.headers['x-flexilib-error'], 'FLX_UPSTREAM_TIMEOUT');
    assert.match(r.body, /route "\/hang" \(pool "hang"\): origin .* sent no response headers within 300 ms \(header_timeout\)/);
  });

  await t.test('503 at once for a pool without origins', async () => {
    const start = performance.now();
    const r = await request(fx.port, '/empty/x');
    assert.equal(r.status, 503);
    assert.equal(r.body, 'route "/empty" (pool "empty"): the pool has no origins\n');
    assert.equal(r.headers['retry-after'], '1');
    assert.equal(r.headers['x-flexilib-error'], 'FLX_UPSTREAM_UNAVAILABLE');
    assert.ok(performance.now() - start < 1000);
  });

  await t.test('an origin that dies mid-body cuts the client connection (the status was already sent)', async () => {
    const err = await new Promise<string>((resolve) => {
      http.get({ host: '127.0.0.1', port: fx.port, path: '/cut/x', agent: false }, (res) => {
        assert.equal(res.statusCode, 200);
        res.resume();
        res.on('end', () => resolve('ended cleanly'));
        res.on('error', (e) => resolve(`error: ${e.message}`));
        res.on('aborted', () => resolve('aborted'));
      }).on('error', (e) => resolve(`error: ${e.message}`));
    });
    assert.notEqual(err, 'ended cleanly');
  });

  await t.test('an origin silent beyond idle_timeout mid-body: the client connection is cut', async () => {
    const got = await new Promise<string>((resolve) => {
      http.get({ host: '127.0.0.1', port: fx.port, path: '/stall/x', agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () => resolve(`ended: ${body}`));
        res.on('error', () => resolve(`cut after: ${body}`));
      }).on('error', (e) => resolve(`error: ${e.message}`));
    });
    assert.equal(got, 'cut after: first ten.');
    await fx.waitForLog((l) => l.cause === 'UND_ERR_BODY_TIMEOUT' && l.code === 'FLX_UPSTREAM_TIMEOUT' && l.route === '/stall');
  });

  await t.test('the refused origin goes down after `fall` failures; then 503 at once', async () => {
    // retries=0 and 30 s checks: only the passive reports and the immediate checks they trigger count.
    for (let i = 0; i < 4; i++) await request(fx.port, '/refused/x');
    let r = await request(fx.port, '/refused/x');
    for (let i = 0; i < 40 && r.status !== 503; i++) {
      await sleep(50);
      r = await request(fx.port, '/refused/x');
    }
    assert.equal(r.status, 503);
    assert.equal(r.body, 'route "/refused" (pool "refused"): no healthy origin (0 of 1 healthy)\n');
    await fx.waitForLog((l) => l.msg === 'upstream origin down' && l.pool === 'refused');
  });
});
