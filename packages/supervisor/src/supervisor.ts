/**
 * The supervisor: forks the workers with node:cluster (they share the
 * listening socket), replaces any that die, and stops them on SIGTERM/SIGINT.
 *
 *   fork ──> online ──> listening ──(all listening)──> "listening" log, ready
 *     ^                     │
 *     └──── replace <── exit (crash, signal, kill -9)
 */
import cluster, { type Worker } from 'node:cluster';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { WORKER_INIT_ENV, isFromWorker, type Config, type WorkerInit } from '@flexilib/worker';
import { AdminServer } from './admin/admin-server.js';
import { registerHealthRoutes } from './admin/health-routes.js';
import type { Settings } from './settings.js';
import { WasmServices } from './wasm/services-api.js';

const require = createRequire(import.meta.url);

export class Supervisor {
  private readonly workers = new Set<Worker>();
  private readonly listening = new Set<number>();
  private stopping = false;
  private announced = false;
  port: number | undefined;
  /** The admin listener; later features register their endpoints on it. */
  readonly admin: AdminServer;
  /** Files shared with the workers (see WorkerInit.runDir); removed at exit. */
  readonly runDir: string;
  /** WASM services registered on the admin API (state in .flexilib/ beside the config). */
  readonly wasm: WasmServices;

  constructor(private readonly settings: Settings, private config: Config, private readonly log: Logger) {
    const base = existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
    this.runDir = mkdtempSync(path.join(base, `flexilib-${process.pid}-`));
    process.once('exit', () => rmSync(this.runDir, { recursive: true, force: true }));
    this.admin = new AdminServer(settings.admin, log);
    registerHealthRoutes(this.admin, () => ({
      ready: this.announced && !this.stopping && this.listening.size >= this.settings.workers,
      workers: this.workers.size,
      listening: this.listening.size,
    }));
    const configDir = path.dirname(config.file);
    this.wasm = new WasmServices(this.admin, { stateDir: path.join(configDir, '.flexilib'), baseDir: configDir, arenaBytes: settings.worker.arenaBytes, log });
  }

  async start(): Promise<void> {
    this.wasm.load();
    const adminPort = await this.admin.listen();
    this.log.info({ host: this.settings.admin.host, port: adminPort }, 'admin listening');
    cluster.setupPrimary({ exec: require.resolve('@flexilib/worker/worker-main'), silent: false });
    for (let i = 0; i < this.settings.workers; i++) this.fork();
    process.on('SIGTERM', () => this.stop('SIGTERM'));
    process.on('SIGINT', () => this.stop('SIGINT'));
  }

  private fork(): Worker {
    const init: WorkerInit = { options: this.settings.worker, config: this.config, runDir: this.runDir, services: this.wasm.current() };
    const worker = cluster.fork({ [WORKER_INIT_ENV]: JSON.stringify(init) });
    this.workers.add(worker);
    this.wasm.attach(worker);
    const pid = worker.process.pid;
    worker.on('message', (msg: unknown) => {
      if (!isFromWorker(msg)) return;
      if (msg.type === 'listening') {
        this.listening.add(worker.id);
        this.port = msg.port;
        this.log.info({ workerPid: pid, port: msg.port }, 'worker listening');
        if (!this.announced && this.listening.size >= this.settings.workers) {
          this.announced = true;
          this.log.info({ port: msg.port, host: this.settings.worker.host, workers: this.settings.workers, adminPort: this.admin.port, config: this.config.file }, 'flexilib listening');
        }
      }
    });
    worker.on('exit', (code, signal) => {
      this.workers.delete(worker);
      this.listening.delete(worker.id);
      if (this.stopping) return;
      this.log.error({ workerPid: pid, code, signal }, signal ? `worker killed by ${signal}; replacing it` : `worker exited with code ${code}; replacing it`);
      this.fork();
    });
    return worker;
  }

  private stop(signal: string): void {
    if (this.stopping) {
      this.log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    this.stopping = true;
    this.log.info({ signal }, 'stopping: letting requests in flight finish');
    void this.admin.close();
    for (const w of this.workers) w.disconnect();
    const check = setInterval(() => {
      if (this.workers.size === 0) {
        clearInterval(check);
        this.log.info('stopped');
        process.exit(0);
      }
    }, 50);
  }
}
