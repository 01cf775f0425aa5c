/**
 * A real etcd cluster on loopback for the cluster-mode tests (Debian's
 * etcd-server: the `etcd` binary; etcdctl from etcd-client): N members on free
 * ports, data in a temp folder, each in its own process group so that
 * kill()/stop() reach it, and every member SIGKILLed when the test process
 * exits, whatever happened.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, rmSync } from 'node:fs';
import path from 'node:path';
import { freePorts, sleep, tempDir, type TempDir } from '@flexilib/test-support';

const live = new Set<number>();
process.once('exit', () => {
  for (const pgid of live) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
});

/** Fails (never skips) when a tool is missing, naming the Debian package. */
export function requireTool(bin: string, pkg: string): void {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`]);
  if (r.status !== 0) throw new Error(`${bin} not found: install the Debian package ${pkg} (apt-get install ${pkg}); the cluster tests need a real etcd`);
}

export interface EtcdMember {
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  proc?: ChildProcess;
}

/** Client TLS: etcd serves https with `cert`/`key`, trusts `ca`, and requires client certificates signed by it. */
export interface EtcdTls {
  ca: string;
  cert: string;
  key: string;
  /** What etcdctl presents. */
  clientCert: string;
  clientKey: string;
}

export class EtcdCluster {
  readonly members: EtcdMember[] = [];
  private readonly tmp: TempDir;
  private token = `flexilib-test-${process.pid}-${Date.now()}`;
  private started = 0;

  constructor(readonly size = 3, readonly tls?: EtcdTls) {
    requireTool('etcd', 'etcd-server');
    requireTool('etcdctl', 'etcd-client');
    this.tmp = tempDir('etcd');
  }

  /** HOST:PORT,HOST:PORT,… for --cluster etcd://…/NAME. */
  get endpoints(): string {
    return this.members.map((m) => `127.0.0.1:${m.clientPort}`).join(',');
  }

  async start(): Promise<void> {
    const ports = await freePorts(this.size * 2);
    for (let i = 0; i < this.size; i++) {
      this.members.push({ name: `m${i}`, clientPort: ports[2 * i], peerPort: ports[2 * i + 1], dataDir: path.join(this.tmp.dir, `m${i}`) });
    }
    for (const m of this.members) this.spawn(m);
    await this.healthy();
  }

  private spawn(m: EtcdMember): void {
    const initial = this.members.map((x) => `${x.name}=http://127.0.0.1:${x.peerPort}`).join(',');
    mkdirSync(m.dataDir, { recursive: true });
    const log = openSync(path.join(this.tmp.dir, `${m.name}.log`), 'a');
    const scheme = this.tls ? 'https' : 'http';
    const tlsFlags = this.tls ? ['--cert-file', this.tls.cert, '--key-file', this.tls.key, '--trusted-ca-file', this.tls.ca, '--client-cert-auth'] : [];
    const proc = spawn('etcd', [
      ...tlsFlags,
      '--name', m.name,
      '--data-dir', m.dataDir,
      '--listen-client-urls', `${scheme}://127.0.0.1:${m.clientPort}`,
      '--advertise-client-urls', `${scheme}://127.0.0.1:${m.clientPort}`,
      '--listen-peer-urls', `http://127.0.0.1:${m.peerPort}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peerPort}`,
      '--initial-cluster', initial,
      '--initial-cluster-token', this.token,
      '--initial-cluster-state', 'new',
      '--logger', 'zap',
      '--log-outputs', 'stderr',
    ], { stdio: ['ignore', log, log], detached: true });
    m.proc = proc;
    live.add(proc.pid!);
    this.started++;
  }

  /** Every member answers (or those given). */
  async healthy(members = this.members, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const eps = members.map((m) => `127.0.0.1:${m.clientPort}`).join(',');
    let last = '';
    while (Date.now() < deadline) {
      const r = spawnSync('etcdctl', [...this.ctlTls(), '--endpoints', eps, '--dial-timeout=1s', '--command-timeout=2s', 'endpoint', 'health'], { encoding: 'utf8', timeout: 10_000, env: { ...process.env, ETCDCTL_API: '3' } });
      if (r.status === 0) return;
      last = `${r.stdout}${r.stderr}`;
      await sleep(200);
    }
    throw new Error(`etcd members not healthy within ${timeoutMs} ms: ${last}\n(logs in ${this.tmp.dir})`);
  }

  /** etcdctl against every member; throws with its output on failure. */
  ctl(args: string[], opts: { user?: string; input?: string } = {}): string {
    const r = spawnSync('etcdctl', [...this.ctlTls(), '--endpoints', this.endpoints, '--dial-timeout=2s', '--command-timeout=5s', ...(opts.user ? ['--user', opts.user] : []), ...args], {
      encoding: 'utf8',
      timeout: 15_000, // spawnSync blocks the test's event loop: never for long
      input: opts.input,
      env: { ...process.env, ETCDCTL_API: '3' },
    });
    if (r.status !== 0) throw new Error(`etcdctl ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    return r.stdout;
  }

  /** The member that is raft leader now. */
  leader(): EtcdMember {
    const status = JSON.parse(this.ctl(['endpoint', 'status', '-w', 'json'])) as Array<{ Endpoint: string; Status: { header: { member_id: number }; leader: number } }>;
    const s = status[0].Status;
    const leaderEp = status.find((x) => x.Status.header.member_id === s.leader)!.Endpoint;
    return this.members.find((m) => leaderEp.endsWith(`:${m.clientPort}`))!;
  }

  private ctlTls(): string[] {
    return this.tls ? ['--cacert', this.tls.ca, '--cert', this.tls.clientCert, '--key', this.tls.clientKey] : [];
  }

  /** Current revision of the key space. */
  revision(): number {
    const out = JSON.parse(this.ctl(['get', 'x', '-w', 'json'])) as { header: { revision: number } };
    return out.header.revision;
  }

  /** Signal one member's process group and wait for it to exit (SIGKILL, SIGTERM). */
  async kill(m: EtcdMember, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = m.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    try {
      process.kill(-p.pid!, signal);
    } catch {
      /* gone */
    }
    await exited;
    live.delete(p.pid!);
  }

  /** Every member running and healthy (a test that failed midway may have left some stopped). */
  async ensureUp(): Promise<void> {
    for (const m of this.members) if (!m.proc || m.proc.exitCode !== null || m.proc.signalCode !== null) this.restart(m);
    await this.healthy();
  }

  /** Replace the cluster by a new one on the same ports: empty, a new cluster id, the revision back at 1. */
  async recreate(): Promise<void> {
    await this.stopAll();
    for (const m of this.members) rmSync(m.dataDir, { recursive: true, force: true });
    this.token = `flexilib-test-${process.pid}-${Date.now()}`;
    for (const m of this.members) this.spawn(m);
    await this.healthy();
  }

  /** Start a stopped member again on its data folder. */
  restart(m: EtcdMember): void {
    this.spawn(m);
  }

  async stopAll(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await Promise.all(this.members.map((m) => this.kill(m, signal)));
  }

  /** Kill every member and remove the data. */
  async destroy(): Promise<void> {
    await this.stopAll();
    this.tmp.cleanup();
  }
}
