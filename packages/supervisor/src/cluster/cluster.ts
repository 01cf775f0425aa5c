/**
 * Cluster mode, wired in one object the supervisor creates only with
 * --cluster (without it nothing here runs and one host keeps its state files):
 *
 *   etcd ── list + watch (shared-store) ──> apply ──> upstream pools (servers/), verdicts (health/),
 *                                                     WASM services (services/ + module chunks),
 *                                                     Lambda API functions (functions/ + zip chunks)
 *   POST/DELETE /servers, /services ──> transactions (upstream-sharing, service-sharing) ──> etcd
 *   Create/UpdateFunctionCode/DeleteFunction ──> transactions (function-sharing) ──> etcd
 *   election (health-leader) ──> this host runs active checks and publishes verdicts, or applies them
 *   membership ──> members/<id> under a lease ──> GET /cluster
 *
 * Cut off from etcd, a host serves the last state, runs its own active
 * checks, and answers shared mutations 503 with Retry-After.
 */
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { Etcd3, Namespace } from 'etcd3';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import type { AdminServer } from '../admin/admin-server.js';
import type { LambdaApi } from '../lambda/lambda-api.js';
import type { UpstreamService } from '../upstream/upstream-service.js';
import type { WasmServices } from '../wasm/services-api.js';
import { connectEtcd } from './etcd.js';
import { FunctionClusterSharing } from './function-sharing.js';
import { HealthLeader } from './health-leader.js';
import { libraryMismatches, Membership, type MemberRecord } from './membership.js';
import type { ClusterSettings } from './options.js';
import { ServiceClusterSharing } from './service-sharing.js';
import { SharedStore } from './shared-store.js';
import { unreachable, UpstreamClusterSharing } from './upstream-sharing.js';

/** Admin paths whose mutations change shared state. */
const SHARED_PATHS = /^\/(servers|services|functions)(\/|$)/;
const LIST_TIMEOUT_MS = 2000;
/** A graceful stop waits this long at most for etcd to take the resignation. */
const STOP_TIMEOUT_MS = 2000;

export interface ClusterHost {
  admin: AdminServer;
  upstreams: UpstreamService;
  wasm: WasmServices;
  /** The Lambda API: its created functions are shared. */
  lambda: LambdaApi;
  metrics: Registry;
  log: Logger;
  /** Where this host keeps its local snapshot (the config's .flexilib/ folder). */
  stateDir: string;
  /** Native libraries the current config serves (their sha256 go into the membership record). */
  libraries: () => string[];
  version: string;
  /** host:port of the admin listener (once it listens). */
  adminAddress: () => string;
  trafficPort: () => number | undefined;
}

export interface ClusterReadiness {
  status: 'starting' | 'ok' | 'unreachable';
  revision: number;
  staleSeconds: number;
  healthChecker: boolean;
}

export class Cluster {
  private readonly client: Etcd3;
  private readonly ns: Namespace;
  readonly store: SharedStore;
  private readonly servers: UpstreamClusterSharing;
  private readonly services: ServiceClusterSharing;
  private readonly functions: FunctionClusterSharing;
  private leader: HealthLeader | undefined;
  private membership: Membership | undefined;
  private member = `${os.hostname()}:${process.pid}`;
  private digest = '';
  private knownMembers: MemberRecord[] = [];
  private publishing: Promise<void> | undefined;
  private publishAgain = false;
  private readonly log: Logger;
  private stopping: Promise<void> | undefined;

  constructor(private readonly settings: ClusterSettings, private readonly host: ClusterHost) {
    this.log = host.log.child({ cluster: settings.name });
    const { client, ns } = connectEtcd(settings);
    this.client = client;
    this.store = new SharedStore(ns, settings.name, path.join(host.stateDir, `cluster-${settings.name}.json`), this.log, (_kvs, changed) => this.apply(changed));
    this.servers = new UpstreamClusterSharing(ns, this.store, host.upstreams, () => this.member);
    this.services = new ServiceClusterSharing(ns, this.store, host.wasm);
    host.upstreams.share(this.servers);
    host.wasm.share(this.services);
    this.functions = new FunctionClusterSharing(ns, this.store, host.lambda);
    host.lambda.share(this.functions);
    host.upstreams.onChange(() => this.publish());
    this.store.on('up', () => this.checkMode());
    this.store.on('down', () => this.checkMode());
    host.admin.gate((req) => {
      if (SHARED_PATHS.test(req.path) && this.store.status !== 'ok') throw unreachable();
    });
    host.admin.route('GET', '/cluster', () => this.view().then((json) => ({ json })));
    this.registerMetrics(host.metrics);
    this.ns = ns;
  }

