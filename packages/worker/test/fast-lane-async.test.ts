/**
 * Threaded native routes and WASM routes through the fast lane (laneHandle,
 * answered later through a LaneResponse) against node:http (--no-fast-lane):
 * the same plugins, compiled here as .so and as .wasm, and the same requests
 * get the same bytes back (Date aside), the same access-log fields and the
 * same metrics; a slow answer holds pipelined requests back in order; a
 * client that leaves mid-call is logged 499; timeouts answer 504 (a threaded
 * one retires its worker); a full queue answers 503; a graceful stop lets a
 * call in flight finish.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compilePlugin, compileWasm, eventually, exampleSource, fixture, RawConnection, responseBody, responseStatus, scrape, startFlexilib, tempDir, writeConfig, type Flexilib, type Scrape } from '@flexilib/test-support';

const get = (target: string, headers: string[] = []) => `GET ${target} HTTP/1.1\r\nHost: test\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`;
/** The Date header differs by the second: compare everything else. */
const undated = (b: Buffer) => b.toString('latin1').replace(/\r\nDate: [^\r]*/, '\r\nDate: -');

/** Routes: threaded native (shapes, example) and WASM (the same two sources). */
const ROUTES = ['/t/shape', '/t/ex', '/w/shape', '/w/ex'];

