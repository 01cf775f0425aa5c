/**
 * The worker serving real plugins: the C example and fixtures compiled here,
 * the real flexilib command, real HTTP over loopback.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { renameSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compilePlugin, exampleSource, fixture, request, startFlexilib, tempDir, waitForAnswers, writeConfig, type Flexilib, type RequestOptions } from '@flexilib/test-support';

// These tests talk over a keep-alive agent unless they ask for a fresh connection (agent: false).
const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 16 });
const send = (port: number, target = '/', opts: RequestOptions = {}) => request(port, target, { agent: keepAlive, timeoutMs: 30_000, ...opts });

describe('native plugins through the real server', () => {
  const tmp = tempDir();
  let server: Flexilib;
  const lib = (name: string) => path.join(tmp.dir, name);

  before(async () => {
    await Promise.all([
      compilePlugin(exampleSource, lib('example.so')),
      compilePlugin(fixture('big.c'), lib('big.so')),
      compilePlugin(fixture('no-handler.c'), lib('no-handler.so')),
      compilePlugin(fixture('init-fails.c'), lib('init-fails.so')),
      compilePlugin(fixture('abi-v2.c'), lib('abi-v2.so')),
      compilePlugin(fixture('no-abi.c'), lib('no-abi.so')),
      compilePlugin(fixture('bad-header.c'), lib('bad-header.so')),
    ]);
    const cfg = writeConfig(
      tmp.dir,
      [
        'Host: iam / = example.so',
        'x-tenant: big /tenant = big.so',
        '/big = big.so',
        '/missing = not-built-yet.so',
        '/no-handler = no-handler.so',
        '/init-fails = init-fails.so',
        '/abi-v2 = abi-v2.so',
        '/no-abi = no-abi.so',
        '/bad-header = bad-header.so',
        '/small-body = example.so',
        '/threaded = example.so',
        '/ = example.so',
        '',
        '[route /small-body]',
        'max_body = 16',
        '[route /threaded]',
        'mode = threaded',
        'threads = 2',
      ].join('\n'),
    );
    server = await startFlexilib({ config: cfg, workers: 2, args: ['--max-body', '64k'] });
  });

  after(async () => {
    const code = await server?.stop();
    keepAlive.destroy();
    tmp.cleanup();
    assert.equal(code, 0);
  });

  it('answers like FlexiLib: body " N" (N request headers), X-custom-foo, text/plain', async () => {
    const r = await send(server.port, '/', { headers: { 'x-one': '1', 'x-two': '2' } });
    assert.equal(r.status, 200);
    // Host, Connection (keep-alive agent), x-one, x-two
    assert.equal(r.body, ' 4');
    assert.equal(r.headers['x-custom-foo'], 'bar');
    assert.equal(r.headers['content-type'], 'text/plain');
    assert.equal(r.headers['content-length'], '2');
  });

  it('x-log-this prepends, x-status sets the status, x-throw answers 500 keeping the body', async () => {
    assert.equal((await send(server.port, '/', { headers: { 'x-log-this': 'hello' } })).body, 'hello 3');
    const st = await send(server.port, '/', { headers: { 'x-status': '418' } });
    assert.equal(st.status, 418);
    const thrown = await send(server.port, '/', { headers: { 'x-throw': '1' } });
    assert.equal(thrown.status, 500);
    assert.equal(thrown.body, ' 3');
  });

  it('routes on a header value prefix (Host: iam /)', async () => {
    const r = await send(server.port, '/', { headers: { host: 'iamhere.example' } });
    assert.equal(r.body, 'iam response');
    const other = await send(server.port, '/tenant', { headers: { 'X-Tenant': 'bigcorp', 'x-size': '5' } });
    assert.equal(other.bytes.length, 5, 'header route names compare case-insensitively');
  });

  it('passes method, target (with query) and body through: echo', async () => {
    const r = await send(server.port, '/echo/a?b=c&d', { method: 'PUT', body: 'payload\u00ff' });
    assert.equal(r.status, 200);
    assert.equal(r.bytes.toString('utf8'), 'PUT /echo/a?b=c&d\npayload\u00ff');
  });

  it('keeps connections alive', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const ports = new Set<number>();
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: server.port, path: '/', agent }, (res) => {
          ports.add(res.socket.localPort!);
          assert.equal(res.headers.connection, 'keep-alive');
          res.resume().on('end', resolve);
        }).on('error', reject);
      });
    }
    agent.destroy();
    assert.equal(ports.size, 1, 'all five requests used one connection');
  });

  it('answers 404 with the path when no route matches', async () => {
    const cfgless = await send(server.port, '/', { headers: {} });
    assert.equal(cfgless.status, 200);
    const tmp2 = tempDir();
    const s2 = await startFlexilib({ config: writeConfig(tmp2.dir, `/only = ${lib('example.so')}\n`), workers: 1 });
    try {
      const r = await send(s2.port, '/elsewhere');
      assert.equal(r.status, 404);
      assert.match(r.body, /no route matches \/elsewhere/);
    } finally {
      await s2.stop();
      tmp2.cleanup();
    }
  });

  it('serves a 16 MiB response byte-exact (body beyond the arena)', async () => {
    const size = 16 * 1024 * 1024;
    const r = await send(server.port, '/big', { headers: { 'x-size': String(size) } });
    assert.equal(r.status, 200);
    assert.equal(r.bytes.length, size);
    const want = Buffer.alloc(size);
    for (let i = 0; i < size; i++) want[i] = (i * 31 + 7) & 0xff;
    assert.equal(createHash('sha256').update(r.bytes).digest('hex'), createHash('sha256').update(want).digest('hex'));
    assert.equal(r.headers['content-type'], 'application/octet-stream');
  });

  it('survives allocations and headers beyond the arena, and reports them in the access log', async () => {
    const r = await send(server.port, '/big?overflow', { headers: { 'x-alloc': '100000', 'x-headers': '300', 'x-size': '10' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-h-0'], 'value-0-padding-padding');
    assert.equal(r.headers['x-h-299'], 'value-299-padding-padding');
    assert.equal(r.bytes.length, 10);
    const line = await server.waitForLog((o) => o.kind === 'access' && o.target === '/big?overflow');
    assert.ok((line.alloc as number) >= 100000, `alloc ${line.alloc} counts the 100000-byte allocation`);
    assert.equal(line.preAlloc, 8192);
    assert.equal(line.status, 200);
    assert.equal(line.bytes, 10);
  });

  it('answers 502 naming route and library for a missing library, and retries once it appears', async () => {
    const r = await send(server.port, '/missing');
    assert.equal(r.status, 502);
    assert.match(r.body, /route "\/missing": library not found: .*not-built-yet\.so/);
    const logged = await server.waitForLog((o) => o.msg === 'library unavailable' && o.route === '/missing');
    assert.equal(logged.code, 'FLX_LIB_NOT_FOUND');
    await compilePlugin(exampleSource, lib('tmp-build.so'));
    renameSync(lib('tmp-build.so'), lib('not-built-yet.so'));
    // The new file is tried as soon as the watcher reports it, whatever is left of the backoff.
    await waitForAnswers(server.port, '/missing', (r) => r.status === 200, { n: 4 });
  });

  it('refuses libraries without handle_request, with a failing flexi_init, or built for another ABI', async () => {
    const noHandler = await send(server.port, '/no-handler');
    assert.equal(noHandler.status, 502);
    assert.match(noHandler.body, /does not export handle_request/);
    const init = await send(server.port, '/init-fails');
    assert.equal(init.status, 502);
    assert.match(init.body, /flexi_init returned 3/);
    const v2 = await send(server.port, '/abi-v2');
    assert.equal(v2.status, 502);
    assert.match(v2.body, /built for plugin ABI 2\.0; this host speaks ABI 1\.x/);
    const noAbi = await send(server.port, '/no-abi');
    assert.equal(noAbi.status, 502);
    assert.match(noAbi.body, /does not export flexi_abi_version/);
    // The workers are still serving.
    assert.equal((await send(server.port)).status, 200);
  });

  it('answers 502 when a plugin produces a header HTTP forbids', async () => {
    const r = await send(server.port, '/bad-header');
    assert.equal(r.status, 502);
    assert.match(r.body, /plugin for route "\/bad-header" produced an invalid response/);
    assert.equal(r.headers.injected, undefined);
  });

  it('answers 413 beyond the body limit, server-wide and per route', async () => {
    const ok = await send(server.port, '/echo', { method: 'POST', body: Buffer.alloc(60 * 1024, 97) });
    assert.equal(ok.status, 200);
    const big = await send(server.port, '/echo', { method: 'POST', body: Buffer.alloc(65 * 1024, 97), agent: false });
    assert.equal(big.status, 413);
    assert.match(big.body, /exceeds the limit of 65536 bytes/);
    const route = await send(server.port, '/small-body', { method: 'POST', body: 'x'.repeat(17), agent: false });
    assert.equal(route.status, 413);
    // Chunked bodies are counted as they arrive.
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: server.port, method: 'POST', path: '/small-body', agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.write('0123456789');
      req.end('0123456789');
    });
    assert.equal(chunked, 413);
  });

  it('answers 431 for oversized headers', async () => {
    const r = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(server.port, '127.0.0.1', () => {
        sock.write(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
      });
      let data = '';
      sock.on('data', (d) => (data += d));
      sock.on('end', () => resolve(data));
      sock.on('error', reject);
    });
    assert.match(r, /^HTTP\/1\.1 431 /);
  });

  it('cuts off a client that sends its headers too slowly (408)', async () => {
    const tmp2 = tempDir();
    const s2 = await startFlexilib({ config: writeConfig(tmp2.dir, `/ = ${lib('example.so')}\n`), workers: 1, args: ['--headers-timeout', '800', '--request-timeout', '800'] });
    try {
      const started = Date.now();
      const reply = await new Promise<string>((resolve, reject) => {
        const sock = net.connect(s2.port, '127.0.0.1', () => sock.write('GET / HTTP/1.1\r\nHost: x\r\nX-Slow'));
        let data = '';
        sock.on('data', (d) => (data += d));
        sock.on('close', () => resolve(data));
        sock.on('error', reject);
        setTimeout(() => sock.destroy(new Error('server never cut the slow client off')), 10_000);
      });
      assert.match(reply, /^HTTP\/1\.1 408 /);
      assert.ok(Date.now() - started >= 700, 'not cut off before the deadline');
    } finally {
      await s2.stop();
      tmp2.cleanup();
    }
  });

  it('runs a threaded route off the event loop: a sleeping plugin does not delay other routes', async () => {
    const order: string[] = [];
    // Two workers: occupy both with a slow threaded call each (keep-alive off so they spread).
    const slow = [0, 1].map(() => send(server.port, '/threaded', { headers: { 'x-slow': '1500' }, agent: false }).then((r) => { order.push('slow'); return r; }));
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < 10; i++) {
      const r = await send(server.port, '/', { agent: false });
      assert.equal(r.status, 200);
    }
    order.push('fast');
    const done = await Promise.all(slow);
    for (const r of done) assert.equal(r.body, 'i am slow');
    assert.deepEqual(order, ['fast', 'slow', 'slow']);
  });
});
