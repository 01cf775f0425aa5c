/**
 * The supervisor: owns the workers and everything that happens to them, and
 * tells the world through typed events (events.ts).
 *
 *   WorkerPool ── fork / replace (backoff) ──────────────┐
 *   crash-attribution + Quarantine (CrashLedger) ───────┤
 *   HangWatch ── kill workers stuck in a plugin call ────┤── Supervisor (EventEmitter) ──> events
 *   LibraryWatcher + LibraryReloader ── hot reload ──────┤
 *   ConfigReload ── SIGHUP ──────────────────────────────┤
 *   Shutdown ── SIGTERM/SIGINT ──────────────────────────┤
 *   SdNotify ── systemd ─────────────────────────────────┘
 *
 * Every piece is wired here and nowhere else; each file owns one concern.
 */
import { EventEmitter } from 'node:events';
import { rmSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { libraryCopyDir, type Config, type FromWorker, type ToWorker, type WorkerInit } from '@flexilib/contract';
import { AdminServer } from './admin/admin-server.js';
import { Cluster } from './cluster/cluster.js';
import { registerHealthRoutes } from './admin/health-routes.js';
import { registerMetricsRoutes } from './admin/metrics-routes.js';
import { StatusCollector } from './admin/status/collector.js';
import { registerStatusRoutes } from './admin/status/routes.js';
import { logSupervisorEvents } from './event-log.js';
import { FlexilibMetrics } from './metrics/flexilib-metrics.js';
import { ConfigGenerations } from './config-generations.js';
import { ConfigReload, librariesOf, nativeLibrariesOf, type ConfigOutcome } from './config-reload.js';
import { attributeDeath, countsAsPluginCrash, exitReason, type Attribution } from './crash-attribution.js';
import { CrashLedger } from './crash-ledger.js';
import type { SupervisorEvents, WorkerExitEvent } from './events.js';
import { HangWatch } from './hang-watch.js';
import { LibraryReloader } from './library-reloader.js';
import { LibraryStore } from './library-store.js';
import { LibraryWatcher } from './library-watcher.js';
import { ListenSocket } from './listen-socket.js';
import { packageVersion } from './package-version.js';
import { Quarantine } from './quarantine.js';
import { createRunDir } from './run-dir.js';
import { SdNotify } from './sd-notify.js';
import type { Settings } from './settings.js';
import { Shutdown } from './shutdown.js';
import { upstreamMetrics } from './upstream/metrics.js';
import { registerServersApi } from './upstream/servers-api.js';
import { UpstreamService } from './upstream/upstream-service.js';
import { WasmServices } from './wasm/services-api.js';
import { FunctionHost } from './lambda/function-host.js';
import { FileFunctionStore } from './lambda/function-store.js';
import { LambdaApi } from './lambda/lambda-api.js';
import { WorkerPool, type PoolWorker } from './worker-pool.js';

export class Supervisor extends EventEmitter<SupervisorEvents> {
  private announced = false;
  /** The traffic port, once a worker listens. */
  port: number | undefined;
  /** The traffic socket, bound in start() and held until exit (listen-socket.ts). */
  private socket: ListenSocket | undefined;
  /** The admin listener; each feature registers its own endpoints on it. */
  readonly admin: AdminServer;
  /** Files shared with the workers (see WorkerInit.runDir); removed at exit. */
  readonly runDir: string;
  readonly generations: ConfigGenerations;
  readonly ledger: CrashLedger;
  readonly pool: WorkerPool;
  private readonly hangWatch: HangWatch;
  private readonly watcher: LibraryWatcher | undefined;
  private readonly reloader: LibraryReloader;
  /** The last complete version of each native library, where workers load it from. */
  private readonly store: LibraryStore;
  private readonly configReload: ConfigReload;
  private readonly quarantine: Quarantine;
  private readonly shutdown: Shutdown;
  private notify: SdNotify | undefined;
  /** Upstream pools: health checks, management API, state file (see upstream/upstream-service.ts). */
  readonly upstreams: UpstreamService;
  /** WASM services registered on the admin API (state in .flexilib/ beside the config). */
  readonly wasm: WasmServices;
  /** Lambda functions and their environments, shared by every worker (lambda/function-host.ts). */
  readonly lambda: FunctionHost;
  /** AWS Lambda's API on the admin listener (created functions persist in .flexilib/lambda/ beside the config). */
  private readonly lambdaApi: LambdaApi;
  /** Cluster mode (--cluster): pools, services and health shared through etcd (cluster/). */
  readonly cluster: Cluster | undefined;

  constructor(private readonly settings: Settings, config: Config, private readonly log: Logger, private readonly exit: (code: number) => void = (c) => process.exit(c)) {
    super();
    this.runDir = createRunDir();
    const sup = settings.supervision;
    this.generations = new ConfigGenerations(config);
    this.ledger = new CrashLedger({ crashes: sup.quarantineCrashes, windowS: sup.quarantineWindowS });
    this.pool = this.createPool();
    this.quarantine = new Quarantine({ ledger: this.ledger, pool: this.pool, routesOf: (library) => this.routesOf(library), events: this, log });
    this.hangWatch = new HangWatch(sup.hangTimeoutMs, () => this.pool.all(), (w, stuckMs) => {
      log.error({ code: 'FLX_WORKER_HANG', workerPid: w.pid, stuckMs }, `worker ${w.pid} is stuck in an inline plugin call for ${stuckMs} ms (--hang-timeout ${sup.hangTimeoutMs}); killing it`);
      this.pool.kill(w, 'hang');
    });
    this.store = new LibraryStore(this.runDir, log);
    this.reloader = new LibraryReloader({
      pool: this.pool,
      log,
      isLibrary: (file) => librariesOf(this.generations.current).includes(file),
      liftQuarantine: (file) => this.quarantine.liftChanged(file),
      emit: (e) => this.emit('library-reloaded', e),
      store: (file, bytes) => this.store.put(file, bytes),
    });
    this.watcher = sup.watch ? new LibraryWatcher(sup.reloadDebounceMs, (file) => this.reloader.changed(file), log) : undefined;
    this.configReload = this.createConfigReload();
    this.shutdown = this.createShutdown();

    this.admin = new AdminServer(settings.admin, log);
    registerHealthRoutes(this.admin, () => ({
      ready: this.announced && !this.shutdown.stopping && this.pool.listening().length >= this.settings.workers,
      workers: this.pool.all().length,
      listening: this.pool.listening().length,
      ...(this.cluster ? { cluster: this.cluster.readiness() } : {}),
    }));
    this.upstreams = new UpstreamService(config, log, (msg) => this.broadcast(msg), { runDir: this.runDir });
    // GET/POST/DELETE /servers, GET /stats, GET /stats/detail
    registerServersApi(this.admin, this.upstreams);
    const configDir = path.dirname(config.file);
    this.wasm = new WasmServices(this.admin, { stateDir: path.join(configDir, '.flexilib'), modulesDir: settings.modulesDir ?? configDir, arenaBytes: settings.worker.arenaBytes, log, pool: this.pool });
    this.lambda = new FunctionHost(log, sup.reloadDebounceMs);
    // Environments are child processes: whatever ends the supervisor ends them.
    process.once('exit', () => this.lambda.stop());
    this.lambdaApi = new LambdaApi(this.admin, { host: this.lambda, store: new FileFunctionStore(path.join(configDir, '.flexilib', 'lambda')), log });
    logSupervisorEvents(this, log);
    const metrics = new FlexilibMetrics(this, this.runDir, log);
    upstreamMetrics(metrics.registry, this.upstreams);
    registerMetricsRoutes(this.admin, metrics);
    this.cluster = settings.cluster
      ? new Cluster(settings.cluster, {
        admin: this.admin, upstreams: this.upstreams, wasm: this.wasm, lambda: this.lambdaApi, metrics: metrics.registry, log, stateDir: path.join(configDir, '.flexilib'),
        libraries: () => librariesOf(this.config), version: packageVersion(), adminAddress: () => `${settings.admin.host}:${this.admin.port}`, trafficPort: () => this.port,
      })
      : undefined;
    const status = new StatusCollector({
      events: this, pool: this.pool, ledger: this.ledger, generations: this.generations, upstreams: this.upstreams,
      services: () => this.wasm.current(), aggregator: metrics.aggregator, port: () => this.port,
    });
    registerStatusRoutes(this.admin, status);
  }

  /** The workers, and what happens to them at each step of their life. */
  private createPool(): WorkerPool {
    const sup = this.settings.supervision;
    return new WorkerPool(this.settings.workers, sup.spareWorkers, this.runDir, {
      init: () => ({ init: this.workerInit(), quarantineVersion: this.ledger.version }),
      socket: () => this.socket!.handle,
      beforeListen: (w) => {
        // A spare forked before the latest upstream change may have missed its
        // broadcast while booting: bring it up to date before it takes traffic.
        this.pool.send(w, { type: 'upstream-state', state: this.upstreams.snapshot() });
        if (this.isStale(w)) void this.sendConfig([w]);
      },
      started: (w) => this.emit('worker-start', { pid: w.pid, id: w.id, standby: w.standby, ...(w.replaces ? { replaces: { pid: w.replaces.pid, id: w.replaces.id } } : {}) }),
      listening: (w, port) => this.onListening(w, port),
      message: (w, msg) => this.onMessage(w, msg),
      exited: (w, code, signal, restartInMs) => this.onExit(w, code, signal, restartInMs),
    }, this.log);
  }

  /** SIGHUP: validate, prepare the upstream pools and library copies, switch the workers, tell systemd. */
  private createConfigReload(): ConfigReload {
    return new ConfigReload({
      configFile: this.settings.configFile,
      pool: this.pool,
      generations: this.generations,
      log: this.log,
      prepare: (next) => {
        this.upstreams.reconfigure(next);
        this.lambda.configure(next.lambdas ?? []);
        this.store.sync(nativeLibrariesOf(next));
      },
      settled: () => this.upstreams.settled(),
      lifted: () => this.quarantine.liftAll(),
      sendConfig: (workers) => this.sendConfig(workers),
      watch: async (files) => {
        await this.watcher?.watch(files);
      },
      onReloading: () => {
        this.notify?.reloading();
        this.emit('reloading', { trigger: 'SIGHUP' });
      },
      onReloaded: (e) => {
        this.notify?.ready(`serving config generation ${e.generation}`);
        this.emit('reloaded', e);
      },
      onFailed: (e) => {
        this.notify?.ready(`serving the previous config; reload refused: ${e.problems.length ? `${e.problems.length} problem(s)` : e.message}`);
        this.emit('reload-failed', e);
      },
    });
  }

  /** SIGTERM/SIGINT: stop taking connections, drain the workers, exit. */
  private createShutdown(): Shutdown {
    return new Shutdown({
      pool: this.pool,
      drainTimeoutMs: this.settings.supervision.drainTimeoutMs,
      log: this.log,
      quiesce: () => {
        // New connections are refused from now on; the workers finish what they accepted.
        this.socket?.close();
        this.hangWatch.stop();
        this.notify?.stopWatchdog();
        void this.watcher?.close();
        void this.admin.close();
        this.upstreams.stop();
        void this.cluster?.stop();
      },
      onStopping: (e) => {
        this.notify?.stopping();
        this.emit('stopping', e);
      },
      onStopped: (e) => this.emit('stopped', e),
      // Cluster mode: the health checker's seat and the member key are given up before exiting (bounded).
      // Lambda environments stop after the drain (workers may still be invoking them).
      exit: (code) => void (this.cluster?.stop() ?? Promise.resolve()).finally(() => {
        this.lambda.stop();
        this.exit(code);
      }),
    });
  }

  /** Send to every worker, spares included (they serve next). */
  private broadcast(msg: ToWorker): void {
    for (const w of this.pool.all()) this.pool.send(w, msg);
  }

  get config(): Config {
    return this.generations.current;
  }

  async start(): Promise<void> {
    this.notify = await SdNotify.fromEnv(process.env, this.log);
    this.socket = await ListenSocket.bind(this.settings.worker.host, this.settings.worker.port);
    const adminPort = await this.admin.listen();
    this.log.info({ host: this.settings.admin.host, port: adminPort }, 'admin listening');
    this.store.sync(nativeLibrariesOf(this.config));
    await this.watcher?.watch(librariesOf(this.config));
    this.upstreams.start();
    this.wasm.load();
    await this.lambda.listen();
    this.lambda.configure(this.config.lambdas ?? []);
    this.lambdaApi.load();
    await this.cluster?.start();
    this.pool.start();
    this.hangWatch.start();
    process.on('SIGTERM', () => this.stop('SIGTERM'));
    process.on('SIGINT', () => this.stop('SIGINT'));
    process.on('SIGHUP', () => this.reload());
  }

  /** Graceful stop (SIGTERM/SIGINT); a second call stops at once. */
  stop(signal: string): void {
    this.shutdown.begin(signal);
  }

  /** Re-read the config (SIGHUP). */
  reload(): void {
    if (this.shutdown.stopping) return;
    this.configReload.request();
  }

  private workerInit(): WorkerInit {
    return {
      options: this.settings.worker,
      config: this.generations.current,
      generation: this.generations.generation,
      quarantined: this.ledger.notices(),
      runDir: this.runDir,
      upstreams: this.upstreams.snapshot(),
      services: this.wasm.current(),
      lambdaPort: this.lambda.port,
    };
  }

  /** Did the config or the quarantine set change since this worker last took them? */
  private isStale(w: PoolWorker): boolean {
    return w.generation !== this.generations.generation || w.quarantineVersion !== this.ledger.version;
  }

  /** Ask workers to take the current config and quarantine set; resolves with each one's answer. */
  private sendConfig(workers: PoolWorker[]): Promise<ConfigOutcome[]> {
    for (const w of workers) {
      w.generation = this.generations.generation;
      w.quarantineVersion = this.ledger.version;
    }
    return this.pool.requestAll(workers, { type: 'config', config: this.generations.current, generation: this.generations.generation, quarantined: this.ledger.notices() });
  }

  private routesOf(library: string): string[] {
    return this.config.routes.filter((r) => r.target.kind === 'native' && r.target.library === library).map((r) => r.key);
  }

  private onListening(w: PoolWorker, port: number): void {
    this.port = port;
    const now = Date.now();
    const replacement = w.replaces ? { sinceDeathMs: now - w.replaces.diedAt, replaces: { pid: w.replaces.pid, id: w.replaces.id } } : {};
    this.log.info({ event: 'worker-listening', workerId: w.id, workerPid: w.pid, port, startMs: now - w.startedAt, ...replacement }, 'worker listening');
    // Same for a worker that listened on its own: a change while it booted may have been missed.
    this.pool.send(w, { type: 'upstream-state', state: this.upstreams.snapshot() });
    this.emit('worker-listening', { pid: w.pid, id: w.id, port, startMs: now - w.startedAt, ...replacement });
    // Its WorkerInit went stale while it started (SIGHUP, quarantine): re-sync it.
    if (this.isStale(w)) void this.sendConfig([w]);
    if (!this.announced && this.pool.listening().length >= this.settings.workers) {
      this.announced = true;
      const e = { port, host: this.settings.worker.host, workers: this.settings.workers, adminPort: this.admin.port, config: this.config.file };
      this.log.info(e, 'flexilib listening');
      this.notify?.ready(`serving on port ${port} with ${this.settings.workers} worker(s)`);
      this.notify?.startWatchdog();
      this.emit('ready', e);
    }
  }

  private onMessage(w: PoolWorker, msg: FromWorker): void {
    if (this.upstreams.onWorkerMessage(w.id, msg)) return;
    if (msg.type === 'retire') {
      if (this.shutdown.stopping || w.retired) return;
      this.log.warn({ event: 'worker-retire', code: 'FLX_PLUGIN_TIMEOUT', workerId: w.id, workerPid: w.pid, reason: msg.reason }, `worker ${w.pid}: ${msg.reason}; replacing it, it exits once its other requests finish`);
      this.pool.retire(w);
    }
  }

  private onExit(w: PoolWorker, code: number | null, signal: string | null, restartInMs: number | undefined): void {
    this.upstreams.onWorkerExit(w.id);
    const attribution = attributeDeath(w.marker, this.generations);
    rmSync(libraryCopyDir(this.runDir, w.id), { recursive: true, force: true });
    const reason = exitReason(code, signal, this.shutdown.stopping, w.killedFor, w.retired);
    const counted = countsAsPluginCrash(reason, attribution);
    const sole = attribution.libraries.length === 1;
    const first = attribution.inCall.find((c) => c.library);
    const e: WorkerExitEvent = {
      pid: w.pid,
      id: w.id,
      code,
      signal,
      reason,
      ...(sole && first ? { route: first.route, library: first.library } : {}),
      inCall: attribution.inCall,
      counted,
      ...(restartInMs !== undefined ? { restartInMs } : {}),
      uptimeMs: Date.now() - w.startedAt,
    };
    this.logExit(w, e, attribution);
    this.emit('worker-exit', e);
    // Before the replacement forks, so it starts with the quarantine.
    if (counted && !this.shutdown.stopping) this.quarantine.recordDeath(attribution, reason === 'hang' ? 'hang' : signal ?? `exit code ${code}`);
  }

  private logExit(w: PoolWorker, e: WorkerExitEvent, attribution: Attribution): void {
    const { code, signal, reason, restartInMs } = e;
    if (reason === 'stopped' || reason === 'retired') {
      this.log.info({ event: 'worker-exit', workerId: w.id, workerPid: w.pid, code, signal, reason }, reason === 'stopped' ? 'worker stopped' : 'retired worker exited');
      return;
    }
    const how = reason === 'hang' ? 'killed for hanging' : signal ? `killed by ${signal}` : `exited with code ${code}`;
    const where = attribution.inCall.length === 0
      ? ''
      : ` while calling ${attribution.inCall.map((c) => (c.route ? `route "${c.route}" (library ${c.library})` : `an unknown route (${c.mode})`)).join(', ')}`;
    const next = restartInMs === undefined ? 'not replacing it' : w.standby ? `a spare; forking a new one in ${restartInMs} ms` : restartInMs === 0 ? 'replacing it now' : `replacing it in ${restartInMs} ms`;
    this.log.error(
      { event: 'worker-exit', code: 'FLX_WORKER_EXIT', workerId: w.id, workerPid: w.pid, exitCode: code, signal, reason, route: e.route, library: e.library, inCall: e.inCall, restartInMs },
      `worker ${w.pid} ${how}${where}; ${next}`,
    );
  }
}