describe('fast lane: threaded native and WASM routes', () => {
  const tmp = tempDir();
  let lane: Flexilib;
  let plain: Flexilib;
  let config: string;

  before(async () => {
    const file = (n: string) => path.join(tmp.dir, n);
    await Promise.all([
      compilePlugin(fixture('shapes.c'), file('shapes.so')),
      compilePlugin(exampleSource, file('example.so')),
      compileWasm(fixture('shapes.c'), file('shapes.wasm')),
      compileWasm(exampleSource, file('example.wasm')),
    ]);
    config = writeConfig(
      tmp.dir,
      [
        '/t/shape = shapes.so',
        '/t/ex = example.so',
        '/t/one = example.so',
        '/w/shape = shapes.wasm',
        '/w/ex = example.wasm',
        '/w/one = example.wasm',
        '',
        '[route /t/shape]',
        'mode = threaded',
        'threads = 2',
        '[route /t/ex]',
        'mode = threaded',
        '[route /t/one]',
        'mode = threaded',
        'threads = 1',
        '[route /w/one]',
        'instances = 1',
      ].join('\n'),
    );
    [lane, plain] = await Promise.all([startFlexilib({ config, workers: 1 }), startFlexilib({ config, workers: 1, args: ['--no-fast-lane'] })]);
  });

  after(async () => {
    const codes = await Promise.all([lane?.stop(), plain?.stop()]);
    tmp.cleanup();
    assert.deepEqual(codes, [0, 0]);
  });

  /** Send `requests` to both servers, one write each, on one connection; the answers, raw. */
  async function both(requests: string[], one = false, timeoutMs = 20_000): Promise<[Buffer[], Buffer[]]> {
    const run = async (f: Flexilib) => {
      const c = new RawConnection(f.port);
      const out: Buffer[] = [];
      if (one) {
        c.write(requests.join(''));
        out.push(...(await c.responses(requests.length, [], timeoutMs)));
      } else {
        for (const r of requests) {
          c.write(r);
          out.push(...(await c.responses(1, [], timeoutMs)));
        }
      }
      c.close();
      return out;
    };
    return Promise.all([run(lane), run(plain)]);
  }

  it('answers byte for byte as node:http does: statuses, reasons, headers, bodies, refusals', async () => {
    const shapes = (p: string) => [
      get(p),
      get(p, ['Connection: keep-alive']),
      `DELETE ${p} HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n`,
      get(p, ['x-set-status: 204']),
      get(p, ['x-set-status: 304']),
      get(p, ['x-set-status: 299', 'x-reason: Very Fine']),
      get(p, ['x-set-status: 1000']),
      get(p, ['x-set-status: 99']),
      get(p, ['x-add-1: Date: Mon, 01 Jan 2024 00:00:00 GMT']),
      get(p, ['x-add-1: Keep-Alive: timeout=99', 'x-add-2: X-Two: 2']),
      get(p, ['x-add-1: Content-Type: application/json', 'x-add-2: X-Latin: caf\xe9']),
      get(p, ['x-add-1: Bad Name: x']),
      get(p, ['x-add-1: X-Empty:', 'x-add-2: : v']),
      get(p, ['x-body-size: 0']),
      get(p, ['x-body-size: 20480']),
      get(p, ['x-body-size: 307200']),
    ];
    const examples = (p: string) => [get(p), get(p, ['x-status: 418']), get(p, ['x-throw: 1']), get(p, ['x-log-this: hi']), get(`${p}/echo?q=1`)];
    for (const [i, requests] of [shapes('/t/shape'), examples('/t/ex'), shapes('/w/shape'), examples('/w/ex')].entries()) {
      const [fast, slow] = await both(requests);
      for (let k = 0; k < requests.length; k++) assert.equal(undated(fast[k]), undated(slow[k]), `${ROUTES[i]} request ${k}: ${JSON.stringify(requests[k])}`);
      if (i % 2 === 0) {
        assert.deepEqual([3, 4, 6, 7, 11, 12].map((k) => responseStatus(fast[k])), [204, 304, 502, 502, 502, 502]);
        assert.match(responseBody(fast[6]).toString(), new RegExp(`^plugin for route "${ROUTES[i]}" produced an invalid response: `));
        assert.equal(responseBody(fast[15]).length, 307200);
        assert.equal(responseBody(fast[15]).subarray(0, 28).toString(), 'abcdefghijklmnopqrstuvwxyzab');
      } else {
        assert.deepEqual(fast.map(responseStatus), [200, 418, 500, 200, 200]);
      }
    }
  });

  it('answers pipelined requests in order behind a slow answer, as node:http does', async () => {
    for (const p of ['/t', '/w']) {
      const requests = [get(`${p}/ex`, ['x-slow: 300']), get(`${p}/shape`, ['x-body-size: 20480']), get(`${p}/ex/echo?n=2`), get(`${p}/shape`, ['x-set-status: 204']), get(`${p}/ex`)];
      const [fast, slow] = await both(requests, true);
      for (let k = 0; k < requests.length; k++) assert.equal(undated(fast[k]), undated(slow[k]), `${p} pipelined request ${k}`);
      assert.equal(responseBody(fast[0]).toString(), 'i am slow');
    }
  });

  it('queues calls past the threads or instances with their own requests, and answers 503 beyond the queue', { timeout: 120_000 }, async () => {
    // One thread (one instance) held by a slow call: the next 1024 calls queue, each
    // on a connection of its own (the lane answers a connection's requests in turn),
    // and the 1026th is refused at once. Each queued call answers its own request.
    for (const p of ['/t/one', '/w/one']) {
      const refusals: Buffer[] = [];
      for (const f of [lane, plain]) {
        const holder = new RawConnection(f.port);
        holder.write(get(p, ['x-slow: 2500']));
        // The slow call has its thread (instance) once a request to another route comes back.
        await eventually(`${p} busy`, async () => ((await scrape(f.adminPort)).sum('flexilib_requests_in_flight') >= 1 ? true : undefined));
        const queued = Array.from({ length: 1024 }, () => new RawConnection(f.port));
        queued.forEach((c, i) => c.write(get(`${p}?i=${i}`, [`x-log-this: q${i}`])));
        await eventually(`${p}: 1025 calls in flight`, async () => ((await scrape(f.adminPort)).sum('flexilib_requests_in_flight') >= 1025 ? true : undefined), 30_000);
        const extra = new RawConnection(f.port);
        extra.write(get(`${p}?i=extra`));
        refusals.push((await extra.responses(1))[0]);
        extra.close();
        assert.equal(responseBody((await holder.responses(1, [], 30_000))[0]).toString(), 'i am slow');
        holder.close();
        const answers = await Promise.all(queued.map((c) => c.responses(1, [], 60_000)));
        // The example's body: x-log-this, then the request's header count.
        answers.forEach(([r], i) => assert.equal(responseBody(r).toString(), `q${i} 2`, `${p} queued call ${i}`));
        for (const c of queued) c.close();
      }
      assert.equal(undated(refusals[0]), undated(refusals[1]), `${p}: the 503`);
      assert.equal(responseStatus(refusals[0]), 503);
      assert.match(refusals[0].toString('latin1'), /\r\nretry-after: 1\r\n/);
    }
  });

  it('logs a client that leaves mid-call as 499, and serves on', async () => {
    for (const p of ['/t/ex', '/w/ex']) {
      for (const f of [lane, plain]) {
        const target = `${p}?gone=${f === lane ? 'lane' : 'plain'}`;
        const c = new RawConnection(f.port);
        c.write(get(target, ['x-slow: 2000']));
        await eventually('the call in flight', async () => ((await scrape(f.adminPort)).sum('flexilib_requests_in_flight') >= 1 ? true : undefined));
        c.close();
        const line = await eventually('the access line', () => f.logs.find((l) => l.kind === 'access' && l.target === target), 5000);
        assert.equal(line.status, 499, `${target}`);
        const d = new RawConnection(f.port);
        d.write(get(p));
        assert.equal(responseStatus((await d.responses(1))[0]), 200);
        d.close();
      }
    }
  });

  it('logs lane requests with the same fields as node:http requests', async () => {
    for (const p of ['/t/shape', '/w/shape']) {
      const lines = [];
      for (const f of [lane, plain]) {
        const target = `${p}?log=${f === lane ? 'lane' : 'plain'}`;
        const c = new RawConnection(f.port);
        c.write(get(target, ['x-body-size: 123']));
        await c.responses(1);
        c.close();
        lines.push(await eventually('the access line', () => f.logs.find((l) => l.kind === 'access' && l.target === target), 5000));
      }
      const fields = (l: Record<string, unknown>) => ({ method: l.method, httpVersion: l.httpVersion, route: l.route, status: l.status, bytes: l.bytes, preAlloc: l.preAlloc, alloc: l.alloc });
      assert.deepEqual(fields(lines[0]), fields(lines[1]));
      assert.deepEqual(fields(lines[0]), { method: 'GET', httpVersion: '1.1', route: p, status: 200, bytes: 123, preAlloc: 8192, alloc: 0 });
      assert.ok((lines[0].ttlbMs as number) >= (lines[0].ttfbMs as number));
    }
  });

  it('served all of it through the lane, and counts it exactly as node:http does', async () => {
    // Both servers got the same requests from every test above: the same counts.
    const series = (s: Scrape) =>
      s.samples
        .filter((x) => ['flexilib_requests_total', 'flexilib_response_bytes_total', 'flexilib_errors_total', 'flexilib_arena_overflow_requests_total', 'flexilib_request_duration_seconds_count'].includes(x.name))
        .filter((x) => x.labels.route?.startsWith('/t/') || x.labels.route?.startsWith('/w/'))
        .filter((x) => x.value !== 0)
        .map((x) => `${x.name}${JSON.stringify(x.labels)} ${x.value}`)
        .sort();
    const [a, b] = await eventually('nothing in flight', async () => {
      const pair = await Promise.all([scrape(lane.adminPort), scrape(plain.adminPort)]);
      return pair.every((s) => s.sum('flexilib_requests_in_flight') === 0) ? pair : undefined;
    });
    assert.deepEqual(series(a), series(b));
    assert.ok(series(a).some((x) => x.includes('FLX_PLUGIN_BAD_RESPONSE')), 'the 502s were counted by code');
    assert.ok(series(a).some((x) => x.includes('FLX_PLUGIN_BUSY')), 'the 503s were counted by code');
    for (const route of ['/t/shape', '/t/ex', '/t/one', '/w/shape', '/w/ex', '/w/one']) {
      assert.equal(a.sum('flexilib_fast_lane_requests_total', { route }), a.sum('flexilib_requests_total', { route }), `${route}: every request went through the lane`);
    }
    assert.equal(b.sum('flexilib_fast_lane_requests_total'), 0);
  });
});

