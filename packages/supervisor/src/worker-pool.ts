/**
 * The worker processes: forks them with node:cluster (they share the listening
 * socket), tracks which listen, and replaces any that die.
 *
 * A spare worker is forked ahead (--spare-workers, default 1): set up but not
 * listening. When a serving worker dies the spare is told to listen at once —
 * a replacement in milliseconds instead of a Node start-up — and a new spare is
 * forked, at once the first time, with growing delays in a crash loop
 * (restart-backoff.ts), so forks cannot spin the CPU. Without a spare the
 * replacement itself is forked after that delay.
 *
 *   fork(spare) ──> standby ──┐ a serving worker dies: listen
 *   fork ──────────────────── listening ──> ... ──> exit ──> hooks.exited ──> spare takes over
 *                               │                             (attribution,    + fork a new spare (delay)
 *                               └─ control messages from here on  quarantine)
 *
 * Workers do not listen through node:cluster (whose shared socket closes with
 * its last worker, refusing connections until a replacement listens, on a new
 * port with --port 0): a worker to serve gets the supervisor's own socket
 * (hooks.socket(), listen-socket.ts) with its `listen` message and accepts
 * from it directly.
 *
 * A fork that fails (spawn throws: E2BIG, ENOMEM, ...) is logged
 * (FLX_WORKER_FORK) and retried with growing delays; the workers alive keep
 * serving meanwhile. A worker gets its WorkerInit as its first IPC message, not
 * in its environment, so no config is too big to start a worker.
 *
 * Messages for a worker that has not said `hello` yet wait here and follow its
 * init, in order (sent earlier, the worker would not be listening for them).
 * Requests that want an answer go through request()/requestAll()
 * (worker-requests.ts): the replies never reach hooks.message.
 *
 * What the pool does not decide: what a worker starts with (hooks.init), what
 * a death means (hooks.exited), what its messages mean (hooks.message).
 */
import cluster, { type Worker } from 'node:cluster';
import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import { WORKER_ENV, fromWorkerProblem, markerFile, type FromWorker, type ReplyTo, type ToWorker, type WorkerInit, type WorkerInitMessage, type WorkerRequest } from '@flexilib/contract';
import type { TcpHandle } from './listen-socket.js';
import { RestartBackoff } from './restart-backoff.js';
import { WorkerRequests, type RequestOutcome } from './worker-requests.js';

const require = createRequire(import.meta.url);

export interface PoolWorker {
  readonly worker: Worker;
  readonly id: number;
  readonly pid: number;
  readonly startedAt: number;
  /** Its call marker file (WorkerInit.runDir + id). */
  readonly marker: string;
  /** A spare not serving yet. */
  standby: boolean;
  /** A spare that reported it is set up. */
  ready: boolean;
  /** A spare chosen to take over while still starting: it listens once ready. */
  activateWhenReady: boolean;
  listening: boolean;
  exited: boolean;
  /** The worker it replaces and when that one died. */
  replaces?: { pid: number; id: number; diedAt: number };
  /** Set when the supervisor kills it on purpose. */
  killedFor?: 'hang';
  /** Replaced while alive (retire()): it drains and exits, and is not replaced again. */
  retired?: boolean;
  /** The config generation and quarantine version its state reflects. */
  generation: number;
  quarantineVersion: number;
}

export interface PoolHooks {
  /** What a new worker starts with, and the quarantine version that reflects. */
  init(standby: boolean): { init: WorkerInit; quarantineVersion: number };
  /** The socket serving workers listen on (bound for the supervisor's life). */
  socket(): TcpHandle;
  /** A spare is about to listen: bring its state up to date. */
  beforeListen(w: PoolWorker): void;
  started(w: PoolWorker): void;
  listening(w: PoolWorker, port: number): void;
  message(w: PoolWorker, msg: FromWorker): void;
  /** A worker died; `restartInMs` is when its replacement listens or is forked (0: now),
   * undefined when it is not replaced (stopping). */
  exited(w: PoolWorker, code: number | null, signal: string | null, restartInMs: number | undefined): void;
}

const FORK_RETRY_BASE_MS = 100;
const FORK_RETRY_CAP_MS = 5000;

export class WorkerPool {
  private readonly workers = new Map<number, PoolWorker>();
  private readonly pendingForks = new Set<NodeJS.Timeout>();
  private readonly backoff = new RestartBackoff();
  /** Failed forks in a row: the retry delay doubles with each (FORK_RETRY_*). */
  private forkFailures = 0;
  private spare: PoolWorker | undefined;
  /** Replacement's id -> the retired worker it replaces, stopped once the replacement listens. */
  private readonly retiring = new Map<number, PoolWorker>();
  private sparesPending = 0;
  private stopping = false;
  private emptyWaiters: Array<() => void> = [];
  /** Messages for workers that have not said hello yet, by worker id. */
  private readonly beforeHello = new Map<number, Array<[ToWorker, TcpHandle | undefined]>>();
  private readonly requests: WorkerRequests<PoolWorker>;

