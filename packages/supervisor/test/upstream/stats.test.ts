/**
 * /stats is as exact as /metrics: a worker SIGKILLed right after its last
 * proxied request keeps every count (the counters live in shared files, not in
 * the worker), and an origin removed through the API leaves /stats/detail and
 * the metrics while its pool's totals stay whole.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { admin, eventually, load, scrape, startFlexilib, tempDir, writeConfig } from '@flexilib/test-support';
import { startOrigin } from './origins.js';

test('a killed worker keeps its upstream counts; a removed origin is pruned', { timeout: 60_000 }, async (t) => {
  const tmp = tempDir('upstream-stats');
  t.after(() => tmp.cleanup());
  const a = await startOrigin(t, 'a');
  const b = await startOrigin(t, 'b');
  const config = writeConfig(tmp.dir, `/api = upstream:api

[upstream.api]
servers = ${a.url}, ${b.url}
health_path = /health
health_interval = 60s
`);
  const fx = await startFlexilib({ config, workers: 2, accessLog: false });
  t.after(() => fx.kill());

  const res = await load(fx.port, '/api/item', { concurrency: 4, maxRequests: 3000 }).done;
  assert.equal(res.failed, 0, res.errors.join('\n'));
  // At once, before any periodic report could have run: kill a worker that served some of them.
  const from = fx.logs.length;
  const pid = fx.workerPids()[0];
  process.kill(pid, 'SIGKILL');
  await fx.waitForLog((l) => l.code === 'FLX_WORKER_EXIT' && l.workerPid === pid, { from });

  const stats = (await admin(fx.adminPort, 'GET', '/stats')).json;
  assert.deepEqual(stats.pools.api.client, { success: res.ok, failed: 0 });
  assert.deepEqual(stats.pools.api.server, { success: res.ok, failed: 0 });
  assert.equal(a.hits + b.hits, res.ok);
  const detail = (await admin(fx.adminPort, 'GET', '/stats/detail')).json as Array<{ url: string; success: number }>;
  assert.deepEqual(detail.map((d) => [d.url, d.success]), [[a.url, a.hits], [b.url, b.hits]]);

  // Remove b: its own series go, the pool's totals keep its requests.
  const del = await admin(fx.adminPort, 'DELETE', `/servers/127.0.0.1/${b.port}?pool=api`);
  assert.equal(del.status, 200);
  const after = await eventually('b to leave /stats/detail', async () => {
    const d = (await admin(fx.adminPort, 'GET', '/stats/detail')).json as Array<{ url: string }>;
    return d.length === 1 ? d : undefined;
  });
  assert.equal(after[0].url, a.url);
  const s = await scrape(fx.adminPort);
  const origins = new Set(s.series('flexilib_upstream_origin_requests_total').map((x) => x.labels.origin));
  assert.deepEqual([...origins], [a.url]);
  assert.equal(s.sum('flexilib_upstream_client_requests_total', { pool: 'api', result: 'success' }), res.ok);
  const later = (await admin(fx.adminPort, 'GET', '/stats')).json;
  assert.deepEqual(later.pools.api.server, { success: res.ok, failed: 0 });
});
