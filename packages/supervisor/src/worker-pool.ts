/**
 * The worker processes: forks them with node:cluster (they share the listening
 * socket), tracks which listen, and replaces any that die — at once the first
 * time, with growing delays in a crash loop (restart-backoff.ts).
 *
 *   fork ──> online ──> listening ──────────> exit ──> hooks.exited ──> (delay) ──> fork
 *                           │                                 (attribution, quarantine)
 *                           └─ control messages are sent only from here on
 *
 * What the pool does not decide: what a worker starts with (hooks.init), what
 * a death means (hooks.exited), what its messages mean (hooks.message).
 */
import cluster, { type Worker } from 'node:cluster';
import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import { WORKER_INIT_ENV, isFromWorker, markerFile, type FromWorker, type ToWorker, type WorkerInit } from '@flexilib/worker';
import { RestartBackoff } from './restart-backoff.js';

const require = createRequire(import.meta.url);

export interface PoolWorker {
  readonly worker: Worker;
  readonly id: number;
  readonly pid: number;
  readonly startedAt: number;
  /** Its call marker file (WorkerInit.runDir + id). */
  readonly marker: string;
  listening: boolean;
  exited: boolean;
  /** The worker it replaces and when that one died. */
  readonly replaces?: { pid: number; id: number; diedAt: number };
  /** Set when the supervisor kills it on purpose. */
  killedFor?: 'hang';
  /** The config generation and quarantine version its state reflects. */
  generation: number;
  quarantineVersion: number;
}

export interface PoolHooks {
  /** What a new worker starts with, and the quarantine version that reflects. */
  init(): { init: WorkerInit; quarantineVersion: number };
  started(w: PoolWorker): void;
  listening(w: PoolWorker, port: number): void;
  message(w: PoolWorker, msg: FromWorker): void;
  /** A worker died; `restartInMs` is undefined when it is not replaced (stopping). */
  exited(w: PoolWorker, code: number | null, signal: string | null, restartInMs: number | undefined): void;
}

export class WorkerPool {
  private readonly workers = new Map<number, PoolWorker>();
  private readonly pendingRestarts = new Set<NodeJS.Timeout>();
  private readonly backoff = new RestartBackoff();
  private stopping = false;
  private emptyWaiters: Array<() => void> = [];

  constructor(readonly size: number, private readonly runDir: string, private readonly hooks: PoolHooks, private readonly log: Logger) {}

  start(): void {
    cluster.setupPrimary({ exec: require.resolve('@flexilib/worker/worker-main'), silent: false });
    for (let i = 0; i < this.size; i++) this.fork();
  }

  /** Workers alive (forked and not exited). */
  all(): PoolWorker[] {
    return [...this.workers.values()];
  }

  listening(): PoolWorker[] {
    return this.all().filter((w) => w.listening);
  }

  send(w: PoolWorker, msg: ToWorker): void {
    if (w.exited || !w.worker.isConnected()) return;
    w.worker.send(msg);
  }

  /** Kill a worker on purpose (it is replaced like any other death). */
  kill(w: PoolWorker, why: 'hang'): void {
    w.killedFor = why;
    w.worker.process.kill('SIGKILL');
  }

  /** No more replacements from now on; pending ones are cancelled. */
  stop(): void {
    this.stopping = true;
    for (const t of this.pendingRestarts) clearTimeout(t);
    this.pendingRestarts.clear();
  }

  /** Resolves once no worker is alive. */
  whenEmpty(): Promise<void> {
    if (this.workers.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptyWaiters.push(resolve));
  }

  private fork(replaces?: PoolWorker['replaces']): void {
    const { init, quarantineVersion } = this.hooks.init();
    const worker = cluster.fork({ [WORKER_INIT_ENV]: JSON.stringify(init) });
    const w: PoolWorker = {
      worker,
      id: worker.id,
      pid: worker.process.pid ?? -1,
      startedAt: Date.now(),
      marker: markerFile(this.runDir, worker.id),
      listening: false,
      exited: false,
      replaces,
      generation: init.generation,
      quarantineVersion,
    };
    this.workers.set(w.id, w);
    this.hooks.started(w);
    worker.on('message', (msg: unknown) => {
      if (!isFromWorker(msg)) return;
      if (msg.type === 'listening') {
        if (w.listening) return;
        w.listening = true;
        this.hooks.listening(w, msg.port);
        return;
      }
      this.hooks.message(w, msg);
    });
    // A worker that fails to spawn emits 'error' and then 'exit'.
    worker.on('error', (err) => this.log.error({ workerPid: w.pid, err: err.message }, 'worker process error'));
    worker.on('exit', (code, signal) => this.exited(w, code, signal));
  }

  private exited(w: PoolWorker, code: number | null, signal: string | null): void {
    w.exited = true;
    w.listening = false;
    this.workers.delete(w.id);
    const now = Date.now();
    const restartInMs = this.stopping ? undefined : this.backoff.next(now);
    this.hooks.exited(w, code, signal, restartInMs);
    if (restartInMs !== undefined && !this.stopping) {
      const replaces = { pid: w.pid, id: w.id, diedAt: now };
      if (restartInMs === 0) this.fork(replaces);
      else {
        const t = setTimeout(() => {
          this.pendingRestarts.delete(t);
          if (!this.stopping) this.fork(replaces);
        }, restartInMs);
        this.pendingRestarts.add(t);
      }
    }
    if (this.workers.size === 0 && this.pendingRestarts.size === 0) {
      const waiters = this.emptyWaiters;
      this.emptyWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }
}
