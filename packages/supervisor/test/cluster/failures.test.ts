/**
 * Cluster mode through etcd's real failure modes, on a real 3-member etcd
 * cluster on loopback and real flexilib hosts under bounded proxy load:
 * the etcd leader SIGKILLed, all of etcd stopped (and a host restarted
 * meanwhile), a compaction while a host is frozen, the elected health
 * checker SIGKILLed, and an etcd user limited to the cluster's prefix.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { admin, load, request, sleep, startFlexilib, until } from '@flexilib/test-support';
import { Etcd3 } from 'etcd3';
import { startOrigin } from '../upstream/origins.js';
import { EtcdCluster } from './etcd-cluster.js';
import { converged, startHost, type Host } from './hosts.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = new EtcdCluster(3);
  await etcd.start();
});
// A test that failed midway may have left members stopped: the next starts with all three.
beforeEach(() => etcd.ensureUp());
after(() => etcd?.destroy());

/** Origins a (configured) and x (added through the API), and hosts A and B of cluster `name`. */
async function pairOfHosts(t: { after(fn: () => unknown): void }, name: string, env?: NodeJS.ProcessEnv) {
  const a = await startOrigin(t, 'a');
  const x = await startOrigin(t, 'x');
  const A = await startHost(t, etcd, name, 'A', [a.url], { env });
  const B = await startHost(t, etcd, name, 'B', [a.url], { env });
  return { a, x, A, B };
}

const memberOf = (view: any, h: Host) => view.members.find((m: any) => m.admin.endsWith(`:${h.fx.adminPort}`))?.id as string | undefined;

test('the etcd leader SIGKILLed under load: no proxied request fails, changes work again', { timeout: 120_000 }, async (t) => {
  const { x, A, B } = await pairOfHosts(t, 'f1');
  const trafficA = load(A.fx.port, '/api/t', { concurrency: 3, maxMs: 60_000 });
  const trafficB = load(B.fx.port, '/api/t', { concurrency: 3, maxMs: 60_000 });
  t.after(() => Promise.all([trafficA.stop(), trafficB.stop()]));
  await until('traffic', () => trafficA.result.ok > 50 && trafficB.result.ok > 50, 10_000);

  const leader = etcd.leader();
  await etcd.kill(leader);
  // A change through either host works once etcd elected a new leader (the call may answer 503 meanwhile).
  await until('a change through B after the etcd leader died', async () => (await admin(B.fx.adminPort, 'POST', '/servers', { url: x.url, pool: 'api' })).status === 201, 20_000);
  await until('x to get A\'s traffic', () => x.hits > 0, 10_000);
  await sleep(1000);
  const [ra, rb] = await Promise.all([trafficA.stop(), trafficB.stop()]);
  assert.equal(ra.failed + rb.failed, 0, [...ra.errors, ...rb.errors].join('; '));
  t.diagnostic(`failed proxied requests while the etcd leader died: ${ra.failed + rb.failed} of ${ra.ok + rb.ok + ra.failed + rb.failed}`);
  etcd.restart(leader);
  await etcd.healthy();
  await converged([A, B]);
});