  /**
   * After the admin listener is up, before the workers fork: the local
   * snapshot, then etcd (bounded; unreachable is no error, a refused user is).
   */
  async start(): Promise<void> {
    this.member = `${os.hostname()}:${this.host.admin.port}`;
    await this.store.restoreSnapshot();
    await this.store.start();
    this.log.info({ etcd: this.settings.endpoints, member: this.member, status: this.store.status, revision: this.store.appliedRevision }, 'cluster mode');
    this.leader = new HealthLeader(this.ns, this.settings.name, this.member, this.log, () => this.checkMode());
    this.leader.start();
    this.membership = new Membership(
      this.ns,
      this.member,
      () => ({
        id: this.member,
        admin: this.host.adminAddress(),
        port: this.host.trafficPort(),
        pid: process.pid,
        version: this.host.version,
        revision: this.store.appliedRevision,
        digest: this.digest,
        startedAt: startedAt,
      }),
      this.host.libraries,
      this.log,
    );
    this.membership.start();
    this.checkMode();
  }

  /** Graceful stop: resign the health checker's seat and leave the member list at once. */
  stop(): Promise<void> {
    this.stopping ??= withTimeout(Promise.all([this.leader?.stop(), this.membership?.stop()]), STOP_TIMEOUT_MS)
      .catch(() => undefined)
      .then(() => this.store.stop())
      .finally(() => this.client.close());
    return this.stopping;
  }

  readiness(): ClusterReadiness {
    return { status: this.store.status, revision: this.store.appliedRevision, staleSeconds: this.store.staleSeconds(), healthChecker: this.leader?.leading ?? false };
  }

  /** Active checks here when elected, or when cut off from etcd; else the elected checker's verdicts. */
  private checkMode(): void {
    const elected = this.store.status === 'ok' && (this.leader?.leading ?? false);
    const active = elected || this.store.status !== 'ok';
    this.host.upstreams.setActiveChecks(active);
    if (!active) this.host.upstreams.applySharedVerdicts(this.servers.verdicts());
    if (elected) this.publish();
  }

  private async apply(changed: ReadonlySet<string>): Promise<void> {
    const touched = (prefix: string) => [...changed].some((k) => k.startsWith(prefix));
    if (touched('servers/')) this.host.upstreams.applySharedOverlay(this.servers.overlay());
    if (touched('health/') && !(this.leader?.leading && this.store.status === 'ok')) this.host.upstreams.applySharedVerdicts(this.servers.verdicts());
    if (touched('services/')) await this.services.apply();
    if (touched('functions/')) await this.functions.apply();
    const h = createHash('sha256');
    for (const [k, v] of this.store.entries('').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) h.update(`${k}\0${v}\n`);
    this.digest = h.digest('hex');
    void this.membership?.refresh();
  }

  /** The elected checker's verdict changes go to etcd, one publication at a time. */
  private publish(): void {
    if (!this.leader?.leading || this.store.status !== 'ok' || !this.leader.guardKey) return;
    if (this.publishing) {
      this.publishAgain = true;
      return;
    }
    const key = this.leader.guardKey;
    this.publishing = this.servers
      .publishVerdicts(key)
      .catch((err: Error) => this.log.warn({ err: err.message }, 'health verdicts not published'))
      .finally(() => {
        this.publishing = undefined;
        if (this.publishAgain) {
          this.publishAgain = false;
          this.publish();
        }
      });
  }

  private async view() {
    let leader: string | undefined;
    if (this.store.status === 'ok') {
      try {
        [this.knownMembers, leader] = await withTimeout(Promise.all([this.membership!.list(), this.leader!.leader()]), LIST_TIMEOUT_MS);
      } catch {
        /* etcd went away meanwhile: the last list */
      }
    }
    const r = this.readiness();
    return {
      cluster: this.settings.name,
      member: this.member,
      status: r.status,
      revision: r.revision,
      staleSeconds: r.staleSeconds,
      digest: this.digest,
      leader: leader ?? null,
      healthChecker: r.healthChecker,
      members: this.knownMembers.map((m) => ({ ...m, self: m.id === this.member })),
      librariesDiffer: libraryMismatches(this.knownMembers),
    };
  }

  private registerMetrics(registry: Registry): void {
    const registers = [registry];
    const store = this.store;
    new Gauge({
      name: 'flexilib_cluster_up',
      help: 'Cluster mode: 1 while etcd answers, 0 while this host serves its last applied state.',
      registers,
      collect() {
        this.set(store.status === 'ok' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'flexilib_cluster_revision',
      help: 'Cluster mode: the etcd revision of the shared state this host applied.',
      registers,
      collect() {
        this.set(store.appliedRevision);
      },
    });
  }
}

const startedAt = new Date().toISOString();

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)))]).finally(() => clearTimeout(t));
}
