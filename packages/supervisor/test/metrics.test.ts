/**
 * GET /metrics on the admin listener: a real scrape passes `promtool check
 * metrics`, and totals across two workers are exact — also after a worker
 * that served requests is killed with SIGKILL.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DURATION_BUCKETS } from '@flexilib/contract/metrics-layout';
import { compilePlugin, eventually, fixture, type Flexilib, freePort, rawRequest, request, startFlexilib, tempDir, writeConfig } from '@flexilib/test-support';
import { promtoolCheck, scrape, type Scrape } from '@flexilib/test-support';

const tmp = tempDir('metrics');
let lib: string;
let config: string;

before(async () => {
  lib = await compilePlugin(fixture('metrics_plugin.c'), path.join(tmp.dir, 'libmetrics_plugin.so'));
  config = writeConfig(tmp.dir, [`/missing = ${path.join(tmp.dir, 'no-such-lib.so')}`, `/app = ${lib}`, ''].join('\n'));
});
after(() => tmp.cleanup());

/** Scrape until flexilib_requests_total sums to `n` (a response reaches the client a moment before its worker counts it). */
async function scrapeWhenTotal(f: Flexilib, n: number): Promise<Scrape> {
  let last = -1;
  try {
    return await eventually(`flexilib_requests_total == ${n}`, async () => {
      const s = await scrape(f.adminPort);
      last = s.sum('flexilib_requests_total');
      assert.ok(last <= n, `flexilib_requests_total is ${last}, more than the ${n} requests sent`);
      return last === n ? s : undefined;
    }, 5000);
  } catch (err) {
    throw new Error(`${(err as Error).message} (last seen: ${last})`);
  }
}

describe('metrics across two workers', () => {
  let f: Flexilib;
  before(async () => {
    f = await startFlexilib({ config, workers: 2 });
  });
  after(async () => {
    await f.stop();
  });

  test('totals are exact by route, kind and status class; histogram, bytes and arena overflow agree', async () => {
    const pids = new Map<string, number>();
    let bodyBytes = 0;
    const N_OK = 40;
    for (let i = 0; i < N_OK; i++) {
      const r = await request(f.port, `/app/${i}`);
      assert.equal(r.status, 200);
      pids.set(r.body, (pids.get(r.body) ?? 0) + 1);
      bodyBytes += Buffer.byteLength(r.body);
    }
    assert.equal(pids.size, 2, `both workers should have served requests: ${JSON.stringify([...pids])}`);
    for (let i = 0; i < 3; i++) {
      const r = await request(f.port, '/app/teapot', { headers: { 'x-status': '418' } });
      assert.equal(r.status, 418);
      bodyBytes += Buffer.byteLength(r.body);
    }
    for (let i = 0; i < 2; i++) {
      const r = await request(f.port, '/app/big', { headers: { 'x-alloc': '100000' } });
      assert.equal(r.status, 200);
      bodyBytes += Buffer.byteLength(r.body);
    }
    for (let i = 0; i < 4; i++) assert.equal((await request(f.port, '/nowhere')).status, 404);
    for (let i = 0; i < 5; i++) assert.equal((await request(f.port, '/missing')).status, 502);
    const total = N_OK + 3 + 2 + 4 + 5;

    const s = await scrapeWhenTotal(f, total);
    assert.equal(s.sum('flexilib_requests_total', { route: '/app', kind: 'native', status: '2xx' }), N_OK + 2);
    assert.equal(s.sum('flexilib_requests_total', { route: '/app', kind: 'native', status: '4xx' }), 3);
    assert.equal(s.sum('flexilib_requests_total', { route: '(none)', kind: 'none', status: '4xx' }), 4);
    assert.equal(s.sum('flexilib_requests_total', { route: '/missing', kind: 'native', status: '5xx' }), 5);
    assert.equal(s.sum('flexilib_requests_total', { status: 'aborted' }), 0);

    // The histogram counts every request once; its buckets are cumulative and end at the count.
    assert.equal(s.sum('flexilib_request_duration_seconds_count'), total);
    const buckets = s.series('flexilib_request_duration_seconds_bucket').filter((x) => x.labels.route === '/app');
    assert.equal(buckets.length, DURATION_BUCKETS.length + 1);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i].value >= buckets[i - 1].value, 'buckets are cumulative');
    assert.equal(buckets.at(-1)!.labels.le, '+Inf');
    assert.equal(buckets.at(-1)!.value, N_OK + 5);
    assert.ok(s.sum('flexilib_request_duration_seconds_sum', { route: '/app' }) > 0);

    assert.equal(s.sum('flexilib_response_bytes_total', { route: '/app' }), bodyBytes);

    // Arena overflow: exactly the two x-alloc requests, and the bytes the access log reported.
    assert.equal(s.sum('flexilib_arena_overflow_requests_total', { route: '/app' }), 2);
    // Access lines may wait a few milliseconds for their batch (line-writer.ts): until both x-alloc lines are in.
    const allocLogged = await eventually('the x-alloc access lines', () => {
      const sum = f.logs.filter((l) => l.kind === 'access' && l.route === '/app').reduce((a, l) => a + (l.alloc as number), 0);
      return sum >= 200_000 ? sum : undefined;
    });
    assert.equal(s.sum('flexilib_arena_overflow_bytes_total', { route: '/app' }), allocLogged);

    // Libraries: /app loaded once per worker; /missing failed once per load attempt (logged
    // each), not once per request: requests answer the last failure while the worker backs off.
    assert.equal(s.sum('flexilib_library_loads_total', { library: lib }), 2);
    const attempts = f.logs.filter((l) => l.msg === 'library unavailable' && l.route === '/missing').length;
    assert.ok(attempts >= 1, 'the failed load was logged');
    assert.equal(s.sum('flexilib_library_load_failures_total', { library: path.join(tmp.dir, 'no-such-lib.so') }), attempts);
    assert.equal(s.sum('flexilib_requests_in_flight'), 0);
    // Two serving workers and the default spare (--spare-workers 1), which listens only after a death.
    assert.equal(s.sum('flexilib_workers'), 3);
    assert.equal(s.sum('flexilib_workers_listening'), 2);

    // Route labels are proxy.ini keys, never raw paths.
    const routes = new Set(s.series('flexilib_requests_total').map((x) => x.labels.route));
    assert.deepEqual([...routes].sort(), ['(none)', '/app', '/missing']);
  });

  test('promtool check metrics passes on a real scrape', async () => {
    const s = await scrape(f.adminPort);
    assert.ok(s.sum('flexilib_requests_total') > 0, 'the scrape should carry traffic');
    assert.ok(s.series('process_cpu_user_seconds_total').length === 1, 'default process metrics are present');
    promtoolCheck(s.text);
  });

  test('totals survive a worker killed with SIGKILL and keep counting', async () => {
    const before = (await scrape(f.adminPort)).sum('flexilib_requests_total');
    // Find the pid of a worker that served some of these requests.
    const served = new Map<number, number>();
    for (let i = 0; i < 20; i++) {
      const r = await request(f.port, '/app/k');
      const pid = Number(/^pid=(\d+)/.exec(r.body)![1]);
      served.set(pid, (served.get(pid) ?? 0) + 1);
    }
    await scrapeWhenTotal(f, before + 20);
    const [victim, victimCount] = [...served].sort((a, b) => b[1] - a[1])[0];
    assert.ok(victimCount > 0);
    const restartsBefore = (await scrape(f.adminPort)).sum('flexilib_worker_restarts_total');

    process.kill(victim, 'SIGKILL');
    await f.waitForLog((l) => l.event === 'worker-listening' && (l.replaces as { pid: number } | undefined)?.pid === victim, { what: 'the replacement worker' });
    const exit = await f.waitForLog((l) => l.event === 'worker-exit' && l.workerPid === victim, { what: 'the exit event' });
    assert.equal(exit.signal, 'SIGKILL');
    assert.equal(exit.reason, 'killed');
    await eventually('two workers listening again', async () => ((await scrape(f.adminPort)).sum('flexilib_workers_listening') === 2 ? true : undefined));

    const s = await scrape(f.adminPort);
    assert.equal(s.sum('flexilib_requests_total'), before + 20, 'what the killed worker counted stays in the total');
    assert.equal(s.sum('flexilib_worker_restarts_total'), restartsBefore + 1);
    assert.equal(s.sum('flexilib_worker_exits_total', { reason: 'killed', signal: 'SIGKILL' }), 1);

    for (let i = 0; i < 10; i++) assert.equal((await request(f.port, '/app/after')).status, 200);
    const later = await scrapeWhenTotal(f, before + 30);
    assert.equal(later.sum('flexilib_request_duration_seconds_count'), before + 30);
    promtoolCheck(later.text);
  });
});