  constructor(readonly size: number, readonly spares: number, private readonly runDir: string, private readonly hooks: PoolHooks, private readonly log: Logger) {
    this.requests = new WorkerRequests((w, msg) => this.send(w, msg), log);
  }

  start(): void {
    // --expose-gc: a worker collects the answers of connections it dropped (worker's memory-return.ts).
    cluster.setupPrimary({ exec: require.resolve('@flexilib/worker/worker-main'), execArgv: [...process.execArgv, '--expose-gc'], silent: false });
    for (let i = 0; i < this.size; i++) this.fork(false);
    if (this.spares > 0) this.fork(true);
  }

  /** Workers alive (forked and not exited), the spare included. */
  all(): PoolWorker[] {
    return [...this.workers.values()];
  }

  listening(): PoolWorker[] {
    return this.all().filter((w) => w.listening);
  }

  /** Ask `w` and wait for its reply (worker-requests.ts): rejects with FLX_WORKER_NO_REPLY after
   * `timeoutMs`, or FLX_WORKER_GONE when it dies first. */
  request<M extends WorkerRequest>(w: PoolWorker, msg: M, timeoutMs?: number): Promise<ReplyTo<M>> {
    return this.requests.request(w, msg, timeoutMs);
  }

  /** Ask each of `workers` the same; resolves with each one's reply or error, never rejects. */
  requestAll<M extends WorkerRequest>(workers: readonly PoolWorker[], msg: M, timeoutMs?: number): Promise<Array<RequestOutcome<PoolWorker, M>>> {
    return this.requests.requestAll(workers, msg, timeoutMs);
  }

  /** Send without waiting for an answer; to a worker still starting, once it said hello. */
  send(w: PoolWorker, msg: ToWorker, socket?: TcpHandle): void {
    if (w.exited || !w.worker.isConnected()) return;
    const early = this.beforeHello.get(w.id);
    if (early) {
      early.push([msg, socket]);
      return;
    }
    // The typings only name net.Socket/net.Server; node sends a raw tcp_wrap as such.
    if (socket) w.worker.send(msg, socket as never);
    else w.worker.send(msg);
  }

  /** Kill a worker on purpose (it is replaced like any other death). */
  kill(w: PoolWorker, why: 'hang'): void {
    w.killedFor = why;
    w.worker.process.kill('SIGKILL');
  }

  /**
   * Replace a worker that still serves but must go (it holds plugin calls that
   * never return): the spare (or a new worker) takes over, and once it listens
   * the old one is told to stop — it finishes its requests in flight and exits,
   * and that exit is not replaced again.
   */
  retire(w: PoolWorker): void {
    if (w.retired || w.exited || w.standby || this.stopping) return;
    w.retired = true;
    const replaces = { pid: w.pid, id: w.id, diedAt: Date.now() };
    const s = this.spare;
    if (s) {
      this.retiring.set(s.id, w);
      this.activateSpare(replaces);
      if (this.sparesPending === 0) this.forkSpareLater(0);
    } else {
      // Should the fork fail, its retry still succeeds `w`; `w` keeps serving meanwhile.
      this.fork(false, replaces, w);
    }
  }

  /** No more replacements from now on; pending forks are cancelled. */
  stop(): void {
    this.stopping = true;
    for (const t of this.pendingForks) clearTimeout(t);
    this.pendingForks.clear();
  }

  /** Resolves once no worker is alive. */
  whenEmpty(): Promise<void> {
    if (this.workers.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptyWaiters.push(resolve));
  }

  /** `succeeds`: a retiring worker told to stop once this one listens. */
  private fork(standby: boolean, replaces?: PoolWorker['replaces'], succeeds?: PoolWorker): PoolWorker | undefined {
    const { init, quarantineVersion } = this.hooks.init(standby);
    let worker: Worker;
    try {
      // UV_TCP_SINGLE_ACCEPT: a worker takes one connection per wake-up, so the
      // workers accepting from the one socket share new connections evenly.
      worker = cluster.fork({ [WORKER_ENV]: '1', UV_TCP_SINGLE_ACCEPT: process.env.UV_TCP_SINGLE_ACCEPT ?? '1' });
    } catch (err) {
      this.forkFailed(err as Error, standby, replaces, succeeds);
      return undefined;
    }
    this.forkFailures = 0;
    let initMessage: WorkerInitMessage | undefined = { type: 'init', init: { ...init, standby } };
    const w: PoolWorker = {
      worker,
      id: worker.id,
      pid: worker.process.pid ?? -1,
      startedAt: Date.now(),
      marker: markerFile(this.runDir, worker.id),
      standby,
      ready: false,
      activateWhenReady: false,
      listening: false,
      exited: false,
      replaces,
      generation: init.generation,
      quarantineVersion,
    };
    this.workers.set(w.id, w);
    this.beforeHello.set(w.id, []);
    if (succeeds) this.retiring.set(w.id, succeeds);
    if (standby) this.spare = w;
    this.hooks.started(w);
    worker.on('message', (raw: unknown) => {
      const problem = fromWorkerProblem(raw);
      if (problem) {
        this.log.error({ workerPid: w.pid, problem }, 'dropped a malformed message from a worker');
        return;
      }
      const msg = raw as FromWorker;
      if (this.requests.reply(w, msg)) return;
      if (msg.type === 'hello') {
        if (!initMessage) return;
        worker.send(initMessage);
        const early = this.beforeHello.get(w.id) ?? [];
        this.beforeHello.delete(w.id);
        for (const [m, socket] of early) this.send(w, m, socket);
        // A spare listens when it takes over (listen()), once it reported standby.
        if (!initMessage.init.standby) this.send(w, { type: 'listen' }, this.hooks.socket());
        initMessage = undefined;
      } else if (msg.type === 'listening') {
        if (w.listening) return;
        w.listening = true;
        this.hooks.listening(w, msg.port);
        const old = this.retiring.get(w.id);
        if (old) {
          this.retiring.delete(w.id);
          this.send(old, { type: 'stop' });
        }
      } else if (msg.type === 'standby') {
        w.ready = true;
        if (w.activateWhenReady) this.listen(w);
      } else {
        this.hooks.message(w, msg);
      }
    });
    // A worker that fails to spawn emits 'error' and then 'exit'.
    worker.on('error', (err) => this.log.error({ workerPid: w.pid, err: err.message }, 'worker process error'));
    worker.on('exit', (code, signal) => this.exited(w, code, signal));
    return w;
  }

