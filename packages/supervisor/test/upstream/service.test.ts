/**
 * The supervisor's upstream service on its own, with real origins and real
 * files: a config reload (what SIGHUP does) keeps the API's changes, the state
 * file is written atomically and a broken one is refused with its name,
 * passive reports drive health, and the prom-client metrics read it all.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { loadConfig, type ToWorker, type UpstreamState } from '@flexilib/contract';
import { UpstreamCounterFile } from '@flexilib/worker';
import { upstreamMetrics } from '../../src/upstream/metrics.js';
import { UpstreamService } from '../../src/upstream/upstream-service.js';
import { refusedPort, tempDir, until, writeConfig } from '@flexilib/test-support';
import { startOrigin } from './origins.js';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

function urls(state: UpstreamState, pool: string): string[] {
  return state.pools.find((p) => p.name === pool)!.origins.map((o) => o.url);
}

test('a config reload keeps the API changes; the state file is atomic and checked', { timeout: 30_000 }, async (t) => {
  const tmp = tempDir('upstream');
  t.after(() => tmp.cleanup());
  const dir = tmp.dir;
  const [a, b, c, d] = await Promise.all(['a', 'b', 'c', 'd'].map((n) => startOrigin(t, n)));
  const file = writeConfig(dir, `/api = upstream:api
[upstream.api]
servers = ${a.url}, ${b.url}
health_path = /health
`);
  const { log } = capture();
  const sent: ToWorker[] = [];
  const svc = new UpstreamService(loadConfig(file), log, (m) => sent.push(m));
  t.after(() => svc.stop());
  svc.start();
  const pool = svc.registry.get('api')!;
  assert.equal((await svc.addServer(pool, c.url)).created, true);
  assert.equal((await svc.removeServers('127.0.0.1', a.port)).length, 1);
  assert.deepEqual(urls(svc.snapshot(), 'api'), [b.url, c.url]);
  // Each change went to the workers at once.
  const last = sent.at(-1)!;
  assert.equal(last.type, 'upstream-state');
  assert.deepEqual(urls((last as { state: UpstreamState }).state, 'api'), [b.url, c.url]);

  // The operator edits the config (new server d, new balance) and reloads: the API's changes stay.
  writeFileSync(file, `/api = upstream:api
[upstream.api]
servers = ${a.url}, ${b.url}, ${d.url}
balance = least-conn
health_path = /health
`);
  svc.reconfigure(loadConfig(file));
  const after = svc.snapshot();
  assert.deepEqual(urls(after, 'api'), [b.url, d.url, c.url]);
  assert.equal(after.pools[0].settings.balance, 'least-conn');
  assert.deepEqual(urls((sent.at(-1) as { state: UpstreamState }).state, 'api'), [b.url, d.url, c.url]);

  // A new service (a restart) over the same files sees the same pool.
  const again = new UpstreamService(loadConfig(file), log, () => {});
  again.start();
  again.stop();
  assert.deepEqual(urls(again.snapshot(), 'api'), [b.url, d.url, c.url]);

  // Written atomically: only the state file, no temporaries left behind.
  assert.deepEqual(readdirSync(dir).sort(), ['proxy.ini', 'proxy.ini.upstreams.json']);
  assert.deepEqual(JSON.parse(readFileSync(svc.stateFile, 'utf8')), { version: 1, pools: { api: { added: [c.url], removed: [a.url] } } });

  // A broken state file is refused, naming the file and the problem.
  writeFileSync(svc.stateFile, '{"version": 1, "pools": {"api": {"added": ["gopher://x:70"]}}}');
  const broken = new UpstreamService(loadConfig(file), log, () => {});
  assert.throws(() => broken.start(), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'FLX_UPSTREAM_STATE');
    assert.match(err.message, new RegExp(`${path.basename(svc.stateFile)}: pools\\.api\\.added: "gopher://x:70" is not an http\\(s\\) URL`));
    return true;
  });
  broken.stop();
});

test('passive reports and checks drive health; metrics expose it', { timeout: 30_000 }, async (t) => {
  const tmp = tempDir('upstream');
  t.after(() => tmp.cleanup());
  const dir = tmp.dir;
  const live = await startOrigin(t, 'live');
  const refused = await refusedPort();
  t.after(() => refused.close());
  const dead = `http://127.0.0.1:${refused.port}`;
  const file = writeConfig(dir, `/api = upstream:api
[upstream.api]
servers = ${live.url}, ${dead}
health_path = /health
health_interval = 100ms
health_timeout = 2s ; the machine may be busy: only a dead origin should fail a check
fall = 2
rise = 2
`);
  const { log, lines } = capture();
  const sent: ToWorker[] = [];
  const runDir = path.join(dir, 'run');
  mkdirSync(runDir);
  const svc = new UpstreamService(loadConfig(file), log, (m) => sent.push(m), { runDir });
  t.after(() => svc.stop());
  svc.start();
  await until('the dead origin to go down', () => lines.some((l) => l.msg === 'upstream origin down' && l.origin === dead), 5000);
  const state = (sent.at(-1) as { state: UpstreamState }).state;
  assert.deepEqual(state.pools[0].origins.map((o) => [o.url, o.healthy]), [[live.url, true], [dead, false]]);

  // A worker reports a transient failure of the live origin: an immediate check clears it (epoch bump).
  const epoch = svc.registry.get('api')!.origins.get(live.url)!.epoch;
  const before = sent.length;
  svc.onWorkerMessage(1, { type: 'upstream-failure', pool: 'api', origin: live.url, epoch: 0, code: 'ECONNRESET', message: 'reset' });
  await until('the epoch bump', () => svc.registry.get('api')!.origins.get(live.url)!.epoch > epoch, 3000);
  assert.ok(sent.length > before);
  assert.ok(lines.some((l) => l.msg?.toString().startsWith('upstream origin failed while proxying') && l.origin === live.url && l.code === 'ECONNRESET'));
  assert.equal(svc.registry.get('api')!.origins.get(live.url)!.healthy, true);

  // Counters in two workers' files (the slots the state gave them); one exits and its counts stay in the totals.
  const pool = svc.snapshot().pools[0];
  const slot = (url: string) => pool.origins.find((o) => o.url === url)!.slot;
  const w1 = new UpstreamCounterFile(runDir, 1);
  const w2 = new UpstreamCounterFile(runDir, 2, 2); // room for the pool slot only: grows for the origins, the outgrown file is folded
  t.after(() => w1.close());
  w1.ensure(Math.max(pool.slot, slot(live.url), slot(dead))); // what applying the state does
  w2.ensure(pool.slot);
  for (let i = 0; i < 10; i++) {
    w1.ok(pool.slot);
    w1.ok(slot(live.url));
  }
  w1.fail(pool.slot);
  w1.fail(slot(dead));
  w2.ok(pool.slot);
  w2.ensure(Math.max(pool.slot, slot(live.url), slot(dead)));
  for (let i = 0; i < 4; i++) w2.ok(pool.slot);
  for (let i = 0; i < 5; i++) w2.ok(slot(live.url));
  svc.onWorkerExit(2);
  assert.equal(readdirSync(runDir).filter((n) => n.startsWith('worker-2.')).length, 0, 'the exited worker\'s files are folded and deleted');

  const registry = new Registry();
  upstreamMetrics(registry, svc);
  const text = await registry.metrics();
  const value = (name: string, labels: string) => {
    const m = new RegExp(`^${name}\\{${labels.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\} (\\d+)$`, 'm').exec(text);
    assert.ok(m, `${name}{${labels}} missing from:\n${text}`);
    return Number(m[1]);
  };
  assert.equal(value('flexilib_upstream_origin_healthy', `pool="api",origin="${live.url}"`), 1);
  assert.equal(value('flexilib_upstream_origin_healthy', `pool="api",origin="${dead}"`), 0);
  assert.ok(value('flexilib_upstream_health_checks_total', `pool="api",origin="${live.url}",result="success"`) >= 1);
  assert.ok(value('flexilib_upstream_health_checks_total', `pool="api",origin="${dead}",result="failure"`) >= 2);
  assert.equal(value('flexilib_upstream_health_changes_total', `pool="api",origin="${dead}",state="down"`), 1);
  assert.equal(value('flexilib_upstream_passive_failures_total', `pool="api",origin="${live.url}"`), 1);
  assert.equal(value('flexilib_upstream_origin_requests_total', `pool="api",origin="${live.url}",result="success"`), 15);
  assert.equal(value('flexilib_upstream_origin_requests_total', `pool="api",origin="${dead}",result="failure"`), 1);
  assert.equal(value('flexilib_upstream_client_requests_total', 'pool="api",result="success"'), 15);
  assert.equal(value('flexilib_upstream_client_requests_total', 'pool="api",result="failure"'), 1);
});
