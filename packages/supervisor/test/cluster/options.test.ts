/** The cluster contract on the command line: --cluster and its companions, their variables, and every bad value named (exit 2). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '@flexilib/test-support';
import { resolveSettings } from '../../src/settings.js';

test('without --cluster: one host, no cluster settings', () => {
  assert.equal(resolveSettings([], {}).cluster, undefined);
});

test('--cluster and FLEXILIB_CLUSTER*, flags over variables', () => {
  const env = { FLEXILIB_CLUSTER: 'etcd://10.0.0.1:2379,10.0.0.2:2379/prod', FLEXILIB_CLUSTER_USER: 'flexi', FLEXILIB_CLUSTER_PASSWORD: 'pw' };
  assert.deepEqual(resolveSettings([], env).cluster, { spec: env.FLEXILIB_CLUSTER, name: 'prod', endpoints: ['10.0.0.1:2379', '10.0.0.2:2379'], user: 'flexi', password: 'pw' });
  const s = resolveSettings(['--cluster', 'etcd://[::1]:2379,etcd-b:2379/edge.eu', '--cluster-ca', '/ca.pem', '--cluster-cert', '/c.pem', '--cluster-key', '/k.pem'], env).cluster;
  assert.deepEqual(s, { spec: 'etcd://[::1]:2379,etcd-b:2379/edge.eu', name: 'edge.eu', endpoints: ['[::1]:2379', 'etcd-b:2379'], user: 'flexi', password: 'pw', tls: { ca: '/ca.pem', cert: '/c.pem', key: '/k.pem' } });
});

test('bad cluster settings name the flag or variable', () => {
  for (const [args, env, what] of [
    [['--cluster', 'http://127.0.0.1:2379/x'], {}, /--cluster: "http:\/\/127.0.0.1:2379\/x" is not a cluster address \(expected etcd:\/\/HOST:PORT/],
    [['--cluster', 'etcd://127.0.0.1/x'], {}, /--cluster: .* has "127.0.0.1" where HOST:PORT belongs/],
    [['--cluster', 'etcd://127.0.0.1:70000/x'], {}, /has port 70000/],
    [[], { FLEXILIB_CLUSTER: 'etcd://127.0.0.1:2379/a b' }, /FLEXILIB_CLUSTER: .* has cluster name "a b"/],
    [['--cluster-user', 'u'], {}, /--cluster-user needs --cluster/],
    [['--cluster', 'etcd://h:1/n', '--cluster-user', 'u'], {}, /give both --cluster-user and --cluster-password/],
    [['--cluster', 'etcd://h:1/n', '--cluster-cert', 'c'], {}, /give both --cluster-cert and --cluster-key/],
    [['--cluster', 'etcd://h:1/n', '--cluster-cert', 'c', '--cluster-key', 'k'], {}, /a client certificate needs --cluster-ca/],
  ] as const) {
    assert.throws(() => resolveSettings([...args], { ...env }), (e: Error & { code?: string }) => e.code === 'FLX_USAGE' && what.test(e.message), String(what));
  }
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'packages/supervisor/bin/flexilib'), '--cluster', 'etcd://nowhere/x'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--cluster: "etcd:\/\/nowhere\/x"/);
  const help = spawnSync(process.execPath, [path.join(repoRoot, 'packages/supervisor/bin/flexilib'), '--help'], { encoding: 'utf8' });
  assert.match(help.stdout, /--cluster etcd:\/\/HOST:PORT\[,HOST:PORT\.\.\.\]\/NAME/);
  assert.match(help.stdout, /FLEXILIB_CLUSTER_PASSWORD/);
});
