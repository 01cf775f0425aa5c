/**
 * Passive failures count toward `fall` once per event: a brief reset that
 * several workers each see (and each report) before the next health check is
 * one failure, not one per worker. A real origin resets the connections of one
 * burst of requests; its health check answers slowly, so every report reaches
 * the supervisor before a check could clear them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { admin, request, sleep, startFlexilib, tempDir, until, writeConfig } from '@flexilib/test-support';
import { startOrigin } from './origins.js';

test('one reset seen by several workers counts once toward fall', { timeout: 60_000 }, async (t) => {
  const tmp = tempDir('upstream-passive');
  t.after(() => tmp.cleanup());
  const origin = await startOrigin(t, 'a');
  // /health answers after 500 ms: the reports of the burst all arrive while the first check runs.
  origin.server.removeAllListeners('request');
  origin.server.on('request', (req, res) => {
    if (req.url === '/health') setTimeout(() => res.end('ok'), 500);
    else if (req.url === '/api/reset') req.socket.resetAndDestroy();
    else res.end('a');
  });
  const config = writeConfig(tmp.dir, `/api = upstream:api

[upstream.api]
servers = ${origin.url}
health_path = /health
health_interval = 60s
health_timeout = 5s
fall = 2
rise = 1
`);
  const fx = await startFlexilib({ config, workers: 3, accessLog: false });
  t.after(() => fx.kill());
  await sleep(700); // the start-up check is done

  const from = fx.logs.length;
  // One burst on fresh connections, spread over the workers by node:cluster.
  const replies = await Promise.all(Array.from({ length: 30 }, () => request(fx.port, '/api/reset')));
  for (const r of replies) assert.equal(r.status, 502, r.body);
  const reports = () => fx.logs.slice(from).filter((l) => String(l.msg).startsWith('upstream origin failed while proxying'));
  await until('the failure reports', () => reports().length > 0, 5000);
  await sleep(300);
  const workers = new Set(reports().map((l) => l.worker));
  assert.ok(workers.size >= 2, `the test needs the reset seen by at least 2 workers, saw ${workers.size}`);

  // The slow check succeeds: the origin never went down and takes traffic again.
  await sleep(1000);
  assert.equal(fx.logs.slice(from).filter((l) => l.msg === 'upstream origin down').length, 0);
  const servers = await admin(fx.adminPort, 'GET', '/servers');
  assert.equal(servers.json.pools[0].servers[0].healthy, true);
  assert.equal(reports().filter((l) => l.counted === true).length, 1, JSON.stringify(reports()));
  const detail = (await admin(fx.adminPort, 'GET', '/stats/detail')).json as Array<{ passiveFailures: number }>;
  assert.equal(detail[0].passiveFailures, reports().length);
  for (let i = 0; i < 6; i++) assert.equal((await request(fx.port, '/api/ok')).body, 'a');
});
