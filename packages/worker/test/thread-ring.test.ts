/**
 * Threaded routes on their own threads (native/thread-ring.ts, c/thread-ring.c),
 * through the fast lane and through node:http (--no-fast-lane): calls of a
 * blocking plugin run in parallel and each gets its own answer; a burst far
 * larger than the ring queues and is answered in full; a call past its
 * timeout answers 504 while the route's other calls go on; the calls of a
 * burst behind one that blocks are answered by the route's other thread (a
 * route of slow calls: the 8 blocking calls; of fast ones: the burst); no more calls run
 * at once than the route has threads, the rest waiting in the ring; a reload while
 * calls are in flight lets them finish on the old code while new calls get
 * the new one. (A plugin that segfaults on a ring thread: crash.test.ts.)
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compilePlugin, eventually, fixture, RawConnection, request, responseBody, responseStatus, scrape, startFlexilib, tempDir, writeConfig, type Flexilib } from '@flexilib/test-support';
import { FlexiError } from '@flexilib/contract';
import { Library } from '../src/native/library.js';
import { Slot } from '../src/native/slot.js';
import { ThreadRing } from '../src/native/thread-ring.js';

describe('thread ring helper', () => {
  it('refuses to make a ring without its helper, naming the file', () => {
    const missing = path.join(import.meta.dirname, 'no-such-dir', 'thread-ring.so');
    assert.throws(
      () => new ThreadRing(4, () => {}, missing),
      (err: unknown) => err instanceof FlexiError && err.code === 'FLX_THREAD_RING_HELPER' && err.message.includes(missing) && err.message.includes('pnpm build'),
    );
  });
});

describe('a thread ring of two threads, calls submitted directly', () => {
  const tmp = tempDir('thread-ring-unit');
  after(() => tmp.cleanup());

  it('runs the calls of a burst behind one that blocks, on a ring whose calls so far were fast: the watchdog wakes the other thread', async () => {
    const lib = new Library(await compilePlugin(fixture('ring.c'), path.join(tmp.dir, 'ring.so')));
    const version = lib.acquire();
    const target = version.handleRequest.target;
    const slots = Array.from({ length: 8 }, () => new Slot(8192, 16384));
    const done = new Map<number, string>();
    let changed = () => {};
    // The helper pnpm build made (this test runs the TypeScript sources).
    const helper = path.join(import.meta.dirname, '..', 'dist', 'native', 'thread-ring.so');
    const ring = new ThreadRing(
      8,
      (i, rc) => {
        done.set(i, `${rc} ${slots[i].readResponse().body.toString()}`);
        changed();
      },
      helper,
    );
    const finished = (want: number[], ms: number) =>
      new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`calls ${want.filter((i) => !done.has(i)).join(', ')} not done within ${ms} ms`)), ms);
        changed = () => {
          if (!want.every((i) => done.has(i))) return;
          clearTimeout(t);
          resolve();
        };
        changed();
      });
    const submit = (i: number, url: string, headers: string[] = []) => {
      slots[i].fillRequest({ method: 'GET', url, rawHeaders: ['Host', 'x', ...headers], httpVersionMajor: 1, httpVersionMinor: 1, socket: {} }, null);
      slots[i].resetResponse();
      ring.submit(i, target);
    };
    const gate = path.join(tmp.dir, 'gate');
    mkdirSync(gate);
    try {
      slots.forEach((slot, i) => ring.describe(i, slot.req.ptr, slot.resp.ptr));
      ring.ensureThreads(2);
      // A fast call first: the ring's last call was fast, so a thread taking a call does not wake the other itself.
      submit(0, '/warm');
      await finished([0], 20_000);
      // Both threads asleep again before the burst: the one woken for it takes descriptor 1, the blocking call, first.
      await new Promise((r) => setTimeout(r, 100));
      submit(1, '/gated', ['x-gate', gate]);
      for (let i = 2; i < 8; i++) submit(i, `/f${i}`);
      await finished([2, 3, 4, 5, 6, 7], 20_000);
      assert.deepEqual([2, 3, 4, 5, 6, 7].map((i) => done.get(i)), [2, 3, 4, 5, 6, 7].map((i) => `0 v1 /f${i}`));
      assert.ok(existsSync(path.join(gate, 'entered')) && !done.has(1), 'the gated call holds its thread');
      writeFileSync(path.join(gate, 'open'), '');
      await finished([1], 20_000);
      assert.equal(done.get(1), '0 v1 opened');
    } finally {
      writeFileSync(path.join(gate, 'open'), '');
      await finished([1], 20_000).catch(() => {});
      ring.close();
      for (const slot of slots) slot.close();
      version.release();
      lib.close();
    }
  });
});

describe('threaded routes on the thread ring', () => {
  const tmp = tempDir('thread-ring');
  const file = (n: string) => path.join(tmp.dir, n);
  let lane: Flexilib;
  let plain: Flexilib;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  before(async () => {
    await Promise.all([
      compilePlugin(fixture('ring.c'), file('ring-v1.so'), { defines: ['VERSION="v1"'] }),
      compilePlugin(fixture('ring.c'), file('ring-v2.so'), { defines: ['VERSION="v2"'] }),
    ]);
    copyFileSync(file('ring-v1.so'), file('ring.so'));
    copyFileSync(file('ring-v1.so'), file('ring-reload.so'));
    const config = writeConfig(
      tmp.dir,
      [
        '/wide = ring.so',
        '/narrow = ring.so',
        '/late = ring.so',
        '/reload = ring-reload.so',
        '',
        '[route /wide]',
        'mode = threaded',
        'threads = 8',
        '[route /narrow]',
        'mode = threaded',
        'threads = 2',
        '[route /late]',
        'mode = threaded',
        'threads = 2',
        'timeout = 1s',
        '[route /reload]',
        'mode = threaded',
        'threads = 4',
      ].join('\n'),
    );
    [lane, plain] = await Promise.all([startFlexilib({ config, workers: 1 }), startFlexilib({ config, workers: 1, args: ['--no-fast-lane'] })]);
  });

  after(async () => {
    agent.destroy();
    const codes = await Promise.all([lane?.stop(), plain?.stop()]);
    tmp.cleanup();
    assert.deepEqual(codes, [0, 0]);
  });

  const servers = () => [
    ['fast lane', lane],
    ['node:http', plain],
  ] as const;

  it('runs 8 blocking calls of one route at once, each answered with its own result', async () => {
    for (const [name, server] of servers()) {
      // Each call waits in the plugin until 8 are in: only 8 threads running together can all answer "met".
      const replies = await Promise.all(Array.from({ length: 8 }, () => request(server.port, '/wide', { headers: { 'x-meet': '8' }, agent, timeoutMs: 30_000 })));
      assert.deepEqual(replies.map((r) => `${r.status} ${r.body}`), Array(8).fill('200 v1 met 8'), name);
    }
  });

  it('answers a burst of 300 calls (a ring of 18 descriptors, 2 threads) each with its own request', async () => {
    for (const [name, server] of servers()) {
      const targets = Array.from({ length: 300 }, (_, i) => `/narrow?n=${i}`);
      const replies = await Promise.all(targets.map((t) => request(server.port, t, { agent, timeoutMs: 30_000 })));
      assert.deepEqual(replies.map((r) => `${r.status} ${r.body}`), targets.map((t) => `200 v1 ${t}`), name);
    }
  });

  it('runs no more calls at once than the route has threads; calls beyond them wait in the ring for a thread to free', async () => {
    for (const [name, server] of servers()) {
      const gates = Array.from({ length: 3 }, (_, i) => {
        const g = file(`bound-${server === lane ? 'lane' : 'plain'}-${i}`);
        mkdirSync(g);
        return g;
      });
      const calls = gates.map((g) => request(server.port, '/narrow', { headers: { 'x-gate': g }, agent, timeoutMs: 60_000 }));
      const entered = () => gates.filter((g) => existsSync(path.join(g, 'entered')));
      await eventually(`${name}: two calls in the plugin`, () => (entered().length === 2 ? true : undefined), 20_000);
      await eventually(`${name}: 3 calls in flight`, async () => ((await scrape(server.adminPort)).sum('flexilib_requests_in_flight') >= 3 ? true : undefined), 20_000);
      // Both threads are held: the third call, submitted to a descriptor of its own, must wait.
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(entered().length, 2, `${name}: a third call ran beside the route's 2 threads`);
      writeFileSync(path.join(entered()[0], 'open'), '');
      await eventually(`${name}: the freed thread took the third call`, () => (entered().length === 3 ? true : undefined), 20_000);
      for (const g of gates) writeFileSync(path.join(g, 'open'), '');
      const replies = await Promise.all(calls);
      assert.deepEqual(replies.map((r) => `${r.status} ${r.body}`), Array(3).fill('200 v1 opened'), name);
    }
  });

  it('answers the fast calls of a burst whose first call blocks, on a route whose calls so far were fast (the ring-level test above pins down the watchdog)', async () => {
    for (const [name, server] of servers()) {
      const gate = file(`burst-${server === lane ? 'lane' : 'plain'}`);
      mkdirSync(gate);
      // The route's last calls fast: a thread taking a call does not wake another for the calls behind it (c/thread-ring.c SLOW_NS).
      for (let i = 0; i < 20; i++) assert.equal((await request(server.port, `/narrow?warm=${i}`, { agent })).body, `v1 /narrow?warm=${i}`, name);
      // Connected first, then written in one tick: the event loop reads them in one round, and
      // the one thread woken for that round's burst meets the blocking call first.
      const conns = Array.from({ length: 13 }, () => new RawConnection(server.port));
      await Promise.all(conns.map((c) => new Promise<void>((resolve, reject) => c.sock.once('connect', resolve).once('error', reject))));
      try {
        conns[0].write(`GET /narrow HTTP/1.1\r\nHost: x\r\nx-gate: ${gate}\r\n\r\n`);
        for (let i = 1; i < conns.length; i++) conns[i].write(`GET /narrow?f=${i} HTTP/1.1\r\nHost: x\r\n\r\n`);
        const fast = await Promise.all(conns.slice(1).map(async (c) => (await c.responses(1, [], 20_000))[0]));
        assert.deepEqual(
          fast.map((r) => `${responseStatus(r)} ${responseBody(r).toString()}`),
          conns.slice(1).map((_, i) => `200 v1 /narrow?f=${i + 1}`),
          name,
        );
        // All of them answered while the blocking call holds (or is about to hold) its thread: the gate is shut.
        await eventually(`${name}: the gated call in the plugin`, () => (existsSync(path.join(gate, 'entered')) ? true : undefined), 20_000);
        writeFileSync(path.join(gate, 'open'), '');
        const [slow] = await conns[0].responses(1, [], 20_000);
        assert.equal(`${responseStatus(slow)} ${responseBody(slow).toString()}`, '200 v1 opened', name);
      } finally {
        writeFileSync(path.join(gate, 'open'), '');
        for (const c of conns) c.close();
      }
    }
  });

  it('answers 504 to a call past its timeout while the route goes on serving', async () => {
    for (const [name, server] of servers()) {
      const stuck = request(server.port, '/late', { headers: { 'x-stuck': '1' }, timeoutMs: 20_000 });
      // The other thread of the route keeps answering while the stuck call holds one.
      const during = await Promise.all(Array.from({ length: 20 }, (_, i) => request(server.port, `/late?d=${i}`)));
      assert.deepEqual(during.map((r) => r.body), Array.from({ length: 20 }, (_, i) => `v1 /late?d=${i}`), name);
      const r = await stuck;
      assert.equal(r.status, 504, name);
      assert.equal(r.headers['x-flexilib-error'], 'FLX_PLUGIN_TIMEOUT', name);
      assert.match(r.body, /^route "\/late": library .*ring\.so did not answer within 1000 ms/, name);
      // The stuck thread is written off and its worker replaced (threaded-timeout.test.ts has the
      // details): once the old worker is gone, the route answers from the new one.
      const retired = await server.waitForLog((l) => l.event === 'worker-retire', { timeoutMs: 20_000 });
      await server.waitForLog((l) => l.event === 'worker-exit' && l.workerPid === retired.workerPid, { timeoutMs: 20_000 });
      const next = await Promise.all(Array.from({ length: 4 }, (_, i) => request(server.port, `/late?a=${i}`)));
      assert.deepEqual(next.map((x) => `${x.status} ${x.body}`), Array.from({ length: 4 }, (_, i) => `200 v1 /late?a=${i}`), name);
    }
  });

  it('lets calls in flight finish on the old version across a reload; new calls get the new one', async () => {
    const gate = file('gate');
    mkdirSync(gate);
    const inFlight = servers().map(([, server]) =>
      Array.from({ length: 3 }, () => request(server.port, '/reload', { headers: { 'x-gate': gate }, timeoutMs: 60_000 })),
    );
    await eventually('the gated calls entered the plugin', () => (existsSync(path.join(gate, 'entered')) ? true : undefined), 20_000);
    for (const [name, server] of servers()) {
      await eventually(`${name}: 3 calls in flight`, async () => ((await scrape(server.adminPort)).sum('flexilib_requests_in_flight') >= 3 ? true : undefined), 20_000);
    }
    copyFileSync(file('ring-v2.so'), file('.ring-reload.tmp'));
    renameSync(file('.ring-reload.tmp'), file('ring-reload.so'));
    for (const [name, server] of servers()) {
      await eventually(`${name}: the new version answers`, async () => ((await request(server.port, '/reload?x')).body === 'v2 /reload?x' ? true : undefined), 20_000);
    }
    writeFileSync(path.join(gate, 'open'), '');
    for (const [i, [name]] of servers().entries()) {
      const replies = await Promise.all(inFlight[i]);
      assert.deepEqual(replies.map((r) => `${r.status} ${r.body}`), Array(3).fill('200 v1 opened'), name);
    }
  });
});
