/**
 * The main side of one instance thread: starts it, hands it calls over the
 * channel, enforces the time limit, and stops it.
 *
 * Waiting for a call: first synchronously, for at most SYNC_WAIT_MS, with
 * Atomics.wait on the event loop. Most plugin calls take microseconds, and a
 * blocking wait is the cheapest handoff there is (no promise, no loop turn).
 * A call still running then is waited for with Atomics.waitAsync, whose
 * timeout is the rest of the time limit: on 'timed-out' the thread is
 * terminated and the request answered 504. The pool skips the synchronous
 * wait for modules whose last call outran it, so a slow module costs the
 * event loop at most SYNC_WAIT_MS once, not on every call.
 */
import { MessageChannel, type Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { FlexiError } from '@flexilib/contract';
import { CMD, CTL, Channel, RES, readResponse, writeRequest, type CallResult } from './channel.js';
import type { RequestLike } from '../executor.js';
import type { ThreadInit, ThreadMessage } from './instance-thread.js';
import { WASM_PAGE } from '@flexilib/contract';
import type { CompiledModule } from './module-check.js';
import type { ThreadHandle } from './thread-handle.js';

/** Longest the event loop blocks waiting for a call before waiting asynchronously. */
export const SYNC_WAIT_MS = 1;
/** Longest an instance asked to exit may take (flexi_deinit) before it is terminated. */
const EXIT_GRACE_MS = 1000;

/** One request for a WASM module. */
export interface WasmJob {
  req: RequestLike;
  body: Buffer | null;
  /** The outcome: what the module answered, or why it could not. Called exactly once. */
  done(result: CallResult | FlexiError): void;
  /** The call waits for an instance: copy now what is only lent for the run() call (a fast-lane request). */
  queued?(): void;
}

/** What an instance tells the pool that owns it. */
export interface InstanceOwner {
  /** The call finished and the instance is free again. */
  released(inst: WasmInstance): void;
  /** The instance is gone (timeout, crash, failed re-instantiation). */
  died(inst: WasmInstance): void;
}

export interface InstanceOptions {
  arenaBytes: number;
  /** Largest request image the channel must carry (body limit + headers). */
  maxRequestBytes: number;
  label: string;
  log: Logger;
  owner: InstanceOwner;
  generation: number;
  /** The thread to run on (a spare started ahead, or a new one). */
  thread: ThreadHandle;
}

type AsyncWait = { async: false; value: string } | { async: true; value: Promise<string> };
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t: number): AsyncWait }).waitAsync;

export class WasmInstance {
  state: 'starting' | 'idle' | 'busy' | 'dead' = 'starting';
  /** performance.now() when the instance last finished a call. */
  lastUsed = 0;
  /** Duration of the last call, µs (the pool uses it to choose how to wait). */
  lastCallUs = 0;
  /** Instantiation and initialization inside the thread, ms (the rest of a cold start is the thread's own start). */
  instantiateMs = 0;
  readonly generation: number;
  private readonly worker: Worker;
  private readonly views: Channel;
  private job: WasmJob | null = null;
  /** Why the thread failed to re-instantiate, for the answer to a call it strands. */
  private failure = '';
  private deadline = 0;
  private timeoutMs = 0;
  private readonly onAsyncDone = (v: string) => this.asyncDone(v);
  /** A bug while completing a call must not become an unhandled rejection (it would end the worker). */
  private readonly onAsyncError = (err: Error) => this.opts.log.error({ module: this.opts.label, err: err.message, stack: err.stack }, 'completing a WASM call failed');
  private startResolve!: () => void;
  private startReject!: (err: FlexiError) => void;
  readonly started: Promise<WasmInstance>;

  constructor(compiled: CompiledModule, private readonly opts: InstanceOptions) {
    this.generation = opts.generation;
    const capBytes = compiled.info.capPages * WASM_PAGE;
    const buffers = Channel.buffers(Math.max(capBytes, opts.maxRequestBytes));
    const { port1, port2 } = new MessageChannel();
    port1.unref();
    this.views = new Channel(buffers, port1, CTL.SWAP_TO_THREAD);
    const init: ThreadInit = { module: compiled.module, info: compiled.info, channel: { ...buffers, port: port2 }, arenaBytes: opts.arenaBytes, label: opts.label };
    this.started = new Promise<WasmInstance>((resolve, reject) => {
      this.startResolve = () => resolve(this);
      this.startReject = reject;
    });
    this.worker = opts.thread.worker;
    this.worker.on('message', (m: ThreadMessage) => this.onMessage(m));
    this.worker.on('error', (err) => {
      opts.log.error({ module: opts.label, err: err.message }, 'WASM instance thread failed');
      this.onGone(new FlexiError('FLX_WASM_CRASHED', `${opts.label}: the instance thread failed: ${err.message}`));
    });
    this.worker.on('exit', () => {
      this.views.close();
      this.onGone(new FlexiError('FLX_WASM_CRASHED', `${opts.label}: the instance thread exited`));
    });
    // An idle instance must not keep its worker process alive at shutdown. After the
    // listeners: adding a 'message' listener refs the worker again.
    this.worker.unref();
    if (opts.thread.exited) queueMicrotask(() => this.onGone(new FlexiError('FLX_WASM_CRASHED', `${opts.label}: the instance thread exited before it started`)));
    else opts.thread.start(init, [port2]);
  }

