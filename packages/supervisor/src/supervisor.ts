/**
 * The supervisor: forks the workers with node:cluster (they share the
 * listening socket), replaces any that die, and stops them on SIGTERM/SIGINT.
 *
 *   fork ──> online ──> listening ──(all listening)──> "listening" log, ready
 *     ^                     │
 *     └──── replace <── exit (crash, signal, kill -9)
 */
import cluster, { type Worker } from 'node:cluster';
import { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { WORKER_INIT_ENV, isFromWorker, type Config, type WorkerInit } from '@flexilib/worker';
import { AdminServer } from './admin/admin-server.js';
import { registerHealthRoutes } from './admin/health-routes.js';
import { registerMetricsRoutes } from './admin/metrics-routes.js';
import { logSupervisorEvents } from './event-log.js';
import type { SupervisorEvents } from './events.js';
import { FlexilibMetrics } from './metrics/flexilib-metrics.js';
import type { Settings } from './settings.js';

const require = createRequire(import.meta.url);

export class Supervisor extends EventEmitter<SupervisorEvents> {
  private readonly workers = new Set<Worker>();
  private readonly listening = new Set<number>();
  private stopping = false;
  private announced = false;
  port: number | undefined;
  /** The admin listener; later features register their endpoints on it. */
  readonly admin: AdminServer;
  /** Files shared with the workers (see WorkerInit.runDir); removed at exit. */
  readonly runDir: string;

  constructor(private readonly settings: Settings, private config: Config, private readonly log: Logger) {
    super();
    const base = existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
    this.runDir = mkdtempSync(path.join(base, `flexilib-${process.pid}-`));
    process.once('exit', () => rmSync(this.runDir, { recursive: true, force: true }));
    this.admin = new AdminServer(settings.admin, log);
    registerHealthRoutes(this.admin, () => ({
      ready: this.announced && !this.stopping && this.listening.size >= this.settings.workers,
      workers: this.workers.size,
      listening: this.listening.size,
    }));
    logSupervisorEvents(this, log);
    const metrics = new FlexilibMetrics(this, this.runDir, log);
    registerMetricsRoutes(this.admin, metrics);
  }

  async start(): Promise<void> {
    const adminPort = await this.admin.listen();
    this.log.info({ host: this.settings.admin.host, port: adminPort }, 'admin listening');
    cluster.setupPrimary({ exec: require.resolve('@flexilib/worker/worker-main'), silent: false });
    for (let i = 0; i < this.settings.workers; i++) this.fork();
    process.on('SIGTERM', () => this.stop('SIGTERM'));
    process.on('SIGINT', () => this.stop('SIGINT'));
  }

  private fork(restart = false): Worker {
    const init: WorkerInit = { options: this.settings.worker, config: this.config, runDir: this.runDir };
    const worker = cluster.fork({ [WORKER_INIT_ENV]: JSON.stringify(init) });
    this.workers.add(worker);
    const pid = worker.process.pid!;
    this.emit('worker-start', { pid, id: worker.id, restart });
    worker.on('message', (msg: unknown) => {
      if (!isFromWorker(msg)) return;
      if (msg.type === 'listening') {
        this.listening.add(worker.id);
        this.port = msg.port;
        this.emit('worker-listening', { pid, id: worker.id, port: msg.port, address: msg.address });
        if (!this.announced && this.listening.size >= this.settings.workers) {
          this.announced = true;
          this.log.info({ port: msg.port, host: this.settings.worker.host, workers: this.settings.workers, adminPort: this.admin.port, config: this.config.file }, 'flexilib listening');
          this.emit('ready', { port: msg.port, adminPort: this.admin.port, workers: this.settings.workers });
        }
      }
    });
    worker.on('exit', (code, signal) => {
      this.workers.delete(worker);
      this.listening.delete(worker.id);
      this.emit('worker-exit', { pid, id: worker.id, code, signal, reason: this.stopping ? 'stop' : 'crash' });
      if (this.stopping) return;
      this.fork(true);
    });
    return worker;
  }

  private stop(signal: string): void {
    if (this.stopping) {
      this.log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    this.stopping = true;
    this.emit('stopping', { signal });
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
