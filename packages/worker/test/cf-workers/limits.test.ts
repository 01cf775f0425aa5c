/**
 * What flexilib adds to workerd, on the real command: KV persisted across a
 * restart, the CPU and memory limits answered as Cloudflare's error 1102 with
 * the isolate recycled, `instances` serving at once, scale to zero after
 * `idle` and the cold start after it, and hot reload of the module under load
 * with no failed request. Prints the warm p50 and the cold start (no timed
 * assertions: the figures are reported, the bench judges speed).
 */
import assert from 'node:assert/strict';
import { copyFileSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { load, request, startFlexilib, tempDir, until, writeConfig, type Flexilib } from '@flexilib/test-support';
import { requireWorkerd } from './plain-workerd.js';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const LIMITS = path.join(FIXTURES, 'limits.mjs');
/** Unique worker names: the test finds its own workerd processes by them. */
const TAG = `t${process.pid}`;

/** workerd processes serving this test's worker `name` (their config lives in a folder named after it). */
function engines(name: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes('workerd') && cmd.includes(`/cf-workers/${name}-`)) pids.push(Number(p));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

describe('Cloudflare Workers: limits, instances, scale to zero, KV, hot reload', () => {
  const tmp = tempDir('cf-limits');
  const state = path.join(tmp.dir, 'state');
  const reloadModule = path.join(tmp.dir, 'version.mjs');
  let config = '';
  let f: Flexilib;

  before(async () => {
    requireWorkerd();
    copyFileSync(path.join(FIXTURES, 'version.mjs'), reloadModule);
    config = writeConfig(
      tmp.dir,
      [
        '/kv = worker:kv',
        '/lim = worker:lim',
        '/mem = worker:mem',
        '/conc = worker:conc',
        '/idle = worker:idle',
        '/r = worker:reload',
        `/warm = worker:${TAG}warm`,
        '/missing = worker:missing',
        '[worker.kv]',
        `module = ${LIMITS}`,
        'kv.CACHE = shop-cache        ; persisted under state',
        `state = ${state}`,
        `[worker.lim]`,
        `module = ${LIMITS}`,
        'cpu_ms = 50',
        'memory = 32m',
        'instances = 1',
        '[worker.mem]',
        `module = ${LIMITS}`,
        'memory = 32m                 ; cpu_ms stays 30 s: the heap is what ends it',
        'instances = 1',
        '[worker.conc]',
        `module = ${LIMITS}`,
        'instances = 4',
        `[worker.idle]`,
        `module = ${LIMITS}`,
        'instances = 1',
        'idle = 500ms',
        `[worker.${TAG}warm]`,
        `module = ${LIMITS}`,
        'instances = 2',
        'idle = 300ms',
        'spare = 1                    ; one process stays started through idle',
        '[worker.missing]',
        'module = workers/not-there.mjs',
        '[worker.reload]',
        `module = ${reloadModule}`,
        'instances = 2',
      ].join('\n').replaceAll('worker:idle', `worker:${TAG}idle`).replaceAll('[worker.idle]', `[worker.${TAG}idle]`),
    );
    f = await startFlexilib({ config, workers: 1, accessLog: false });
  });
  after(async () => {
    await f?.stop();
    tmp.cleanup();
  });

  it('KV: put with metadata and expirationTtl, get, list, delete; kept across a restart', async () => {
    const put = (k: string, v: string, extra = '') => request(f.port, `/kv/put?k=${k}&v=${v}${extra}`);
    assert.equal((await put('apple', 'red', `&meta=${encodeURIComponent('{"kind":"fruit"}')}`)).body, 'stored');
    assert.equal((await put('avocado', 'green', '&ttl=3600')).body, 'stored');
    assert.equal((await put('bean', 'brown')).body, 'stored');
    assert.deepEqual(JSON.parse((await request(f.port, '/kv/get?k=apple')).body), { value: 'red', metadata: { kind: 'fruit' } });
    const listed = JSON.parse((await request(f.port, '/kv/list?prefix=a')).body) as Array<{ name: string; expiration?: number; metadata?: unknown }>;
    assert.deepEqual(listed.map((k) => k.name), ['apple', 'avocado']);
    assert.deepEqual(listed[0].metadata, { kind: 'fruit' });
    const expiration = listed[1].expiration!;
    assert.ok(Math.abs(expiration - (Date.now() / 1000 + 3600)) < 120, `expiration ${expiration} is about an hour ahead`);
    assert.equal((await request(f.port, '/kv/delete?k=bean')).body, 'deleted');
    assert.deepEqual(JSON.parse((await request(f.port, '/kv/get?k=bean')).body), { value: null, metadata: null });

    await f.stop();
    f = await startFlexilib({ config, workers: 1, accessLog: false });
    assert.deepEqual(JSON.parse((await request(f.port, '/kv/get?k=apple')).body), { value: 'red', metadata: { kind: 'fruit' } });
    const again = JSON.parse((await request(f.port, '/kv/list')).body) as Array<{ name: string; expiration?: number }>;
    assert.deepEqual(again.map((k) => k.name), ['apple', 'avocado']);
    assert.equal(again[1].expiration, expiration);
  });

  it('cpu_ms: a request past it gets error 1102, the isolate is recycled, the next request works', async () => {
    const before = (await request(f.port, '/lim/id')).body;
    const r = await request(f.port, '/lim/spin', { timeoutMs: 20_000 });
    assert.equal(r.status, 503);
    assert.equal(r.body, 'error code: 1102');
    assert.equal(r.headers['content-type'], 'text/plain; charset=UTF-8');
    assert.equal(r.headers['x-flexilib-error'], 'FLX_CFW_CPU');
    assert.match(String(r.headers['cf-ray']), /^[0-9a-f]{16}-FLX$/);
    const next = await request(f.port, '/lim/id');
    assert.equal(next.status, 200);
    assert.notEqual(next.body, before, 'a fresh isolate answers');
    assert.ok(f.logs.some((l) => l.code === 'FLX_CFW_CPU' && l.route === '/lim'), 'the limit is logged with its code');
  });

  it('memory: an isolate past its heap gets error 1102, is recycled, the next request works', async () => {
    const before = (await request(f.port, '/mem/id')).body;
    const r = await request(f.port, '/mem/mem', { timeoutMs: 30_000 });
    assert.equal(r.status, 503);
    assert.equal(r.body, 'error code: 1102');
    assert.equal(r.headers['x-flexilib-error'], 'FLX_CFW_MEMORY');
    const next = await request(f.port, '/mem/id');
    assert.equal(next.status, 200);
    assert.notEqual(next.body, before);
  });

  it('instances = 4: four slow requests run at once, each on its own isolate', async () => {
    const answers = await Promise.all([0, 1, 2, 3].map(() => request(f.port, '/conc/slow?ms=700', { timeoutMs: 20_000 })));
    const runs = answers.map((a) => JSON.parse(a.body) as { isolate: string; start: number; end: number });
    assert.equal(new Set(runs.map((r) => r.isolate)).size, 4, 'four isolates');
    const lastStart = Math.max(...runs.map((r) => r.start));
    const firstEnd = Math.min(...runs.map((r) => r.end));
    assert.ok(lastStart < firstEnd, 'all four were running at the same time');
    // A fifth waits for a free one rather than a fifth process.
    const five = await Promise.all([0, 1, 2, 3, 4].map(() => request(f.port, '/conc/slow?ms=300', { timeoutMs: 20_000 })));
    const ids = five.map((a) => (JSON.parse(a.body) as { isolate: string }).isolate);
    assert.equal(new Set(ids).size, 4, 'still four isolates');
    for (const id of ids) assert.ok(runs.some((r) => r.isolate === id), 'warm isolates were reused');
  });

  it('idle: scale to zero, then a cold start; prints the warm p50 and the cold start', async () => {
    const name = `${TAG}idle`;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = (await request(f.port, '/idle/id', { agent })).body;
      assert.equal(engines(name).length, 1);
      const times: number[] = [];
      for (let i = 0; i < 200; i++) {
        const t0 = performance.now();
        const r = await request(f.port, '/idle/id', { agent });
        times.push(performance.now() - t0);
        assert.equal(r.body, first);
      }
      times.sort((a, b) => a - b);
      await until('the idle workerd process to stop', () => engines(name).length === 0, 10_000);
      const colds: number[] = [];
      let last = first;
      for (let i = 0; i < 3; i++) {
        await until('scale to zero', () => engines(name).length === 0, 10_000);
        const t0 = performance.now();
        const r = await request(f.port, '/idle/id', { agent });
        colds.push(performance.now() - t0);
        assert.equal(r.status, 200);
        assert.notEqual(r.body, last, 'a new isolate after scale to zero');
        last = r.body;
      }
      colds.sort((a, b) => a - b);
      console.log(`# Worker route: warm p50 ${times[100].toFixed(2)} ms, p99 ${times[197].toFixed(2)} ms (keep-alive, one at a time); cold start (first request after scale to zero) median ${colds[1].toFixed(1)} ms of ${colds.map((c) => c.toFixed(1)).join(', ')}`);
    } finally {
      agent.destroy();
    }
  });

  it('spare = 1: idle never stops the last process; a request after idle starts none', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = (await request(f.port, '/warm/id', { agent })).body;
      assert.equal(engines(`${TAG}warm`).length, 1);
      // Two at once: a second process starts for the second request, and idle stops it again.
      await Promise.all([request(f.port, '/warm/slow?ms=300'), request(f.port, '/warm/slow?ms=300')]);
      assert.equal(engines(`${TAG}warm`).length, 2);
      await until('back down to the spare', () => engines(`${TAG}warm`).length === 1, 10_000);
      const after: number[] = [];
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setTimeout(r, 600));
        const t0 = performance.now();
        const r = await request(f.port, '/warm/id', { agent });
        after.push(performance.now() - t0);
        assert.equal(r.status, 200);
        assert.equal(engines(`${TAG}warm`).length, 1, 'no process started');
      }
      assert.ok(first.length > 0);
      after.sort((a, b) => a - b);
      console.log(`# Worker route with spare = 1: first request after idle median ${after[1].toFixed(2)} ms of ${after.map((c) => c.toFixed(2)).join(', ')}`);
    } finally {
      agent.destroy();
    }
  });

  it('SIGHUP: a changed section gets new processes, an unchanged one (even moved) stays warm', async () => {
    const lim = (await request(f.port, '/lim/id')).body;
    assert.equal((await request(f.port, '/conc/env')).body, 'none');
    const text = readFileSync(config, 'utf8');
    writeFileSync(config, `# a line that moves every section\n${text.replace('[worker.conc]', '[worker.conc]\nvars.GREETING = changed')}`);
    f.signal('SIGHUP');
    await until('the changed binding', async () => (await request(f.port, '/conc/env')).body === 'changed', 15_000);
    assert.equal((await request(f.port, '/lim/id')).body, lim, 'the unchanged Worker kept its isolate');
  });

  it('a module that cannot be bundled answers 500 naming it; the other Workers serve on', async () => {
    const r = await request(f.port, '/missing/x');
    assert.equal(r.status, 500);
    assert.equal(r.headers['x-flexilib-error'], 'FLX_CFW_BUNDLE');
    assert.match(r.body, /worker "missing": cannot bundle .*workers\/not-there\.mjs/);
    assert.equal((await request(f.port, '/lim/id')).status, 200);
  });

  it('hot reload: a changed module serves the next requests, with no failed request under load', async () => {
    await until('v1 answering', async () => (await request(f.port, '/r/')).body === 'v1', 10_000);
    const traffic = load(f.port, '/r/', { concurrency: 4, maxMs: 20_000 });
    await new Promise((r) => setTimeout(r, 300));
    writeFileSync(reloadModule, "export default { fetch: () => new Response('v2') };\n");
    await until('v2 answering', async () => (await request(f.port, '/r/')).body === 'v2', 10_000);
    await new Promise((r) => setTimeout(r, 300));
    // A change that does not bundle: logged with the file and line, and v2 keeps serving.
    const from = f.logs.length;
    writeFileSync(reloadModule, "export default { fetch: () => new Response('v3' };\n");
    const bad = await f.waitForLog((l) => l.code === 'FLX_CFW_BUNDLE', { from, timeoutMs: 10_000 });
    assert.match(String(bad.err), /version\.mjs:1: /);
    assert.equal((await request(f.port, '/r/')).body, 'v2');
    // Saved as editors do: a new file renamed over the old one.
    writeFileSync(`${reloadModule}.tmp`, "export default { fetch: () => new Response('v3') };\n");
    renameSync(`${reloadModule}.tmp`, reloadModule);
    await until('v3 answering', async () => (await request(f.port, '/r/')).body === 'v3', 10_000);
    const res = await traffic.stop();
    assert.equal(res.failed, 0, res.errors.join('; '));
    assert.ok(['v1', 'v2', 'v3'].every((v) => (res.bodies.get(v) ?? 0) > 0), `every version served: ${[...res.bodies].join(' ')}`);
  });
});