test('all of etcd stopped: traffic goes on, changes answer 503, /readyz says so; a restarted host starts from its snapshot; everyone converges', { timeout: 150_000 }, async (t) => {
  const pair = await pairOfHosts(t, 'f2');
  const { a, x, A } = pair;
  let B = pair.B;
  assert.equal((await admin(A.fx.adminPort, 'POST', '/servers', { url: x.url, pool: 'api' })).status, 201);
  await converged([A, B]);

  const trafficA = load(A.fx.port, '/api/t', { concurrency: 3, maxMs: 120_000, countHeader: 'x-origin' });
  t.after(() => trafficA.stop());
  await etcd.stopAll();
  await until('A to notice etcd is gone', async () => (await A.get('/cluster')).status === 'unreachable', 15_000);

  const refused = await admin(A.fx.adminPort, 'POST', '/servers', { url: 'http://127.0.0.1:9', pool: 'api' });
  assert.equal(refused.status, 503);
  assert.equal(refused.json.error.code, 'FLX_CLUSTER_UNREACHABLE');
  const del = await request(A.fx.adminPort, `/servers/127.0.0.1/${x.port}`, { method: 'DELETE' });
  assert.equal(del.status, 503);
  assert.equal(del.headers['retry-after'], '5');
  const ready = await admin(A.fx.adminPort, 'GET', '/readyz');
  assert.equal(ready.status, 200, 'a host cut off from etcd still serves: ready');
  assert.equal(ready.json.cluster.status, 'unreachable');
  assert.ok(ready.json.cluster.staleSeconds > 0, JSON.stringify(ready.json.cluster));
  const metrics = (await request(A.fx.adminPort, '/metrics')).body;
  assert.match(metrics, /^flexilib_cluster_up 0$/m);
  assert.match(metrics, /^flexilib_cluster_revision [1-9]\d*$/m);

  // B restarted while etcd is down: it starts from its local snapshot, x included.
  await B.fx.stop();
  B = await startHost(t, etcd, 'f2', 'B', [a.url], { dir: B.dir });
  const servers = await B.get('/servers');
  assert.deepEqual(servers.pools[0].servers.map((s: any) => s.url).sort(), [a.url, x.url].sort(), 'B restored the shared pool from its snapshot');
  await until('x to get B\'s traffic from the snapshot', async () => (await request(B.fx.port, '/api/y')).headers['x-origin'] === 'x', 5000);
  assert.equal((await B.get('/cluster')).status, 'unreachable');

  const byOrigin = new Map(trafficA.result.byHeader);
  for (const m of etcd.members) etcd.restart(m);
  const back = Date.now();
  await etcd.healthy();
  await converged([A, B], 20_000);
  t.diagnostic(`resync after a full etcd outage: ${Date.now() - back} ms from the etcd restart (etcd itself included)`);
  const res = await trafficA.stop();
  assert.equal(res.failed, 0, res.errors.join('; '));
  assert.ok((res.byHeader.get('x') ?? 0) > (byOrigin.get('x') ?? 0), 'x kept getting traffic through the outage');
  assert.equal((await admin(B.fx.adminPort, 'DELETE', `/servers/127.0.0.1/${x.port}`)).status, 200, 'changes work again');
  await converged([A, B]);
});

test('cut off from etcd, a host that followed the elected checker runs its own checks', { timeout: 90_000 }, async (t) => {
  const a = await startOrigin(t, 'a');
  const b = await startOrigin(t, 'b');
  const A = await startHost(t, etcd, 'f7', 'A', [a.url, b.url]);
  const B = await startHost(t, etcd, 'f7', 'B', [a.url, b.url]);
  let view: any;
  await until('a health checker', async () => {
    view = await A.get('/cluster');
    return view.leader !== null && view.members.length === 2;
  }, 15_000);
  const follower = [A, B].find((h) => memberOf(view, h) !== view.leader)!;
  assert.equal((await follower.get('/cluster')).healthChecker, false);
  await etcd.stopAll();
  await until('the follower to notice etcd is gone', async () => (await follower.get('/cluster')).status === 'unreachable', 15_000);
  // No traffic: only the follower's own active checks can take b out.
  await b.close();
  await until('the follower to take b out by itself', async () => (await follower.get('/servers')).pools[0].servers.find((s: any) => s.url === b.url)?.healthy === false, 15_000);
  const rec = (await follower.get('/servers')).pools[0].servers.find((s: any) => s.url === b.url);
  assert.doesNotMatch(rec.lastCheck.detail, /elected checker/, 'its own check decided');
  for (let i = 0; i < 4; i++) assert.equal((await request(follower.fx.port, '/api/z')).headers['x-origin'], 'a');
});

