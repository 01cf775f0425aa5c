/**
 * The main side of one instance thread: starts it, hands it calls over the
 * channel's ring, enforces the time limit, and stops it.
 *
 * Calls are submitted without waiting: the request goes into the next slot,
 * AVAIL is raised, and the event loop goes on (to the next request of the same
 * burst, which may be queued behind it). Answers are collected when DONE moves,
 * waited for with one Atomics.waitAsync at a time, whose timeout is what is
 * left of the oldest call's time limit: when it passes with that call still
 * running, the thread is terminated and the call answered 504; the calls
 * queued behind it go back to the pool, to another instance. They go back
 * sooner when the thread is seen stuck (takeBack).
 *
 * A call's time starts when it reaches the front (the thread serves in order),
 * as the event loop sees it: never earlier than the thread started it.
 */
import { MessageChannel, type Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { FlexiError } from '@flexilib/contract';
import { CTL, Channel, HDR, RING_SLOTS, Ring, readResponse, writeRequest, type CallResult } from './channel.js';
import type { RequestLike } from '../executor.js';
import type { ThreadInit, ThreadMessage } from './instance-thread.js';
import { WASM_PAGE } from '@flexilib/contract';
import type { CompiledModule } from './module-check.js';
import type { ThreadHandle } from './thread-handle.js';
import { PROBE_MS, RunQueueProbe } from './run-queue-probe.js';

/**
 * Calls queue on a busy instance only while what is queued is expected to
 * take less than this (the last call's duration times the calls in flight),
 * and the oldest has not run longer: beyond it, the pool starts another
 * instance instead (up to `instances`). A module whose calls take
 * microseconds serves a whole burst on one instance; a slow one gets one call
 * per instance, as many instances as allowed.
 */
export const QUEUE_BUDGET_US = 1000;
/**
 * A thread that has not finished a call for this long is looked at
 * (run-queue-probe.ts): unless it is merely waiting for a core, it is taken as
 * busy with a slow call: calls stop queueing on it, and those queued behind it
 * go back to the pool (another instance). Generous, since a thread waiting for
 * a core on a loaded machine would not go faster on another one (seen: stalls
 * of over 100 ms at a load average of 10-15 on two cores).
 */
const STALL_MS = 100;
/** Longest an instance asked to exit may take (flexi_deinit) before it is terminated. */
const EXIT_GRACE_MS = 1000;

/**
 * How long to wait for the thread's next answer: until the front call's
 * deadline or its next stall check, whichever is first; 0 when one is due.
 * Whole milliseconds, rounded up: a shorter wait ended before its time, and
 * the event loop spun on waits of a fraction of a millisecond until the clock
 * reached the check. (A check already due once waited for the deadline
 * instead: the clock read here had just passed it, while the one read in
 * settle() had not. Calls queued behind a slow one then waited all of it.)
 */
export function waitMs(now: number, deadline: number, checkAt: number): number {
  return Math.max(0, Math.ceil(Math.min(deadline, checkAt) - now));
}

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
  /** A call finished (or the instance started): it may take more. */
  released(inst: WasmInstance): void;
  /** The instance is gone (timeout, crash, failed re-instantiation). */
  died(inst: WasmInstance): void;
  /** Calls the instance accepted but never started, for another instance to serve. */
  resubmit(jobs: WasmJob[]): void;
  /** The instance has made no progress for STALL_MS (and is not merely waiting for a core): its call is slow. */
  stalled(inst: WasmInstance): void;
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
  /**
   * How long a call takes inside the module, µs: the shorter of the last two
   * (one call stretched by a preemption or a GC does not make a module slow);
   * -1 until the second call finished (the first includes warming the
   * thread's own code: up to ~1 ms).
   */
  callUs = -1;
  private prevCallUs = -1;
  private calls = 0;
  /** Instantiation and initialization inside the thread, ms (the rest of a cold start is the thread's own start). */
  instantiateMs = 0;
  readonly generation: number;
  private readonly worker: Worker;
  private readonly ring: Ring;
  private readonly hdr: Int32Array;
  /** The calls in flight, by slot. */
  private readonly jobs: Array<WasmJob | null> = new Array<WasmJob | null>(RING_SLOTS).fill(null);
  /** Calls submitted and calls answered (running counts; call n is in slot n % RING_SLOTS). */
  private submitted = 0;
  private answered = 0;
  /** Whether a waitAsync on DONE is pending. */
  private waiting = false;
  private collecting = false;
  /** Why the thread failed to re-instantiate, for the answer to a call it strands. */
  private failure = '';
  /** DONE as quick() last saw it, and when it saw it change. */
  private doneSeen = 0;
  private doneSeenAt = 0;
  /** When the oldest call in flight reached the front, and its deadline. */
  private frontSince = 0;
  private deadline = 0;
  /** When to look again whether the front call is stuck (Infinity: judged stuck already). */
  private checkAt = 0;
  /** Tells a thread stuck in a call from one waiting for a core (set when the thread is ready). */
  private probe = new RunQueueProbe(0);
  private timeoutMs = 0;
  private readonly onAsyncDone = () => this.asyncDone();
  /**
   * Whether a wake-up of the thread is due at the end of this turn of the event
   * loop. Waking it per call cost the event loop ~20 µs a call on a loaded 2-core
   * machine (the futex wake, and the woken thread preempting the event loop on
   * its own core); once per turn, the thread serves the whole burst.
   */
  private wakeSoon = false;
  private readonly wake = () => {
    this.wakeSoon = false;
    Atomics.notify(this.hdr, HDR.AVAIL, 1);
  };
  /** A bug while completing a call must not become an unhandled rejection (it would end the worker), nor leave the calls after it unanswered. */
  private readonly onAsyncError = (err: Error) => {
    this.opts.log.error({ module: this.opts.label, err: err.message, stack: err.stack }, 'completing a WASM call failed');
    if (this.state !== 'dead' && this.submitted !== this.answered && !this.waiting) this.wait();
  };
  private startResolve!: () => void;
  private startReject!: (err: FlexiError) => void;
  readonly started: Promise<WasmInstance>;

  constructor(compiled: CompiledModule, private readonly opts: InstanceOptions) {
    this.generation = opts.generation;
    const capBytes = compiled.info.capPages * WASM_PAGE;
    const buffers = Channel.buffers(Math.max(capBytes, opts.maxRequestBytes));
    const { port1, port2 } = new MessageChannel();
    port1.unref();
    this.ring = new Ring(buffers, port1, CTL.SWAP_TO_THREAD);
    this.hdr = this.ring.hdr;
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
      this.ring.close();
      this.onGone(new FlexiError('FLX_WASM_CRASHED', `${opts.label}: the instance thread exited`));
    });
    // An idle instance must not keep its worker process alive at shutdown. After the
    // listeners: adding a 'message' listener refs the worker again.
    this.worker.unref();
    if (opts.thread.exited) queueMicrotask(() => this.onGone(new FlexiError('FLX_WASM_CRASHED', `${opts.label}: the instance thread exited before it started`)));
    else opts.thread.start(init, [port2]);
  }

  /** Calls submitted and not yet answered. */
  get inFlight(): number {
    return this.submitted - this.answered;
  }

  /**
   * Whether another call may queue here now: a free slot, and the calls ahead
   * expected to finish within QUEUE_BUDGET_US (an idle instance always may).
   */
  hasRoom(): boolean {
    const n = this.submitted - this.answered;
    if (n === 0) return this.state === 'idle';
    return this.state === 'busy' && n < RING_SLOTS && this.callUs >= 0 && this.quick();
  }

  /**
   * Whether the calls in flight are expected to be done within QUEUE_BUDGET_US,
   * judged by the thread's own progress (DONE), which the event loop may not have collected yet.
   */
  quick(): boolean {
    const done = Atomics.load(this.hdr, HDR.DONE);
    const now = performance.now();
    if (done !== this.doneSeen) {
      this.doneSeen = done;
      this.doneSeenAt = now;
    }
    // Before calls were measured, only a stall tells.
    return (this.submitted - done) * this.callUs < QUEUE_BUDGET_US && !this.stuck(now);
  }

  /**
   * No call finished for STALL_MS and the thread is not merely waiting for a
   * core (run-queue-probe.ts): the front call is slow, and what queues behind
   * it would wait. A starved thread is left its calls: another instance would
   * wait for a core as well, and costs an isolate.
   */
  private stuck(now: number): boolean {
    const since = Math.max(this.frontSince, this.doneSeenAt);
    return now - since >= STALL_MS && this.probe.stuck(now, since);
  }

  private onMessage(m: ThreadMessage): void {
    if (m.type === 'output') {
      this.opts.log.info({ module: this.opts.label, stream: m.fd === 1 ? 'stdout' : 'stderr' }, m.line);
    } else if (m.type === 'ready') {
      if (this.state !== 'starting') return;
      this.state = 'idle';
      this.instantiateMs = m.instantiateMs;
      this.probe = new RunQueueProbe(m.tid);
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

  /** The thread is gone: answer the call it was running, hand the others back, tell the pool. */
  private onGone(err: FlexiError): void {
    const was = this.state;
    this.state = 'dead';
    if (was === 'starting') {
      this.startReject(err);
      return;
    }
    if (was === 'dead') return;
    // Answers the thread finished before it went are still good (the pool hears of none: the instance is dead).
    this.collect();
    const stranded = this.takeJobs();
    // Release a pending waitAsync (it finds the instance dead).
    Atomics.notify(this.hdr, HDR.DONE);
    this.opts.owner.died(this);
    if (stranded.length === 0) return;
    stranded[0].done(new FlexiError('FLX_WASM_CRASHED', `${this.opts.label}: the instance thread died during the call${this.failure ? ` (${this.failure})` : ''}`));
    if (stranded.length > 1) this.opts.owner.resubmit(stranded.slice(1));
  }

  /**
   * The calls the thread has not started, taken back (newest last), when it
   * is stuck: for the pool to give to another instance.
   */
  takeBack(): WasmJob[] {
    if (this.state !== 'busy') return [];
    const n = Atomics.exchange(this.hdr, HDR.AVAIL, 0);
    const out: WasmJob[] = [];
    for (let k = this.submitted - n; k < this.submitted; k++) {
      const slot = k % RING_SLOTS;
      out.push(this.jobs[slot]!);
      this.jobs[slot] = null;
    }
    this.submitted -= n;
    return out;
  }

  /** The calls in flight, oldest first, taken off this instance. */
  private takeJobs(): WasmJob[] {
    const out: WasmJob[] = [];
    for (let k = this.answered; k < this.submitted; k++) {
      const slot = k % RING_SLOTS;
      out.push(this.jobs[slot]!);
      this.jobs[slot] = null;
    }
    this.answered = this.submitted;
    return out;
  }

  /** Queue a call on the thread (check hasRoom first). */
  submit(job: WasmJob, timeoutMs: number): void {
    const k = this.submitted;
    const slot = k % RING_SLOTS;
    const len = writeRequest(this.ring.slots[slot], job.req, job.body);
    if (len < 0) {
      job.done(new FlexiError('FLX_WASM_MEMORY', `${this.opts.label}: the request does not fit within the module's memory cap`));
      if (k === this.answered) this.opts.owner.released(this);
      return;
    }
    this.ring.slots[slot].ctl[CTL.REQ_LEN] = len;
    // Behind a call in flight, it may be taken back (that call stuck, or the
    // thread dead) and served elsewhere from its request: keep a copy of the
    // fast lane's reused one, which the next request overwrites.
    if (k !== this.answered) job.queued?.();
    this.jobs[slot] = job;
    this.timeoutMs = timeoutMs;
    this.submitted = k + 1;
    Atomics.add(this.hdr, HDR.AVAIL, 1);
    // A thread still serving earlier calls gets to it without a wake-up; a sleeping one is
    // woken once per turn of the event loop, after every request read in it was submitted.
    if (!this.wakeSoon) {
      this.wakeSoon = true;
      setImmediate(this.wake);
    }
    if (k === this.answered) {
      this.state = 'busy';
      this.frontSince = performance.now();
      this.deadline = this.frontSince + timeoutMs;
      this.checkAt = this.frontSince + STALL_MS;
    }
    // While answers are being collected, the collector waits afterwards.
    if (!this.waiting && !this.collecting) this.wait();
  }

  /**
   * Wait (asynchronously) for DONE to move past the answers collected, at
   * most until the front call's deadline, or until it counts as stalled (then
   * the calls queued behind it, if any, go elsewhere; none queue after that).
   */
  private wait(): void {
    for (;;) {
      const w = waitAsync(this.hdr, HDR.DONE, this.answered, waitMs(performance.now(), this.deadline, this.checkAt));
      if (w.async) {
        this.waiting = true;
        w.value.then(this.onAsyncDone).catch(this.onAsyncError);
        return;
      }
      // DONE moved already (or no time is left): settle now.
      if (!this.settle()) return;
    }
  }

  private asyncDone(): void {
    this.waiting = false;
    if (this.settle()) this.wait();
  }

  /** Collect what is answered, or time the front call out. True when calls remain to wait for. */
  private settle(): boolean {
    if (this.state === 'dead') return false;
    // Judged by the clock, whatever ended the wait: a check that is due is never skipped.
    if (this.collect() === 0 && this.submitted !== this.answered) {
      const now = performance.now();
      if (now >= this.deadline) {
        this.timedOut();
        return false;
      }
      if (now >= this.checkAt) {
        if (this.stuck(now)) {
          this.checkAt = Infinity;
          // Calls queued behind it go elsewhere; so do the pool's waiting calls and its next ones.
          this.opts.owner.stalled(this);
        } else {
          // Waiting for a core (or not judged yet): look again in a while.
          this.checkAt = now + PROBE_MS;
        }
      }
    }
    // collect() answered calls, which may have stopped this instance (a reload, the pool closing).
    return (this.state as string) !== 'dead' && this.submitted !== this.answered && !this.waiting;
  }

  /**
   * Answer every call the thread has finished, oldest first. Returns how many.
   * The pool may queue more calls here from `released` meanwhile.
   */
  private collect(): number {
    if (this.collecting) return 0;
    this.collecting = true;
    let n = 0;
    try {
      for (let done = Atomics.load(this.hdr, HDR.DONE); this.answered < done && this.answered < this.submitted; n++) {
        const slot = this.answered % RING_SLOTS;
        const result = readResponse(this.ring.slots[slot]);
        const job = this.jobs[slot]!;
        this.jobs[slot] = null;
        this.answered++;
        if (++this.calls > 1) this.callUs = this.prevCallUs < 0 ? result.callUs : Math.min(result.callUs, this.prevCallUs);
        this.prevCallUs = this.calls > 1 ? result.callUs : -1;
        this.lastUsed = performance.now();
        if (this.answered !== this.submitted) {
          this.frontSince = this.lastUsed;
          this.deadline = this.lastUsed + this.timeoutMs;
          this.checkAt = this.lastUsed + STALL_MS;
        } else if (this.state === 'busy') {
          this.state = 'idle';
        }
        job.done(result);
        if (this.state !== 'dead') this.opts.owner.released(this);
        if (this.answered === done) done = Atomics.load(this.hdr, HDR.DONE);
      }
    } finally {
      this.collecting = false;
    }
    return n;
  }

  private timedOut(): void {
    const stranded = this.takeJobs();
    this.state = 'dead';
    void this.worker.terminate();
    this.opts.owner.died(this);
    stranded[0].done(new FlexiError('FLX_WASM_TIMEOUT', `${this.opts.label} did not answer within ${this.timeoutMs} ms; its instance was stopped`));
    if (stranded.length > 1) this.opts.owner.resubmit(stranded.slice(1));
  }

  /** Ask an idle instance to exit (flexi_deinit runs); a busy or stuck one is terminated. */
  stop(): void {
    if (this.state === 'dead') return;
    const wasIdle = this.state === 'idle';
    this.state = 'dead';
    if (wasIdle) {
      Atomics.store(this.hdr, HDR.EXIT, 1);
      Atomics.notify(this.hdr, HDR.AVAIL);
      setTimeout(() => void this.worker.terminate(), EXIT_GRACE_MS).unref();
    } else {
      void this.worker.terminate();
    }
  }
}
