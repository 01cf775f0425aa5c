/**
 * Passive failures count toward `fall` once per event: a brief reset that
 * several workers each see (and each report) before the next health check is
 * one failure, not one per worker. A real origin resets the connections of
 * bursts of requests until at least two workers have reported; its health
 * check answers slowly, so every report reaches the supervisor before the
 * check could clear them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { admin, eventually, request, sleep, startFlexilib, tempDir, until, writeConfig } from '@flexilib/test-support';
import { startOrigin } from './origins.js';

test('one reset seen by several workers counts once toward fall', { timeout: 60_000 }, async (t) => {
  const tmp = tempDir('upstream-passive');
  t.after(() => tmp.cleanup());
  const origin = await startOrigin(t, 'a');
  // /health answers after 2 s, once the start-up check is done: the reports of
  // every burst arrive while the first check they trigger runs.
  let slowHealth = false;
  origin.server.removeAllListeners('request');
  origin.server.on('request', (req, res) => {
    if (req.url === '/health') setTimeout(() => res.end('ok'), slowHealth ? 2000 : 0);
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
  await eventually('the start-up check', async () => (await admin(fx.adminPort, 'GET', '/servers')).json.pools[0].servers[0].lastCheck ?? undefined);
  slowHealth = true;

  const from = fx.logs.length;
  const reports = () => fx.logs.slice(from).filter((l) => String(l.msg).startsWith('upstream origin failed while proxying'));
  const reporters = () => new Set(reports().map((l) => l.worker)).size;
  // Bursts on fresh connections, which node:cluster hands to whichever worker
  // is free: on a busy machine one worker can take a whole burst, so send
  // bursts (a worker that already ejected the origin answers 502 at once)
  // until two workers have reported, well within the slow check.
  const started = Date.now();
  for (let burst = 0; reporters() < 2 && Date.now() - started < 1200; burst++) {
    const replies = await Promise.all(Array.from({ length: 30 }, () => request(fx.port, '/api/reset')));
    for (const r of replies) assert.equal(r.status, 502, r.body);
    await sleep(50);
  }
  await until('the failure reports', () => reports().length > 0, 5000);
  assert.ok(reporters() >= 2, `the test needs the reset seen by at least 2 workers, saw ${reporters()}`);

  // The slow check succeeds: the origin never went down and takes traffic again.
  const servers = await eventually('the slow check to clear the origin', async () => {
    const s = await admin(fx.adminPort, 'GET', '/servers');
    const last = s.json.pools[0].servers[0].lastCheck;
    return last !== null && Date.parse(last.at) > started ? s : undefined;
  }, 6000);
  assert.equal(fx.logs.slice(from).filter((l) => l.msg === 'upstream origin down').length, 0);
  assert.equal(servers.json.pools[0].servers[0].healthy, true);
  assert.equal(servers.json.pools[0].servers[0].lastCheck.ok, true);
  assert.equal(reports().filter((l) => l.counted === true).length, 1, JSON.stringify(reports()));
  const detail = (await admin(fx.adminPort, 'GET', '/stats/detail')).json as Array<{ passiveFailures: number }>;
  assert.equal(detail[0].passiveFailures, reports().length);
  for (let i = 0; i < 6; i++) assert.equal((await request(fx.port, '/api/ok')).body, 'a');
});
