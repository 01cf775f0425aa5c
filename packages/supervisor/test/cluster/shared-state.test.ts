/**
 * Cluster mode against a real 3-member etcd cluster on loopback, with three
 * real flexilib hosts: a pool change made through one host's admin API
 * reaches every host's traffic (the time of each of 50 changes measured), an
 * origin that exists answers 409, GET /cluster lists the members, the health
 * checker and a host whose native library differs, and a 5 MiB WASM service
 * registered on one host serves on another with the same sha256.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { admin, compileWasm, load, rawRequest, repoRoot, sleep, until } from '@flexilib/test-support';
import { startOrigin } from '../upstream/origins.js';
import { EtcdCluster } from './etcd-cluster.js';
import { answeredBy, converged, startHost } from './hosts.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = new EtcdCluster(3);
  await etcd.start();
});
after(() => etcd?.destroy());

function p99(samples: number[]): number {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(s.length * 0.99) - 1)];
}

test('POST and DELETE /servers on one host reach the other hosts; 409; GET /cluster', { timeout: 240_000 }, async (t) => {
  const a = await startOrigin(t, 'a');
  const hits: number[] = [];
  const x = await startOrigin(t, 'x', (req, res) => {
    hits.push(Date.now());
    req.resume();
    res.end('x');
  });
  const A = await startHost(t, etcd, 'c1', 'A', [a.url]);
  const B = await startHost(t, etcd, 'c1', 'B', [a.url]);
  const C = await startHost(t, etcd, 'c1', 'C', [a.url], { libVersion: 'v2' });

  // GET /cluster: three members, one health checker, C's library named as the odd one.
  let view: any;
  await until('three members and a health checker', async () => {
    view = await A.get('/cluster');
    return view.members.length === 3 && view.leader !== null;
  }, 15_000);
  assert.equal(view.cluster, 'c1');
  assert.equal(view.status, 'ok');
  assert.deepEqual(view.members.map((m: any) => m.id).sort(), [A, B, C].map((h) => `${view.members.find((m: any) => m.admin.endsWith(`:${h.fx.adminPort}`)).id}`).sort());
  assert.ok(view.members.some((m: any) => m.id === view.leader), 'the leader is a member');
  const cId = view.members.find((m: any) => m.admin.endsWith(`:${C.fx.adminPort}`)).id;
  assert.equal(view.librariesDiffer.length, 1, JSON.stringify(view.librariesDiffer));
  assert.equal(view.librariesDiffer[0].member, cId);
  assert.equal(view.librariesDiffer[0].sha256, createHash('sha256').update(readFileSync(path.join(C.dir, 'libversioned.so'))).digest('hex'));
  const readyz = await admin(B.fx.adminPort, 'GET', '/readyz');
  assert.equal(readyz.status, 200);
  assert.equal(readyz.json.cluster.status, 'ok');

  // B's traffic, all the time: it must see each change made on A.
  const traffic = load(B.fx.port, '/api/t', { concurrency: 3, maxMs: 200_000 });
  t.after(() => traffic.stop());
  const adds: number[] = [];
  const removes: number[] = [];
  for (let i = 0; i < 25; i++) {
    const t0 = Date.now();
    const r = await admin(A.fx.adminPort, 'POST', '/servers', { url: x.url, pool: 'api' });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    await until(`x to get B's traffic (change ${2 * i + 1})`, () => hits.some((h) => h >= t0), 10_000);
    adds.push(hits.find((h) => h >= t0)! - t0);
    if (i === 0) {
      const dup = await admin(C.fx.adminPort, 'POST', '/servers', { url: x.url, pool: 'api' });
      assert.equal(dup.status, 409, 'an origin that exists answers 409 on any host');
      assert.equal(dup.json.error.code, 'FLX_CLUSTER_CONFLICT');
    }
    const t1 = Date.now();
    const d = await admin(A.fx.adminPort, 'DELETE', `/servers/127.0.0.1/${x.port}`);
    assert.equal(d.status, 200, JSON.stringify(d.json));
    // Gone from B's traffic: no hit for 600 ms (B sends a request every few ms).
    await until(`x to leave B's traffic (change ${2 * i + 2})`, () => Date.now() - (hits[hits.length - 1] ?? 0) > 600, 10_000);
    removes.push(Math.max(0, hits[hits.length - 1] - t1));
  }
  const res = await traffic.stop();
  assert.equal(res.failed, 0, res.errors.join('; '));
  const all = [...adds, ...removes];
  t.diagnostic(`propagation over ${all.length} changes: p99 ${p99(all)} ms, add p99 ${p99(adds)} ms, delete p99 ${p99(removes)} ms`);
  for (const h of [A, B, C]) assert.deepEqual((await h.get('/servers')).pools[0].servers.map((s: any) => s.url), [a.url], `${h.name}: x left the pool`);
  await converged([A, B, C]);

  // A 5 MiB WASM service registered on A serves on B, same sha256.
  const wasm = await compileWasm(path.join(repoRoot, 'packages/worker/test/wasm/fixtures/hello.c'), path.join(A.dir, 'hello.wasm'));
  const big = padWasm(readFileSync(wasm), 5 * 1024 * 1024);
  const sha = createHash('sha256').update(big).digest('hex');
  const reg = await admin(A.fx.adminPort, 'POST', '/services', { name: 'big', prefix: '/big', module_base64: big.toString('base64') });
  assert.equal(reg.status, 201, JSON.stringify(reg.json));
  assert.equal(reg.json.service.sha256, sha);
  for (const h of [B, C]) {
    await until(`${h.name} to serve /big`, async () => (await rawRequest(h.fx.port, { target: '/big/y', headers: [['Host', 'localhost']] })).status === 200, 20_000);
    const r = await rawRequest(h.fx.port, { target: '/big/y', headers: [['Host', 'localhost']] });
    assert.equal(r.body.toString(), 'hello from /big/y');
    const svc = await h.get('/services/big');
    assert.equal(svc.service.sha256, sha);
    assert.equal(createHash('sha256').update(readFileSync(path.join(h.dir, '.flexilib/modules', `${sha}.wasm`))).digest('hex'), sha, `${h.name} stored the same bytes`);
  }
  const dupSvc = await admin(B.fx.adminPort, 'POST', '/services', { name: 'big', prefix: '/other', module_base64: big.toString('base64') });
  assert.equal(dupSvc.status, 409);
  assert.equal((await admin(B.fx.adminPort, 'DELETE', '/services/big')).status, 200);
  await until('A to stop serving /big', async () => (await rawRequest(A.fx.port, { target: '/big/y', headers: [['Host', 'localhost']] })).status !== 200, 10_000);
  await converged([A, B, C]);
  assert.equal(etcd.ctl(['get', '--prefix', '--keys-only', `/flexilib/c1/v1/modules/${sha}/`]).trim(), '', 'chunks of a module no service names are deleted');
  void sleep;
  void answeredBy;
});

/** The module with a custom section (ignored by engines) that brings it to `size` bytes. */
function padWasm(mod: Buffer, size: number): Buffer {
  const name = Buffer.from('pad');
  const leb = (n: number) => {
    const out: number[] = [];
    do {
      let b = n & 0x7f;
      n >>>= 7;
      if (n) b |= 0x80;
      out.push(b);
    } while (n);
    return Buffer.from(out);
  };
  const payloadLen = size - mod.length - 1 - 5 - 1 - name.length;
  const body = Buffer.concat([leb(name.length), name, Buffer.alloc(payloadLen, 0xab)]);
  const len = leb(body.length);
  return Buffer.concat([mod, Buffer.from([0]), len, body]);
}