describe('fast lane: timeouts and stops of threaded native and WASM calls', () => {
  const tmp = tempDir();
  let config: string;

  before(async () => {
    const file = (n: string) => path.join(tmp.dir, n);
    await Promise.all([compilePlugin(exampleSource, file('example.so')), compileWasm(exampleSource, file('example.wasm'))]);
    // /t and /w time out; /ts and /ws (for the stop) do not.
    config = writeConfig(
      tmp.dir,
      ['/ts = example.so', '/ws = example.wasm', '/t = example.so', '/w = example.wasm', '', '[route /t]', 'mode = threaded', 'timeout = 500ms', '[route /w]', 'timeout = 500ms', '[route /ts]', 'mode = threaded'].join('\n'),
    );
  });

  after(() => tmp.cleanup());

  it('answers 504 past the timeout as node:http does; a stuck thread retires its worker', { timeout: 60_000 }, async () => {
    const servers = await Promise.all([startFlexilib({ config, workers: 1 }), startFlexilib({ config, workers: 1, args: ['--no-fast-lane'] })]);
    try {
      const answers: Buffer[][] = [];
      for (const f of servers) {
        const c = new RawConnection(f.port);
        // WASM first: its instance is stopped, the worker stays.
        c.write(get('/w', ['x-slow: 3000']));
        const [w] = await c.responses(1);
        c.write(get('/w'));
        const [after] = await c.responses(1);
        c.write(get('/t', ['x-slow: 3000']));
        const [t] = await c.responses(1);
        answers.push([w, after, t]);
        c.close();
        const retired = await f.waitForLog((l) => l.event === 'worker-retire', { timeoutMs: 10_000 });
        assert.ok(retired, 'the worker with a stuck thread asked to be replaced');
      }
      const [fast, slow] = answers;
      for (let k = 0; k < 3; k++) assert.equal(undated(fast[k]), undated(slow[k]), `answer ${k}`);
      assert.deepEqual(fast.map(responseStatus), [504, 200, 504]);
      assert.match(fast[0].toString('latin1'), /\r\nx-flexilib-error: FLX_WASM_TIMEOUT\r\n/);
      assert.match(fast[2].toString('latin1'), /\r\nx-flexilib-error: FLX_PLUGIN_TIMEOUT\r\n/);
      assert.match(responseBody(fast[2]).toString(), /^route "\/t": library .*example\.so did not answer within 500 ms\n$/);
    } finally {
      await Promise.all(servers.map((f) => f.kill()));
    }
  });

  it('counts a connection idle from the end of a slow answer, not from its request', { timeout: 60_000 }, async () => {
    // --keep-alive-timeout 1000: the lane closes an idle connection after 2 s (node:http's
    // second of grace). A 5 s call outlasts that twice; its connection must still be open
    // 1.2 s after the answer, as node:http's would be (its timer counts the answer's writes).
    const f = await startFlexilib({ config, workers: 1, args: ['--keep-alive-timeout', '1000'] });
    try {
      const c = new RawConnection(f.port);
      // A first answer: from then on the connection idles with the keep-alive timeout.
      c.write(get('/ts'));
      assert.equal(responseStatus((await c.responses(1))[0]), 200);
      c.write(get('/ts', ['x-slow: 5000']));
      const [slow] = await c.responses(1, [], 20_000);
      assert.equal(responseStatus(slow), 200);
      assert.equal(responseBody(slow).toString(), 'i am slow');
      await new Promise((r) => setTimeout(r, 1200));
      assert.equal(c.ended, false, 'still open 1.2 s after the answer');
      c.write(get('/ts'));
      const [next] = await c.responses(1);
      assert.equal(responseStatus(next), 200);
      // And idle, it is closed by the server after the keep-alive timeout.
      await Promise.race([c.closed, new Promise((_, reject) => setTimeout(() => reject(new Error('the idle connection was not closed')), 8000))]);
      assert.ok(c.ended, 'closed with a FIN from the server');
    } finally {
      await f.kill();
    }
  });

  it('lets a call in flight finish on a graceful stop, with Connection: close', { timeout: 60_000 }, async () => {
    for (const p of ['/ts', '/ws']) {
      const answers: Buffer[] = [];
      for (const args of [[], ['--no-fast-lane']]) {
        const f = await startFlexilib({ config, workers: 1, args });
        try {
          // Loaded (and an instance started) first, so the stop meets a call, not a load.
          const warm = new RawConnection(f.port);
          warm.write(get(p));
          await warm.responses(1);
          warm.close();
          const c = new RawConnection(f.port);
          // Long enough for the stop to reach the worker while the call runs.
          c.write(get(p, ['x-slow: 2000']));
          await eventually('the call in flight', async () => ((await scrape(f.adminPort)).sum('flexilib_requests_in_flight') >= 1 ? true : undefined));
          const stopped = f.stop();
          const [r] = await c.responses(1);
          answers.push(r);
          await c.closed;
          assert.equal(await stopped, 0);
        } finally {
          await f.kill();
        }
      }
      assert.equal(undated(answers[0]), undated(answers[1]), p);
      assert.equal(responseBody(answers[0]).toString(), 'i am slow');
      assert.match(answers[0].toString('latin1'), /\r\nConnection: close\r\n/);
    }
  });
});
