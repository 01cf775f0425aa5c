/**
 * Upstream pools on the supervisor's side, in one object the supervisor wires
 * in a few lines: the registry (membership and health), the health checker,
 * the state file, the workers' counters and the management API.
 *
 *   management API ──> persist (state file) ──> registry ──┐
 *   health checker ──────────────────────────> registry ──┼──> broadcast `upstream-state` to every worker
 *   config reload ───────────────────────────> registry ──┘
 *   workers ── upstream-failure ──> health checker;  counter files ──> counter book (read for /stats, /metrics)
 */
import type { Logger } from 'pino';
import type { Config, FromWorker, PoolState, ToWorker, UpstreamState } from '@flexilib/contract';
import { HealthChecker } from './health-checker.js';
import { PoolRegistry, type OriginRecord, type PoolRecord } from './pool-registry.js';
import { readStateFile, stateFileFor, writeStateFile, type Overlay } from './state-file.js';
import { UpstreamStats } from './stats.js';

/**
 * Cluster mode (cluster/): pool changes go to the shared state instead of the
 * state file, and resolve once this host applied them (applySharedOverlay).
 */
export interface UpstreamSharing {
  add(pool: string, url: string): Promise<void>;
  remove(origins: Array<{ pool: string; url: string }>): Promise<void>;
}

/** One origin's verdict from the cluster's elected health checker, keyed `pool url`. */
export type SharedVerdicts = ReadonlyMap<string, { healthy: boolean; detail?: string; at?: string }>;

export interface UpstreamServiceOptions {
  /** Where API changes persist; default beside the config (stateFileFor). */
  stateFile?: string;
  /** The run folder where workers keep their upstream counter files (WorkerInit.runDir). */
  runDir?: string;
}

export class UpstreamService {
  readonly registry: PoolRegistry;
  /** Counters summed over workers, live and dead: `stats.totals()`. */
  readonly stats: UpstreamStats;
  readonly stateFile: string;
  private readonly checker: HealthChecker;
  private started = false;
  /** Pools the previous config had and the new one drops, as they were: kept in
   * the workers' picture until every worker switched configs (settled()), since
   * the old routes still name them until then. */
  private retiring: PoolState[] = [];
  private sharing: UpstreamSharing | undefined;
  /** Active checks run here (always, but in cluster mode only on the elected checker or cut off from etcd). */
  private activeChecks = true;
  private readonly listeners: Array<() => void> = [];

  constructor(private config: Config, private readonly log: Logger, private readonly broadcast: (msg: ToWorker) => void, opts: UpstreamServiceOptions = {}) {
    this.stateFile = opts.stateFile ?? stateFileFor(config.file);
    this.registry = new PoolRegistry(config, {});
    this.stats = new UpstreamStats(this.registry, opts.runDir, log);
    this.checker = new HealthChecker(this.registry, log, () => this.changed());
  }

  /** Load the state file (throws FLX_UPSTREAM_STATE if it is unreadable or malformed) and start checking. Call before forking workers. */
  start(): void {
    if (!this.sharing) {
      const overlay = readStateFile(this.stateFile);
      this.registry.setOverlay(overlay);
      if (Object.keys(overlay).length) this.log.info({ file: this.stateFile, pools: Object.keys(overlay) }, 'upstream changes from the management API restored');
    }
    this.started = true;
    if (this.activeChecks) this.checker.start();
  }

  /** Cluster mode: changes go through `sharing`, not the state file. Call before start(). */
  share(sharing: UpstreamSharing): void {
    this.sharing = sharing;
  }

  /** Called after every change of membership or health (cluster mode publishes verdicts from it). */
  onChange(fn: () => void): void {
    this.listeners.push(fn);
  }

  /** Cluster mode: run active checks here or not (passive reports count either way). */
  setActiveChecks(on: boolean): void {
    if (on === this.activeChecks) return;
    this.activeChecks = on;
    if (!this.started) return;
    if (on) this.checker.start();
    else this.checker.pause();
  }

  /** Cluster mode: the shared pool changes, as applied from etcd; new origins are checked at once where checks run. */
  applySharedOverlay(overlay: Overlay): void {
    const before = new Set(this.registry.all().flatMap((p) => [...p.origins.values()]));
    this.registry.setOverlay(overlay);
    this.changed();
    if (!this.activeChecks) return;
    for (const p of this.registry.all()) for (const o of p.origins.values()) if (!before.has(o)) this.checker.check(p, o);
  }

