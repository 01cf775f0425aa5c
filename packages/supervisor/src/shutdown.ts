/**
 * Graceful stop on SIGTERM/SIGINT.
 *
 *   signal ──> STOPPING=1, watchers off ──> `stop` to every worker
 *                 (each: stop accepting, finish requests in flight, close keep-alive, exit 0)
 *           ──> all gone before --drain-timeout ──> exit 0
 *           ──> deadline passes ──> SIGKILL the rest ──> exit 1
 *   second signal at any point ──> SIGKILL every worker, exit 1 at once
 */
import type { Logger } from 'pino';
import { EXIT } from './errors.js';
import type { StoppedEvent, StoppingEvent } from './events.js';
import type { WorkerPool } from './worker-pool.js';

export interface ShutdownDeps {
  pool: WorkerPool;
  drainTimeoutMs: number;
  log: Logger;
  /** Stop everything but the workers (watcher, hang watch, admin, watchdog). */
  quiesce(): void;
  onStopping(e: StoppingEvent): void;
  onStopped(e: StoppedEvent): void;
  exit(code: number): void;
}

export class Shutdown {
  private started: number | undefined;
  private forced = 0;

  constructor(private readonly deps: ShutdownDeps) {}

  get stopping(): boolean {
    return this.started !== undefined;
  }

  begin(signal: string): void {
    const { pool, log } = this.deps;
    if (this.started !== undefined) {
      log.warn({ signal }, 'second signal: stopping at once');
      this.killAll();
      this.finish(EXIT.failure);
      return;
    }
    this.started = Date.now();
    const workers = pool.all();
    log.info({ signal, workers: workers.length, deadlineMs: this.deps.drainTimeoutMs }, 'stopping: letting requests in flight finish');
    this.deps.onStopping({ signal, deadlineMs: this.deps.drainTimeoutMs, workers: workers.length });
    pool.stop();
    this.deps.quiesce();
    for (const w of workers) {
      // A worker still starting may not handle messages yet; it has no requests either.
      if (w.listening) pool.send(w, { type: 'stop' });
      else w.worker.process.kill('SIGTERM');
    }
    const deadline = setTimeout(() => {
      const left = pool.all();
      log.error({ code: 'FLX_DRAIN_TIMEOUT', workers: left.map((w) => w.pid) }, `drain timeout (${this.deps.drainTimeoutMs} ms): killing ${left.length} worker(s) with requests still in flight`);
      this.killAll();
    }, this.deps.drainTimeoutMs);
    void pool.whenEmpty().then(() => {
      clearTimeout(deadline);
      this.finish(this.forced ? EXIT.failure : EXIT.ok);
    });
  }

  private killAll(): void {
    for (const w of this.deps.pool.all()) {
      this.forced++;
      w.worker.process.kill('SIGKILL');
    }
  }

  private done = false;
  private finish(code: number): void {
    if (this.done) return;
    this.done = true;
    const durationMs = Date.now() - (this.started ?? Date.now());
    this.deps.log.info({ code, forced: this.forced, durationMs }, 'stopped');
    this.deps.onStopped({ code, forced: this.forced, durationMs });
    this.deps.exit(code);
  }
}