test('a compaction while a host is frozen: it converges on SIGCONT', { timeout: 120_000 }, async (t) => {
  const { x, A, B } = await pairOfHosts(t, 'f3');
  await converged([A, B]);
  const from = B.fx.logs.length;
  process.kill(-B.fx.proc.pid!, 'SIGSTOP');
  t.after(() => {
    try {
      process.kill(-B.fx.proc.pid!, 'SIGCONT');
    } catch {
      /* gone */
    }
  });
  // Enough writes under state/ to fill B's watch stream while it cannot read, then a compaction past them.
  const client = new Etcd3({ hosts: etcd.endpoints.split(',').map((e) => `http://${e}`) });
  t.after(() => client.close());
  const filler = 'f'.repeat(4096);
  for (let i = 0; i < 600; i++) await client.put(`/flexilib/f3/v1/state/filler/${i}`).value(filler);
  await client.delete().prefix('/flexilib/f3/v1/state/filler/');
  assert.equal((await admin(A.fx.adminPort, 'POST', '/servers', { url: x.url, pool: 'api' })).status, 201);
  etcd.ctl(['compact', String(etcd.revision())]);
  process.kill(-B.fx.proc.pid!, 'SIGCONT');
  await converged([A, B], 20_000);
  await until('x to get B\'s traffic', async () => (await request(B.fx.port, '/api/y')).headers['x-origin'] === 'x', 5000);
  const relisted = B.fx.logs.slice(from).filter((l) => l.msg === 'cluster state re-listed' || l.msg === 'cluster watch ended; re-listing').map((l) => `${l.reason ?? ''} ${l.err ?? ''}`);
  t.diagnostic(`B re-listed after SIGCONT: ${JSON.stringify(relisted)}`);
  assert.ok(relisted.some((l) => l.includes('watch ended')), `B's compacted watch was re-listed: ${JSON.stringify(relisted)}`);
});

test('the elected health checker SIGKILLed: another takes over and a failing origin leaves every host\'s rotation', { timeout: 120_000 }, async (t) => {
  const a = await startOrigin(t, 'a');
  const b = await startOrigin(t, 'b');
  const hosts = [
    await startHost(t, etcd, 'f4', 'A', [a.url, b.url]),
    await startHost(t, etcd, 'f4', 'B', [a.url, b.url]),
    await startHost(t, etcd, 'f4', 'C', [a.url, b.url]),
  ];
  let view: any;
  await until('a health checker', async () => {
    view = await hosts[0].get('/cluster');
    return view.leader !== null && view.members.length === 3;
  }, 15_000);
  const leader = hosts.find((h) => memberOf(view, h) === view.leader)!;
  const rest = hosts.filter((h) => h !== leader);
  const traffic = rest.map((h) => load(h.fx.port, '/api/t', { concurrency: 2, maxMs: 60_000 }));
  t.after(() => Promise.all(traffic.map((l) => l.stop())));
  await until('traffic', () => traffic.every((l) => l.result.ok > 20), 10_000);

  const killed = Date.now();
  await leader.fx.kill();
  let next: any;
  await until('another host to be elected', async () => {
    next = await rest[0].get('/cluster');
    return next.leader !== null && next.leader !== view.leader;
  }, 15_000);
  t.diagnostic(`health checker failover: ${Date.now() - killed} ms`);
  const results = await Promise.all(traffic.map((l) => l.stop()));
  assert.equal(results.reduce((n, r) => n + r.failed, 0), 0, results.flatMap((r) => r.errors).join('; '));
  const newLeader = rest.find((h) => memberOf(next, h) === next.leader)!;
  const follower = rest.find((h) => h !== newLeader)!;
  assert.ok(newLeader && follower, 'one survivor leads, the other follows');

  // No traffic now: only the elected checker's verdict can take b out on the follower.
  await b.close();
  for (const h of rest) {
    await until(`${h.name} to take b out of rotation`, async () => (await h.get('/servers')).pools[0].servers.find((s: any) => s.url === b.url)?.healthy === false, 15_000);
  }
  const fb = (await follower.get('/servers')).pools[0].servers.find((s: any) => s.url === b.url);
  assert.match(fb.lastCheck.detail, /elected checker/, 'the follower took the elected checker\'s verdict');
  for (const h of rest) for (let i = 0; i < 6; i++) assert.equal((await request(h.fx.port, '/api/z')).headers['x-origin'], 'a');

  // A graceful stop resigns at once: its election key is gone when it exits, not a lease TTL later.
  assert.equal(await newLeader.fx.stop('SIGTERM'), 0);
  const candidates = etcd.ctl(['get', '--prefix', '--print-value-only', '/flexilib/f4/v1/election/health/']);
  assert.ok(!candidates.includes(next.leader), `the stopped checker's election key is gone: ${candidates}`);
  assert.ok(newLeader.fx.logs.some((l) => l.msg === 'resigned as the cluster health checker'));
  await until('the last host to be elected', async () => (await follower.get('/cluster')).healthChecker === true, 10_000);
});

