/**
 * The metrics files across a config switch, driven directly: a real worker
 * process (worker-main, forked with its init as the supervisor would) gets a
 * new config over IPC, and the supervisor's aggregator reads the run folder.
 *
 * - the switch opens a second file with the new route table; the old one
 *   stays live while a request begun on it is in flight, then is sealed,
 *   folded into the retired totals and deleted;
 * - totals never go down through the switch nor through SIGKILL;
 * - a client that leaves mid-response is counted as "aborted" (access log 499).
 */
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { DEFAULT_WORKER_OPTIONS, EMPTY_UPSTREAM_STATE, WORKER_ENV, loadConfig, type FromWorker, type ToWorker, type WorkerInit, type WorkerInitMessage } from '@flexilib/contract';
import { R } from '@flexilib/contract/metrics-layout';
import { ListenSocket } from '../src/listen-socket.js';
import { MetricsAggregator, type Totals } from '../src/metrics/aggregator.js';
import { compilePlugin, eventually, fixture, request, tempDir, writeConfig } from '@flexilib/test-support';

const require = createRequire(import.meta.url);
const tmp = tempDir('worker-metrics');
let lib: string;
before(async () => {
  lib = await compilePlugin(fixture('metrics_plugin.c'), path.join(tmp.dir, 'libmetrics_plugin.so'));
});
after(() => tmp.cleanup());

async function startWorker(configFile: string, runDir: string): Promise<{ child: ChildProcess; messages: FromWorker[]; out: string[] }> {
  const socket = await ListenSocket.bind('127.0.0.1', 0);
  const init: WorkerInit = {
    options: { ...DEFAULT_WORKER_OPTIONS, host: '127.0.0.1', port: 0, logFormat: 'json', logLevel: 'info', accessLog: true, metrics: true },
    config: loadConfig(configFile),
    generation: 0,
    quarantined: [],
    runDir,
    upstreams: EMPTY_UPSTREAM_STATE,
  };
  const child = fork(require.resolve('@flexilib/worker/worker-main'), [], {
    env: { ...process.env, [WORKER_ENV]: '1' },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  // The init answers the worker's hello, then the socket to serve on: as the supervisor does.
  child.once('message', () => {
    child.send({ type: 'init', init } satisfies WorkerInitMessage);
    child.send({ type: 'listen' } satisfies ToWorker, socket.handle as never, () => socket.close());
  });
  const messages: FromWorker[] = [];
  const out: string[] = [];
  child.on('message', (m: FromWorker) => messages.push(m));
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (c: string) => out.push(...c.split('\n').filter(Boolean)));
  return { child, messages, out };
}

const count = (t: Totals, route: string, status = 1 /* 2xx */) => {
  for (const s of t.routes.values()) if (s.route === route) return s.v[R.requests + status];
  return 0;
};
const files = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.metrics')).sort();

test('a config switch seals the old metrics file once idle; totals never go down, through SIGKILL too', async () => {
  const runDir = tempDir('run');
  const cfgA = writeConfig(tmp.dir, [`/slow = ${lib}`, `/app = ${lib}`, '[route /slow]', 'mode = threaded', ''].join('\n'));
  const w = await startWorker(cfgA, runDir.dir);
  const agg = new MetricsAggregator(runDir.dir, pino({ level: 'silent' }));
  try {
    const listening = await eventually('listening', () => w.messages.find((m) => m.type === 'listening'));
    const port = (listening as { port: number }).port;

    const slow = request(port, '/slow', { headers: { 'x-slow': '700' } });
    for (let i = 0; i < 5; i++) assert.equal((await request(port, '/app')).status, 200);
    await eventually('5 on /app and 1 in flight', () => {
      const t = agg.snapshot();
      return count(t, '/app') === 5 && t.inflight === 1 ? true : undefined;
    });

    const cfgB = path.join(tmp.dir, 'b.ini');
    writeFileSync(cfgB, [`/app2 = ${lib}`, `/app = ${lib}`, ''].join('\n'));
    w.child.send({ type: 'config', config: loadConfig(cfgB), generation: 1, quarantined: [], requestId: 1 });
    await eventually('config-applied', () => w.messages.find((m) => m.type === 'config-applied'));
    assert.deepEqual(files(runDir.dir), ['worker-0.0.metrics', 'worker-0.1.metrics']);
    let t = agg.snapshot();
    assert.equal(count(t, '/app'), 5);
    assert.equal(t.inflight, 1, 'the slow request is still in flight on the old route table');
    assert.equal(t.liveFiles, 2);

    for (let i = 0; i < 3; i++) assert.equal((await request(port, '/app2')).status, 200);
    assert.equal((await request(port, '/app')).status, 200);
    assert.equal((await slow).status, 200);
    t = await eventually('the old file folded', () => {
      const s = agg.snapshot();
      return s.liveFiles === 1 && count(s, '/slow') === 1 && count(s, '/app2') === 3 ? s : undefined;
    });
    assert.deepEqual(files(runDir.dir), ['worker-0.1.metrics']);
    assert.equal(count(t, '/app'), 6, '/app counted in both route tables, summed');
    assert.equal(t.inflight, 0);

    w.child.kill('SIGKILL');
    await new Promise((r) => w.child.once('exit', r));
    agg.workerExited(0);
    const dead = agg.snapshot();
    assert.deepEqual(files(runDir.dir), []);
    assert.deepEqual([count(dead, '/slow'), count(dead, '/app'), count(dead, '/app2'), dead.liveFiles], [1, 6, 3, 0]);
  } finally {
    w.child.kill('SIGKILL');
    agg.close();
    runDir.cleanup();
  }
});

test('a client leaving mid-response counts as aborted and leaves the in-flight gauge', async () => {
  const runDir = tempDir('run');
  const cfg = writeConfig(tmp.dir, [`/slow = ${lib}`, '[route /slow]', 'mode = threaded', ''].join('\n'));
  const w = await startWorker(cfg, runDir.dir);
  const agg = new MetricsAggregator(runDir.dir, pino({ level: 'silent' }));
  try {
    const listening = await eventually('listening', () => w.messages.find((m) => m.type === 'listening'));
    const port = (listening as { port: number }).port;
    const req = http.get({ host: '127.0.0.1', port, path: '/slow', headers: { 'x-slow': '400' }, agent: false });
    req.on('error', () => {});
    await eventually('in flight', () => (agg.snapshot().inflight === 1 ? true : undefined));
    req.destroy();
    const t = await eventually('aborted counted', () => {
      const s = agg.snapshot();
      return count(s, '/slow', 5 /* aborted */) === 1 ? s : undefined;
    });
    assert.equal(t.inflight, 0);
    assert.equal(count(t, '/slow'), 0);
    const line = await eventually('the access record', () => w.out.find((l) => l.includes('"kind":"access"')));
    assert.equal(JSON.parse(line).status, 499);
    // The worker survives the late plugin return and keeps serving.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await request(port, '/slow')).status, 200);
    assert.ok(existsSync(path.join(runDir.dir, 'worker-0.0.metrics')));
  } finally {
    w.child.kill('SIGKILL');
    agg.close();
    runDir.cleanup();
  }
});
