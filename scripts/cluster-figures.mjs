#!/usr/bin/env node
// Cluster-mode figures, rerunnable by anyone (Debian's etcd-server and etcd-client installed):
//   pnpm cluster:figures        (= pnpm build && node --import tsx scripts/cluster-figures.mjs)
//
// A real 3-member etcd cluster and three flexilib hosts (A, B, C) on loopback, each
// with one worker and a pool `api` of origin a; continuous keep-alive load on the hosts.
//
//   1. propagation: N changes (POST then DELETE /servers of origin x, alternately
//      through A and C); for each, the time from the API call to B's traffic
//      reaching x (add) or the last request B sent to x (delete);
//   2. failed proxied requests while the etcd leader is SIGKILLed (R rounds, the
//      member restarted after each);
//   3. health-checker failover: the elected host SIGKILLed under load, time until
//      another host is elected (polled every 50 ms), and failed requests on the
//      survivors (R rounds, the host restarted after each);
//   4. resync after a full etcd outage (all members SIGKILLed for 3 s): time from
//      etcd answering again until every host reports `ok` with equal digests (R rounds).
//
// Options: --changes N (50), --rounds R (3), --json FILE.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { admin, load, sleep, until } from '../packages/test-support/src/index.ts';
import { EtcdCluster } from '../packages/supervisor/test/cluster/etcd-cluster.ts';
import { converged, startHost } from '../packages/supervisor/test/cluster/hosts.ts';
import { startOrigin } from '../packages/supervisor/test/upstream/origins.ts';

const { values: opt } = parseArgs({ options: { changes: { type: 'string', default: '50' }, rounds: { type: 'string', default: '3' }, json: { type: 'string' } } });
const CHANGES = Number(opt.changes);
const ROUNDS = Number(opt.rounds);

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
  return { n: s.length, median: q(0.5), p99: q(0.99), max: s[s.length - 1] };
};
const fmt = (st) => `median ${st.median} ms, p99 ${st.p99} ms, max ${st.max} ms (n=${st.n})`;