  /** Cluster mode: verdicts of the elected checker; an origin whose verdict changes gets a new epoch (ends ejections). */
  applySharedVerdicts(verdicts: SharedVerdicts): void {
    let changed = false;
    for (const p of this.registry.all()) {
      for (const o of p.origins.values()) {
        const v = verdicts.get(`${p.name} ${o.url}`);
        if (!v || v.healthy === o.healthy) continue;
        o.healthy = v.healthy;
        o.epoch++;
        o.failures = 0;
        o.successes = 0;
        o.lastChange = v.at ?? new Date().toISOString();
        if (v.detail !== undefined) o.lastCheck = { at: o.lastChange, ok: v.healthy, detail: `${v.detail} (elected checker)` };
        changed = true;
        this.log.info({ pool: p.name, origin: o.url, healthy: v.healthy }, `upstream origin ${v.healthy ? 'up' : 'down'} (cluster's elected checker)`);
      }
    }
    if (changed) this.changed();
  }

  stop(): void {
    this.checker.stop();
    this.stats.close();
  }


  /** What a worker forked now starts with (WorkerInit.upstreams). */
  snapshot(): UpstreamState {
    const state = this.registry.snapshot();
    return this.retiring.length ? { pools: [...state.pools, ...this.retiring] } : state;
  }

  /**
   * A new, validated config (SIGHUP or file reload): pools take their new
   * settings and servers, the API's changes stay laid over them, health records
   * carry over. Call before sending the new config to the workers (pools it
   * adds must be known first), and settled() once they all switched (pools it
   * drops must stay until then).
   */
  reconfigure(config: Config): void {
    const before = this.snapshot().pools;
    this.config = config;
    this.registry.reconfigure(config);
    const kept = new Set(config.upstreams.map((u) => u.name));
    this.retiring = before.filter((p) => !kept.has(p.name));
    if (this.started && this.activeChecks) this.checker.start();
    this.changed();
  }

  /** Every worker runs the config of the last reconfigure(): the pools it dropped go now. */
  settled(): void {
    if (this.retiring.length === 0) return;
    this.retiring = [];
    this.changed();
  }

  /** Feed a worker's message; true when it was an upstream message. */
  onWorkerMessage(workerId: number, msg: FromWorker): boolean {
    if (msg.type === 'upstream-failure') {
      this.checker.reportPassive(msg.pool, msg.origin, msg.epoch, msg.code, msg.message, workerId);
      return true;
    }
    return false;
  }

  onWorkerExit(workerId: number): void {
    this.stats.workerExited(workerId);
  }

  /** Add an origin to a pool, persisted before it takes effect. `created` is false when it was already there. */
  addServer(pool: PoolRecord, url: string): { created: boolean; origin: OriginRecord } | Promise<{ created: boolean; origin: OriginRecord }> {
    if (this.sharing) {
      return this.sharing.add(pool.name, url).then(() => {
        const origin = this.registry.get(pool.name)?.origins.get(url);
        if (!origin) throw new Error(`origin ${url} was added to the cluster but pool "${pool.name}" no longer has it here`);
        return { created: true, origin };
      });
    }
    const plan = this.registry.planAdd(pool, url);
    if (plan.created) {
      writeStateFile(this.stateFile, plan.overlay);
      this.registry.setOverlay(plan.overlay);
      const origin = this.registry.get(pool.name)!.origins.get(url)!;
      this.log.info({ pool: pool.name, origin: url }, 'upstream origin added');
      this.changed();
      this.checker.check(this.registry.get(pool.name)!, origin);
    }
    return { created: plan.created, origin: this.registry.get(pool.name)!.origins.get(url)! };
  }

  /** Remove every origin at host:port (from one pool, or all); their requests in flight finish. */
  removeServers(host: string, port: number, poolName?: string): OriginRecord[] | Promise<OriginRecord[]> {
    const found: OriginRecord[] = [];
    let overlay = this.registry.currentOverlay();
    for (const p of this.registry.all()) {
      if (poolName !== undefined && p.name !== poolName) continue;
      for (const o of p.origins.values()) {
        if (o.host === host && o.port === port) {
          found.push(o);
          overlay = this.registry.planRemove(p, o.url, overlay);
        }
      }
    }
    if (found.length && this.sharing) return this.sharing.remove(found.map((o) => ({ pool: o.pool, url: o.url }))).then(() => found);
    if (found.length) {
      writeStateFile(this.stateFile, overlay);
      this.registry.setOverlay(overlay);
      for (const o of found) this.log.info({ pool: o.pool, origin: o.url }, 'upstream origin removed');
      this.changed();
    }
    return found;
  }

  private changed(): void {
    this.broadcast({ type: 'upstream-state', state: this.snapshot() });
    for (const fn of this.listeners) fn();
  }
}