test('etcd replaced by a new cluster (new id, revision back at 1): every host takes its state', { timeout: 90_000 }, async (t) => {
  const { x, A, B } = await pairOfHosts(t, 'f6');
  assert.equal((await admin(A.fx.adminPort, 'POST', '/servers', { url: x.url, pool: 'api' })).status, 201);
  const before = await converged([A, B]);
  const from = { A: A.fx.logs.length, B: B.fx.logs.length };
  await etcd.recreate();
  for (const h of [A, B]) {
    await until(`${h.name} to drop x with the old cluster's state`, async () => (await h.get('/servers')).pools[0].servers.length === 1, 20_000);
    // Waited for, not looked up: the log line travels through stdout, batched
    // until the supervisor's next check phase, and may reach the test after
    // the admin answer that already shows the new state.
    await h.fx.waitForLog((l) => l.msg === 'etcd has a new cluster id: taking its state as a whole', { from: from[h.name as 'A' | 'B'], timeoutMs: 10_000, what: `${h.name} noticed the new cluster id` });
  }
  const after = await converged([A, B]);
  assert.notEqual(after.digest, before.digest);
  assert.equal((await admin(B.fx.adminPort, 'POST', '/servers', { url: x.url, pool: 'api' })).status, 201, 'changes work on the new cluster');
});

test('an etcd user limited to the cluster prefix works; a wrong password is a clear error', { timeout: 90_000 }, async (t) => {
  etcd.ctl(['user', 'add', 'root:rootpw']);
  etcd.ctl(['role', 'add', 'flexi']);
  etcd.ctl(['role', 'grant-permission', 'flexi', '--prefix=true', 'readwrite', '/flexilib/f5/']);
  etcd.ctl(['user', 'add', 'flexi:s3cret']);
  etcd.ctl(['user', 'grant-role', 'flexi', 'flexi']);
  etcd.ctl(['auth', 'enable']);
  t.after(() => etcd.ctl(['auth', 'disable'], { user: 'root:rootpw' }));

  const { x, A, B } = await pairOfHosts(t, 'f5', { FLEXILIB_CLUSTER_USER: 'flexi', FLEXILIB_CLUSTER_PASSWORD: 's3cret' });
  assert.equal((await admin(A.fx.adminPort, 'POST', '/servers', { url: x.url, pool: 'api' })).status, 201);
  await converged([A, B]);
  await until('x to get B\'s traffic', async () => (await request(B.fx.port, '/api/y')).headers['x-origin'] === 'x', 5000);
  assert.equal((await B.get('/cluster')).members.length, 2);

  const wrong = await startFlexilib({ config: A.config, workers: 1, args: ['--cluster', `etcd://${etcd.endpoints}/f5`, '--admin-port', '0'], env: { FLEXILIB_CLUSTER_USER: 'flexi', FLEXILIB_CLUSTER_PASSWORD: 'wrong' } }).then(
    (f) => {
      void f.kill();
      return undefined;
    },
    (err: Error) => err,
  );
  assert.ok(wrong, 'a wrong password does not start');
  assert.match(wrong.message, /FLX_CLUSTER_AUTH|etcd refused this host/);
  assert.match(wrong.message, /--cluster-user/);
});
