/**
 * SIGHUP: re-read and validate the config; switch every worker to it, or keep
 * serving the old one when it is invalid.
 *
 *   SIGHUP ──> RELOADING=1 ──> loadConfig ──invalid──> log every problem with its line ──> READY=1
 *                                  │valid
 *              upstream pools of both configs to every worker (prepare)
 *              generation+1, quarantines lifted, `config` asked of every listening worker
 *                                  │ (each answers config-applied; requests in flight finish on the old routes)
 *              every worker answered or failed: pools only the old config had go (settled)
 *              watch list follows the new libraries ──> READY=1
 *
 * Workers still starting are re-synced when they report listening (supervisor.ts);
 * workers forked from now on start with the new config. A SIGHUP during a
 * reload runs once more after it.
 */
import type { Logger } from 'pino';
import { ConfigError, loadConfig, type Config, type ConfigProblem, type WorkerRequest } from '@flexilib/contract';
import type { ConfigGenerations } from './config-generations.js';
import type { ReloadFailedEvent, ReloadedEvent } from './events.js';
import type { PoolWorker, WorkerPool } from './worker-pool.js';
import type { RequestOutcome } from './worker-requests.js';

/** The outcome of asking workers to switch to the current config. */
export type ConfigOutcome = RequestOutcome<PoolWorker, Extract<WorkerRequest, { type: 'config' }>>;

export interface ConfigReloadDeps {
  configFile: string;
  pool: WorkerPool;
  generations: ConfigGenerations;
  log: Logger;
  /** The new config is valid: bring the supervisor's own state in line with it
   * (upstream pools) before any worker switches. Throwing refuses the reload. */
  prepare(config: Config): void;
  /** Every worker switched (or stopped being waited for): drop the state only the
   * old config needed (upstream pools it named and the new one does not). */
  settled(): void;
  /** The switch is decided: lift quarantines. */
  lifted(): void;
  /** Ask these workers to switch to the current config (WorkerPool.requestAll). */
  sendConfig(workers: PoolWorker[]): Promise<ConfigOutcome[]>;
  watch(files: string[]): Promise<void>;
  onReloading(): void;
  onReloaded(e: ReloadedEvent): void;
  onFailed(e: ReloadFailedEvent): void;
}

/** The plugin files a config routes to (native libraries and WASM modules): what the watcher follows. */
export function librariesOf(config: Config): string[] {
  return [...new Set(config.routes.flatMap((r) => (r.target.kind === 'native' ? [r.target.library] : r.target.kind === 'wasm' ? [r.target.module] : [])))];
}

/** The native libraries a config routes to (the supervisor keeps verified copies of them). */
export function nativeLibrariesOf(config: Config): string[] {
  return [...new Set(config.routes.flatMap((r) => (r.target.kind === 'native' ? [r.target.library] : [])))];
}

export class ConfigReload {
  private busy = false;
  private again = false;

  constructor(private readonly deps: ConfigReloadDeps) {}

  /** Reload now, or once more after the reload in progress. */
  request(): void {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    void this.run().finally(() => {
      this.busy = false;
      if (this.again) {
        this.again = false;
        this.request();
      }
    });
  }

  private async run(): Promise<void> {
    const { log, configFile } = this.deps;
    const started = Date.now();
    this.deps.onReloading();
    log.info({ config: configFile }, 'SIGHUP: reloading config');
    let config: Config;
    try {
      config = loadConfig(configFile);
      this.deps.prepare(config);
    } catch (err) {
      const e = err as Error & { code?: string };
      const problems: ConfigProblem[] = err instanceof ConfigError ? err.problems : [];
      for (const p of problems) log.error({ code: e.code, file: p.file, line: p.line }, `${p.file}:${p.line}: ${p.message}`);
      log.error(
        { code: e.code, config: configFile, problems: problems.length },
        problems.length ? `config reload refused: ${problems.length} problem(s) in ${configFile}; the old config keeps serving` : `config reload refused: ${e.message}; the old config keeps serving`,
      );
      this.deps.onFailed({ config: configFile, code: e.code ?? 'FLX_CONFIG_READ', message: e.message, problems });
      return;
    }
    const generation = this.deps.generations.advance(config);
    this.deps.lifted();
    const targets = this.deps.pool.listening();
    const outcomes = await this.deps.sendConfig(targets);
    for (const { worker, error } of outcomes) {
      // A worker that died is replaced by one that starts with the new config.
      if (error?.code === 'FLX_WORKER_NO_REPLY') log.warn({ code: error.code, workerPid: worker.pid, generation }, `${error.message}: config generation ${generation} may not be in effect there`);
    }
    const appliedCount = outcomes.filter((o) => o.reply).length;
    this.deps.settled();
    const libraries = librariesOf(config);
    await this.deps.watch(libraries);
    const e: ReloadedEvent = {
      generation,
      config: config.file,
      routes: config.routes.length,
      libraries,
      applied: appliedCount,
      workers: targets.length,
      durationMs: Date.now() - started,
    };
    log.info({ generation, routes: e.routes, workers: e.workers, applied: e.applied, durationMs: e.durationMs }, 'config reloaded');
    this.deps.onReloaded(e);
  }
}
