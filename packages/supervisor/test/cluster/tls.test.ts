/**
 * Cluster mode over TLS with client certificates: a real etcd serving https
 * and requiring a certificate signed by its CA (made here with openssl), and
 * flexilib hosts given --cluster-ca, --cluster-cert and --cluster-key. A host
 * without a client certificate is refused by etcd: it serves, unreachable.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { admin, request, tempDir, until } from '@flexilib/test-support';
import { startOrigin } from '../upstream/origins.js';
import { EtcdCluster, requireTool, type EtcdTls } from './etcd-cluster.js';
import { converged, startHost } from './hosts.js';

function makeCertificates(dir: string): EtcdTls {
  requireTool('openssl', 'openssl');
  const f = (n: string) => path.join(dir, n);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=flexilib test CA', '-keyout', f('ca.key'), '-out', f('ca.pem'));
  writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  writeFileSync(f('client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, cn] of [['server', '127.0.0.1'], ['client', 'flexilib']]) {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`));
    ssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', f(`${name}.ext`), '-out', f(`${name}.pem`));
  }
  return { ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key'), clientCert: f('client.pem'), clientKey: f('client.key') };
}

test('TLS to etcd with a client certificate; without one, etcd refuses the host and it serves unreachable', { timeout: 90_000 }, async (t) => {
  const certs = tempDir('cluster-tls');
  t.after(() => certs.cleanup());
  const tls = makeCertificates(certs.dir);
  const etcd = new EtcdCluster(1, tls);
  t.after(() => etcd.destroy());
  await etcd.start();

  const a = await startOrigin(t, 'a');
  const x = await startOrigin(t, 'x');
  const args = ['--cluster-ca', tls.ca, '--cluster-cert', tls.clientCert, '--cluster-key', tls.clientKey];
  const A = await startHost(t, etcd, 'tls', 'A', [a.url], { args });
  const B = await startHost(t, etcd, 'tls', 'B', [a.url], { args });
  assert.equal((await admin(A.fx.adminPort, 'POST', '/servers', { url: x.url, pool: 'api' })).status, 201);
  await converged([A, B]);
  await until('x to get B\'s traffic', async () => (await request(B.fx.port, '/api/y')).headers['x-origin'] === 'x', 5000);
  assert.match(etcd.ctl(['get', '--prefix', '--keys-only', '/flexilib/tls/v1/state/servers/']), /servers\/api\//);

  const C = await startHost(t, etcd, 'tls', 'C', [a.url], { args: ['--cluster-ca', tls.ca] });
  const view = await C.get('/cluster');
  assert.equal(view.status, 'unreachable', 'no client certificate: etcd refuses the connection');
  assert.ok(C.fx.logs.some((l) => l.code === 'FLX_CLUSTER_UNREACHABLE'), 'and the host says so in its log');
  assert.equal((await request(C.fx.port, '/api/z')).headers['x-origin'], 'a', 'it serves its own config meanwhile');
});
