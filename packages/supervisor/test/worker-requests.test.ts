/**
 * The request/acknowledge channel (worker-requests.ts, through WorkerPool)
 * against real forked workers (worker-main, the gate.c plugin): a reply is
 * typed by its request and paired by its number; a worker that does not answer
 * in time fails with FLX_WORKER_NO_REPLY and its late reply is never taken for
 * the next request; a worker that dies mid-request fails with FLX_WORKER_GONE;
 * requestAll gives each worker's outcome; a request to a worker still starting
 * waits for its hello. Blocking is deterministic: the gate plugin holds the
 * worker's event loop (an inline call) until the test opens it.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { DEFAULT_WORKER_OPTIONS, loadConfig, type Config, type FromWorker } from '@flexilib/contract';
import { ListenSocket } from '../src/listen-socket.js';
import { WorkerPool, type PoolWorker } from '../src/worker-pool.js';
import { WorkerRequestError } from '../src/worker-requests.js';
import { compilePlugin, eventually, fixture, request, tempDir, writeConfig } from '@flexilib/test-support';

const tmp = tempDir('worker-requests');
let config: Config;
let socket: ListenSocket;
let pool: WorkerPool;
let port = 0;

before(async () => {
  const lib = await compilePlugin(fixture('gate.c'), path.join(tmp.dir, 'libgate.so'));
  config = loadConfig(writeConfig(tmp.dir, `/gate = ${lib}\n`));
  socket = await ListenSocket.bind('127.0.0.1', 0);
  const runDir = mkdtempSync(path.join(tmp.dir, 'run-'));
  pool = new WorkerPool(2, 0, runDir, {
    init: () => ({
      init: {
        options: { ...DEFAULT_WORKER_OPTIONS, host: '127.0.0.1', port: 0, logFormat: 'json', logLevel: 'warn', accessLog: false, metrics: false },
        config,
        generation: 0,
        quarantined: [],
        runDir,
        upstreams: { pools: [] },
      },
      quarantineVersion: 0,
    }),
    socket: () => socket.handle,
    beforeListen: () => {},
    started: () => {},
    listening: (_w, p) => {
      port = p;
    },
    message: () => {},
    exited: () => {},
  }, pino({ level: 'silent' }));
  pool.start();
});

after(async () => {
  pool.stop();
  for (const w of pool.all()) w.worker.process.kill('SIGKILL');
  await pool.whenEmpty();
  socket.close();
  tmp.cleanup();
});

const configRequest = (generation: number) => ({ type: 'config' as const, config, generation, quarantined: [] });

/** Block one worker inside a plugin call; resolves with that worker and the gate's opener. */
async function blockOneWorker(name: string): Promise<{ blocked: PoolWorker; open: () => void; answer: Promise<unknown> }> {
  const dir = path.join(tmp.dir, name);
  mkdirSync(dir);
  const answer = request(port, '/gate', { headers: { 'x-gate': dir }, timeoutMs: 60_000 }).catch((err: Error) => err);
  const pid = await eventually(`a worker in the gate (${name})`, () => (existsSync(path.join(dir, 'entered')) ? Number(readFileSync(path.join(dir, 'entered'), 'utf8')) || undefined : undefined));
  const blocked = pool.all().find((w) => w.pid === pid);
  assert.ok(blocked, `worker ${pid} is one of the pool's`);
  return { blocked, open: () => writeFileSync(path.join(dir, 'open'), ''), answer };
}

test('a request to a worker still starting waits for its hello; the reply is typed by the request and paired by its number', { timeout: 60_000 }, async () => {
  // Right after start(): no worker has said hello yet (no message was handled).
  const starting = pool.all();
  assert.equal(starting.length, 2);
  assert.ok(starting.every((w) => !w.listening));
  const outcomes = await pool.requestAll(starting, configRequest(1));
  assert.deepEqual(outcomes.map((o) => o.worker), starting, 'one outcome per worker, in order');
  for (const o of outcomes) {
    assert.equal(o.error, undefined);
    assert.equal(o.reply?.type, 'config-applied');
    assert.equal(o.reply?.generation, 1);
  }
  assert.notEqual(outcomes[0].reply?.requestId, outcomes[1].reply?.requestId, 'each request has its own number');
  await eventually('both workers listening', () => (pool.listening().length === 2 ? true : undefined));

  const one = await pool.request(pool.listening()[0], { type: 'reload-library', file: '/nowhere/libnone.so' });
  assert.equal(one.type, 'library-reloaded');
  assert.equal(one.file, '/nowhere/libnone.so');
  assert.equal(one.loaded, false, 'not loaded there: nothing to reload');
});

test('no reply in time: FLX_WORKER_NO_REPLY; the late reply is dropped, the next request gets its own', { timeout: 60_000 }, async () => {
  await eventually('both workers listening', () => (pool.listening().length === 2 ? true : undefined));
  const { blocked, open, answer } = await blockOneWorker('late');
  const raw: FromWorker[] = [];
  blocked.worker.on('message', (m: FromWorker) => raw.push(m));

  await assert.rejects(pool.request(blocked, configRequest(2), 200), (err: unknown) => {
    assert.ok(err instanceof WorkerRequestError);
    assert.equal(err.code, 'FLX_WORKER_NO_REPLY');
    assert.equal(err.workerPid, blocked.pid);
    assert.equal(err.request, 'config');
    assert.equal(err.message, `worker ${blocked.pid} did not answer "config" within 200 ms`);
    return true;
  });
  // Asked again while it still cannot answer; it answers both, the late one first.
  const next = pool.request(blocked, configRequest(3), 30_000);
  open();
  const reply = await next;
  assert.equal(reply.generation, 3, 'the reply to this request, not the late one to the timed-out request');
  const applied = raw.filter((m) => m.type === 'config-applied');
  assert.deepEqual(applied.map((m) => m.generation), [2, 3], 'the late reply did arrive, before this one');
  assert.equal((await answer as { body?: string }).body, 'opened');
});

test('a worker that dies mid-request: FLX_WORKER_GONE; requestAll gives each worker its outcome', { timeout: 60_000 }, async () => {
  await eventually('both workers listening', () => (pool.listening().length === 2 ? true : undefined));
  const { blocked, answer } = await blockOneWorker('death');
  const other = pool.listening().find((w) => w !== blocked);
  assert.ok(other);
  const all = pool.requestAll([blocked, other], configRequest(4), 30_000);
  // The other worker answers; the blocked one cannot, and dies.
  blocked.worker.process.kill('SIGKILL');
  const [dead, alive] = await all;
  assert.equal(dead.worker, blocked);
  assert.ok(dead.error instanceof WorkerRequestError);
  assert.equal(dead.error.code, 'FLX_WORKER_GONE');
  assert.equal(dead.error.message, `worker ${blocked.pid} died before answering "config"`);
  assert.equal(alive.worker, other);
  assert.equal(alive.reply?.generation, 4);
  assert.ok((await answer) instanceof Error, 'the gated client lost its connection');

  // Asking a dead worker fails at once, with the same code.
  await assert.rejects(pool.request(blocked, configRequest(5)), (err: unknown) => err instanceof WorkerRequestError && err.code === 'FLX_WORKER_GONE');
});