  /** spawn threw: nothing was started. Try again later; never let it take the supervisor down. */
  private forkFailed(err: Error, standby: boolean, replaces: PoolWorker['replaces'], succeeds: PoolWorker | undefined): void {
    this.forkFailures++;
    const delay = Math.min(FORK_RETRY_CAP_MS, FORK_RETRY_BASE_MS * 2 ** (this.forkFailures - 1));
    const serving = this.listening().length;
    this.log.error(
      { code: 'FLX_WORKER_FORK', err: err.message, errno: (err as NodeJS.ErrnoException).code, standby, failures: this.forkFailures, retryInMs: delay, listening: serving },
      `cannot start a ${standby ? 'spare ' : ''}worker process: ${err.message}; retrying in ${delay} ms (${serving} worker(s) serving meanwhile)`,
    );
    if (standby) this.forkSpareLater(delay);
    else this.later(delay, () => this.fork(false, replaces, succeeds));
  }

  private listen(w: PoolWorker): void {
    w.activateWhenReady = false;
    this.hooks.beforeListen(w);
    this.send(w, { type: 'listen' }, this.hooks.socket());
  }

  /** The spare takes over for a dead worker (now, or as soon as it is set up). */
  private activateSpare(replaces: NonNullable<PoolWorker['replaces']>): void {
    const s = this.spare;
    if (!s) return;
    this.spare = undefined;
    s.standby = false;
    s.replaces = replaces;
    if (s.ready) this.listen(s);
    else s.activateWhenReady = true;
  }

  private later(delayMs: number, fn: () => void): void {
    if (delayMs === 0) {
      fn();
      return;
    }
    const t = setTimeout(() => {
      this.pendingForks.delete(t);
      if (!this.stopping) fn();
    }, delayMs);
    this.pendingForks.add(t);
  }

  private forkSpareLater(delayMs: number): void {
    if (this.spares === 0) return;
    this.sparesPending++;
    this.later(delayMs, () => {
      this.sparesPending--;
      if (!this.spare) this.fork(true);
    });
  }

  private exited(w: PoolWorker, code: number | null, signal: string | null): void {
    w.exited = true;
    w.listening = false;
    this.workers.delete(w.id);
    this.beforeHello.delete(w.id);
    this.requests.gone(w);
    if (this.spare === w) this.spare = undefined;
    // A replacement that dies before listening: its retired worker stops when the next one listens.
    const old = this.retiring.get(w.id);
    this.retiring.delete(w.id);
    const now = Date.now();
    // Decide first, act after hooks.exited: a quarantine this death starts must
    // be recorded before the replacement listens.
    let restartInMs: number | undefined;
    let act = () => {};
    if (!this.stopping && !w.retired) {
      const delay = this.backoff.next(now);
      const replaces = { pid: w.pid, id: w.id, diedAt: now };
      const spareWanted = this.spares > 0 && this.sparesPending === 0;
      if (w.standby) {
        // A spare died before serving: only the spare is replaced.
        restartInMs = delay;
        act = () => spareWanted && this.forkSpareLater(delay);
      } else if (this.spare) {
        restartInMs = 0;
        act = () => {
          this.activateSpare(replaces);
          if (spareWanted) this.forkSpareLater(delay);
        };
      } else {
        restartInMs = delay;
        act = () => this.later(delay, () => this.fork(false, replaces));
      }
    }
    this.hooks.exited(w, code, signal, restartInMs);
    act();
    if (old && !old.exited) {
      old.retired = false;
      this.retire(old);
    }
    if (this.workers.size === 0 && this.pendingForks.size === 0) {
      const waiters = this.emptyWaiters;
      this.emptyWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }
}
