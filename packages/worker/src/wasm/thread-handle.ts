/**
 * Instance threads, started before they are needed.
 *
 * Starting a worker thread and loading its code is most of a cold start
 * (tens of ms; instantiating the compiled module takes ~2 ms). So a thread is
 * started empty: it waits on a flag for its ThreadInit, which arrives over a
 * MessagePort when an instance is wanted. The runtime keeps one such spare
 * thread per worker process while a WASM route has no instance (none started
 * yet, or scaled to zero), so its cold start is mostly instantiation; a pool
 * growing beyond its first instance starts a thread as before. An empty
 * thread holds no module and no linear memory, but it is an isolate of its own
 * (~7.7 MiB): none is kept while every route has an instance.
 */
import { existsSync } from 'node:fs';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';

/**
 * The thread's entry: the one-file CommonJS bundle the build makes
 * (scripts/bundle-instance-thread.mjs; no ESM loader in each thread's isolate),
 * else the module itself (sources run through tsx).
 */
const BUNDLE = new URL('./instance-thread.cjs', import.meta.url);
const THREAD_URL = existsSync(BUNDLE) ? BUNDLE : new URL('./instance-thread.js', import.meta.url);

/** What a thread receives at start (workerData): where its init will come from. */
export interface ThreadBoot {
  /** Int32 [0]: 0 = waiting, 1 = init posted on `port`. */
  go: SharedArrayBuffer;
  port: MessagePort;
}

export class ThreadHandle {
  readonly worker: Worker;
  private readonly go: Int32Array;
  private readonly port: MessagePort;
  /** Set when the thread ended before it was given work. */
  exited = false;

  constructor() {
    const { port1, port2 } = new MessageChannel();
    const go = new SharedArrayBuffer(4);
    this.go = new Int32Array(go);
    this.port = port1;
    this.worker = new Worker(THREAD_URL, {
      workerData: { go, port: port2 } satisfies ThreadBoot,
      transferList: [port2],
      // The thread's own JS needs little; a module's linear memory is outside these limits (its cap is the memory maximum).
      // It makes almost no garbage per call: a 1 MiB young generation keeps its new space at 2 MiB (4 under load with 16).
      resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 1, stackSizeMb: 4 },
    });
    this.worker.once('exit', () => {
      this.exited = true;
      this.port.close();
    });
    // A waiting thread must not keep its worker process alive.
    this.worker.unref();
  }

  /** Hand the thread its instance (structured-cloned; `transfer` moves ports). */
  start(init: unknown, transfer: MessagePort[]): void {
    this.port.postMessage(init, transfer);
    Atomics.store(this.go, 0, 1);
    Atomics.notify(this.go, 0);
  }

  /** End a thread that was never given work. */
  discard(): void {
    void this.worker.terminate();
  }
}

/** At most one spare thread, replaced after it is taken while `wanted()` says one may be needed. */
export class SpareThreads {
  private spare: ThreadHandle | null = null;
  private enabled = false;

  /** `wanted`: whether a cold start on a spare thread is to be expected (some route has no instance). */
  constructor(private readonly wanted: () => boolean = () => true) {}

  /** A thread to start an instance on: the spare when there is one, else a new thread. */
  take(): ThreadHandle {
    const s = this.spare;
    this.spare = null;
    if (this.enabled) setImmediate(() => this.refill());
    return s && !s.exited ? s : new ThreadHandle();
  }

  /** Keep a spare ready (true while any WASM route exists), or release it. */
  keep(on: boolean): void {
    this.enabled = on;
    if (on) setImmediate(() => this.refill());
    else {
      this.spare?.discard();
      this.spare = null;
    }
  }

  /** A route may have lost its last instance: have a spare ready for its next cold start. */
  refillSoon(): void {
    if (this.enabled) setImmediate(() => this.refill());
  }

  private refill(): void {
    if (this.enabled && (this.spare === null || this.spare.exited) && this.wanted()) this.spare = new ThreadHandle();
  }
}