const cleanups = [];
const t = { after: (fn) => cleanups.push(fn) };
const out = {};
const etcd = new EtcdCluster(3);
try {
  await etcd.start();
  const a = await startOrigin(t, 'a');
  const hits = [];
  const x = await startOrigin(t, 'x', (req, res) => {
    hits.push(Date.now());
    req.resume();
    res.end('x');
  });
  const hosts = [];
  for (const name of ['A', 'B', 'C']) hosts.push(await startHost(t, etcd, 'figures', name, [a.url]));
  const [A, B, C] = hosts;
  await converged(hosts);

  // 1. Propagation.
  const traffic = load(B.fx.port, '/api/t', { concurrency: 3, maxMs: 30 * 60_000 });
  const adds = [];
  const removes = [];
  for (let i = 0; i < CHANGES / 2; i++) {
    const via = i % 2 ? C : A;
    const t0 = Date.now();
    const r = await admin(via.fx.adminPort, 'POST', '/servers', { url: x.url, pool: 'api' });
    if (r.status !== 201) throw new Error(`POST /servers: ${r.status} ${JSON.stringify(r.json)}`);
    await until('x in B\'s traffic', () => hits.some((h) => h >= t0), 10_000);
    adds.push(hits.find((h) => h >= t0) - t0);
    const t1 = Date.now();
    const d = await admin(via.fx.adminPort, 'DELETE', `/servers/127.0.0.1/${x.port}`);
    if (d.status !== 200) throw new Error(`DELETE /servers: ${d.status}`);
    await until('x out of B\'s traffic', () => Date.now() - hits[hits.length - 1] > 600, 10_000);
    removes.push(Math.max(0, hits[hits.length - 1] - t1));
  }
  const res1 = await traffic.stop();
  out.propagation = { all: stats([...adds, ...removes]), add: stats(adds), delete: stats(removes), failed: res1.failed };
  console.log(`propagation, API call on one host -> another host's traffic: ${fmt(out.propagation.all)}; adds ${fmt(out.propagation.add)}; deletes ${fmt(out.propagation.delete)}; failed requests ${res1.failed}`);

  // 2. The etcd leader dies under load.
  out.etcdLeaderKill = [];
  for (let i = 0; i < ROUNDS; i++) {
    const loads = hosts.map((h) => load(h.fx.port, '/api/t', { concurrency: 2, maxMs: 60_000 }));
    await sleep(1000);
    const leader = etcd.leader();
    await etcd.kill(leader);
    await sleep(5000);
    const rs = await Promise.all(loads.map((l) => l.stop()));
    etcd.restart(leader);
    await etcd.healthy();
    await converged(hosts, 20_000);
    out.etcdLeaderKill.push({ failed: rs.reduce((n, r) => n + r.failed, 0), requests: rs.reduce((n, r) => n + r.ok + r.failed, 0) });
  }
  console.log(`etcd leader SIGKILLed under load: ${out.etcdLeaderKill.map((r) => `${r.failed} failed of ${r.requests}`).join('; ')}`);

  // 3. Health-checker failover.
  out.checkerFailover = [];
  for (let i = 0; i < ROUNDS; i++) {
    let view;
    await until('a health checker', async () => {
      view = await hosts[0].get('/cluster');
      return view.leader !== null && view.members.length === hosts.length;
    }, 20_000);
    const idx = hosts.findIndex((h) => view.members.find((m) => m.id === view.leader)?.admin.endsWith(`:${h.fx.adminPort}`));
    const victim = hosts[idx];
    const rest = hosts.filter((h) => h !== victim);
    const loads = rest.map((h) => load(h.fx.port, '/api/t', { concurrency: 2, maxMs: 60_000 }));
    await sleep(1000);
    const killed = Date.now();
    await victim.fx.kill();
    let ms = 0;
    await until('another health checker', async () => {
      const v = await rest[0].get('/cluster');
      if (v.leader !== null && v.leader !== view.leader) {
        ms = Date.now() - killed;
        return true;
      }
      return false;
    }, 20_000);
    await sleep(1000);
    const rs = await Promise.all(loads.map((l) => l.stop()));
    out.checkerFailover.push({ ms, failed: rs.reduce((n, r) => n + r.failed, 0), requests: rs.reduce((n, r) => n + r.ok + r.failed, 0) });
    hosts[idx] = await startHost(t, etcd, 'figures', victim.name, [a.url], { dir: victim.dir });
  }
  console.log(`health checker SIGKILLed: failover ${out.checkerFailover.map((r) => `${r.ms} ms`).join(', ')}; failed requests ${out.checkerFailover.map((r) => `${r.failed} of ${r.requests}`).join('; ')}`);

  // 4. Resync after a full outage.
  out.resync = [];
  for (let i = 0; i < ROUNDS; i++) {
    const loads = hosts.map((h) => load(h.fx.port, '/api/t', { concurrency: 2, maxMs: 60_000 }));
    await etcd.stopAll();
    await until('every host to see etcd gone', async () => (await Promise.all(hosts.map((h) => h.get('/cluster')))).every((v) => v.status === 'unreachable'), 20_000);
    await sleep(3000);
    const started = Date.now();
    for (const m of etcd.members) etcd.restart(m);
    await etcd.healthy();
    const answering = Date.now();
    await converged(hosts, 30_000);
    const done = Date.now();
    const rs = await Promise.all(loads.map((l) => l.stop()));
    out.resync.push({ fromEtcdAnswering: done - answering, fromEtcdStart: done - started, failed: rs.reduce((n, r) => n + r.failed, 0), requests: rs.reduce((n, r) => n + r.ok + r.failed, 0) });
  }
  console.log(`resync after a full etcd outage: ${out.resync.map((r) => `${r.fromEtcdAnswering} ms after etcd answered (${r.fromEtcdStart} ms after its start), ${r.failed} failed of ${r.requests}`).join('; ')}`);
  if (opt.json) writeFileSync(opt.json, JSON.stringify(out, null, 2) + '\n');
} finally {
  for (const fn of cleanups.reverse()) await fn();
  await etcd.destroy();
}