describe('error answers by code', () => {
  test('flexilib_errors_total counts each x-flexilib-error code exactly, from the fast lane and node:http alike', async () => {
    const dead = await freePort(); // nothing listens: every proxied request fails with an error answer of flexilib's own
    const cfg = writeConfig(tmp.dir, [`/app = ${lib}`, '/api = upstream:api', '[upstream.api]', `servers = http://127.0.0.1:${dead}`, ''].join('\n'), 'errors.ini');
    const f = await startFlexilib({ config: cfg, workers: 2 });
    try {
      const sent = new Map<string, number>();
      const tally = (code: string | string[] | undefined) => {
        assert.equal(typeof code, 'string', 'every answer on /api carries x-flexilib-error');
        sent.set(code as string, (sent.get(code as string) ?? 0) + 1);
      };
      for (let i = 0; i < 10; i++) {
        // A plain GET: the fast lane's LaneResponse; Connection: close (request()): node:http's response.
        const lane = await rawRequest(f.port, { target: `/api/${i}` });
        assert.ok(lane.status >= 500, `fast lane: ${lane.status}`);
        tally(lane.headers['x-flexilib-error']);
        const node = await request(f.port, `/api/${i}`);
        assert.ok(node.status >= 500, `node:http: ${node.status}`);
        tally(node.headers['x-flexilib-error']);
      }
      for (let i = 0; i < 5; i++) assert.equal((await request(f.port, '/app')).status, 200);
      const s = await scrapeWhenTotal(f, 25);
      assert.ok(s.sum('flexilib_fast_lane_requests_total', { route: '/api' }) >= 10, 'the fast lane answered the plain GETs');
      for (const [code, n] of sent) assert.equal(s.sum('flexilib_errors_total', { route: '/api', kind: 'upstream', code }), n, `${code} on /api`);
      assert.equal(s.sum('flexilib_errors_total'), 20, 'only error answers count; /app answered 200');
      promtoolCheck(s.text);
    } finally {
      await f.stop();
    }
  });
});

describe('--no-metrics', () => {
  test('workers count nothing; the supervisor still serves its own metrics', async () => {
    const f = await startFlexilib({ config, workers: 1, args: ['--no-metrics'] });
    try {
      for (let i = 0; i < 5; i++) assert.equal((await request(f.port, '/app')).status, 200);
      await eventually('five access lines', () => (f.logs.filter((l) => l.kind === 'access').length === 5 ? true : undefined));
      const s = await scrape(f.adminPort);
      assert.equal(s.series('flexilib_requests_total').length, 0);
      assert.equal(s.sum('flexilib_workers'), 2, 'one serving worker and the spare');
      promtoolCheck(s.text);
    } finally {
      await f.stop();
    }
  });
});
