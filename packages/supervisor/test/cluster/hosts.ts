/**
 * flexilib hosts of one cluster for the tests: each a real flexilib (its own
 * config folder, proxy.ini, native library and state), started with
 * --cluster etcd://…/NAME; every process group killed when the test ends.
 */
import path from 'node:path';
import { admin, compilePlugin, fixture, request, startFlexilib, tempDir, until, writeConfig, type Flexilib } from '@flexilib/test-support';
import type { EtcdCluster } from './etcd-cluster.js';

export interface Host {
  name: string;
  fx: Flexilib;
  dir: string;
  config: string;
  args: string[];
  /** GET on the admin listener, JSON. */
  get(target: string): Promise<any>;
}

type T = { after(fn: () => unknown): void };

/** The hosts started in each temp folder (a host restarted on its folder included). */
const hostsIn = new Map<string, Flexilib[]>();

/** One pool `api` of `origins`, checked every 300 ms, and a native route /native served by versioned.c (VERSION `libVersion`). */
export async function startHost(t: T, etcd: EtcdCluster, cluster: string, name: string, origins: string[], opts: { libVersion?: string; args?: string[]; env?: NodeJS.ProcessEnv; dir?: string } = {}): Promise<Host> {
  let dir = opts.dir;
  if (!dir) {
    const tmp = tempDir(`cluster-${name}`);
    const d = tmp.dir;
    hostsIn.set(d, []);
    // Its hosts die before the folder goes. (A folder removed under a live
    // host, writing its cluster snapshot, failed with ENOTEMPTY and skipped
    // the later kill hook: the test process never exited.)
    t.after(async () => {
      await Promise.all(hostsIn.get(d)!.map((f) => f.kill()));
      hostsIn.delete(d);
      tmp.cleanup();
    });
    dir = d;
  }
  const lib = await compilePlugin(fixture('versioned.c'), path.join(dir, 'libversioned.so'), { defines: [`VERSION="${opts.libVersion ?? 'v1'}"`] });
  const config = writeConfig(dir, `/api = upstream:api
/native = ${lib}

[upstream.api]
servers = ${origins.join(', ')}
health_path = /health
health_interval = 300ms
health_timeout = 2s
`);
  const args = ['--cluster', `etcd://${etcd.endpoints}/${cluster}`, '--spare-workers', '0', ...(opts.args ?? [])];
  const fx = await startFlexilib({ config, workers: 1, accessLog: false, args, env: opts.env });
  const sharing = hostsIn.get(dir);
  if (sharing) sharing.push(fx);
  else t.after(() => fx.kill());
  return { name, fx, dir, config, args, get: async (target) => (await admin(fx.adminPort, 'GET', target)).json };
}

/** Every host reaches etcd and reports the same digest of its applied state (revisions differ: each is the etcd revision its state is current as of). */
export async function converged(hosts: Host[], timeoutMs = 15_000): Promise<{ revision: number; digest: string }> {
  let views: any[] = [];
  await until(
    `hosts ${hosts.map((h) => h.name).join(', ')} to converge`,
    async () => {
      views = await Promise.all(hosts.map((h) => h.get('/cluster')));
      return views.every((v) => v.status === 'ok' && v.digest === views[0].digest);
    },
    timeoutMs,
  ).catch((err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify(views.map((v) => ({ member: v.member, status: v.status, revision: v.revision, digest: v.digest })))}`);
  });
  return { revision: views[0].revision, digest: views[0].digest };
}

/** Which origin answered /api on this host (x-origin), on a fresh connection. */
export async function answeredBy(host: Host): Promise<string | undefined> {
  const r = await request(host.fx.port, '/api/x', { timeoutMs: 5000 });
  return r.status === 200 ? String(r.headers['x-origin']) : `status ${r.status}`;
}