  private onMessage(m: ThreadMessage): void {
    if (m.type === 'output') {
      this.opts.log.info({ module: this.opts.label, stream: m.fd === 1 ? 'stdout' : 'stderr' }, m.line);
    } else if (m.type === 'ready') {
      if (this.state !== 'starting') return;
      this.state = 'idle';
      this.instantiateMs = m.instantiateMs;
      this.startResolve();
    } else if (m.type === 'failed') {
      const err = new FlexiError(m.code, m.message);
      if (this.state === 'starting') {
        this.state = 'dead';
        this.startReject(err);
      } else {
        this.failure = m.message;
        this.opts.log.error({ module: this.opts.label, code: m.code, err: m.message }, 'WASM instance could not be replaced');
      }
    }
  }

  /** The thread is gone: answer a call in flight, tell the pool. */
  private onGone(err: FlexiError): void {
    const was = this.state;
    this.state = 'dead';
    if (was === 'starting') {
      this.startReject(err);
      return;
    }
    if (was === 'busy' && this.job) {
      // Wake the async waiter; asyncDone reads RES=DIED.
      Atomics.store(this.views.ctl, CTL.RES, RES.DIED);
      Atomics.notify(this.views.ctl, CTL.RES);
      return;
    }
    if (was !== 'dead') this.opts.owner.died(this);
  }

  /** Hand a call to the thread. `syncWaitMs` 0 waits asynchronously at once. */
  call(job: WasmJob, timeoutMs: number, syncWaitMs: number): void {
    const v = this.views;
    const len = writeRequest(v, job.req, job.body);
    if (len < 0) {
      job.done(new FlexiError('FLX_WASM_MEMORY', `${this.opts.label}: the request does not fit within the module's memory cap`));
      this.opts.owner.released(this);
      return;
    }
    const ctl = v.ctl;
    this.state = 'busy';
    this.job = job;
    this.timeoutMs = timeoutMs;
    ctl[CTL.REQ_LEN] = len;
    Atomics.store(ctl, CTL.RES, RES.PENDING);
    Atomics.store(ctl, CTL.CMD, CMD.RUN);
    Atomics.notify(ctl, CTL.CMD, 1);
    const start = performance.now();
    this.deadline = start + timeoutMs;
    if (syncWaitMs > 0) {
      Atomics.wait(ctl, CTL.RES, RES.PENDING, Math.min(syncWaitMs, timeoutMs));
      if (Atomics.load(ctl, CTL.RES) !== RES.PENDING) {
        this.finish();
        return;
      }
    }
    this.waitAsync();
  }

  private waitAsync(): void {
    const remaining = Math.max(0, this.deadline - performance.now());
    const w = waitAsync(this.views.ctl, CTL.RES, RES.PENDING, remaining);
    if (w.async) w.value.then(this.onAsyncDone).catch(this.onAsyncError);
    else this.asyncDone(w.value);
  }

  private asyncDone(outcome: string): void {
    if (this.job === null) return;
    const res = Atomics.load(this.views.ctl, CTL.RES);
    if (res !== RES.PENDING) {
      this.finish();
      return;
    }
    if (outcome === 'timed-out' || performance.now() >= this.deadline) {
      this.timedOut();
      return;
    }
    this.waitAsync();
  }

  private timedOut(): void {
    const job = this.job!;
    this.job = null;
    this.state = 'dead';
    void this.worker.terminate();
    this.opts.owner.died(this);
    job.done(new FlexiError('FLX_WASM_TIMEOUT', `${this.opts.label} did not answer within ${this.timeoutMs} ms; its instance was stopped`));
  }

  private finish(): void {
    const job = this.job!;
    this.job = null;
    const ctl = this.views.ctl;
    if (Atomics.load(ctl, CTL.RES) === RES.DIED) {
      this.state = 'dead';
      this.opts.owner.died(this);
      job.done(new FlexiError('FLX_WASM_CRASHED', `${this.opts.label}: the instance thread died during the call${this.failure ? ` (${this.failure})` : ''}`));
      return;
    }
    const result = readResponse(this.views);
    this.lastCallUs = result.callUs;
    this.lastUsed = performance.now();
    this.state = 'idle';
    job.done(result);
    this.opts.owner.released(this);
  }

  /** Ask an idle instance to exit (flexi_deinit runs); a busy or stuck one is terminated. */
  stop(): void {
    if (this.state === 'dead') return;
    const wasIdle = this.state === 'idle';
    this.state = 'dead';
    if (wasIdle) {
      Atomics.store(this.views.ctl, CTL.CMD, CMD.EXIT);
      Atomics.notify(this.views.ctl, CTL.CMD);
      setTimeout(() => void this.worker.terminate(), EXIT_GRACE_MS).unref();
    } else {
      void this.worker.terminate();
    }
  }

}
