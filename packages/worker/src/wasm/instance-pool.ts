/**
 * The instances of one module (with one set of limits) in a worker process:
 * started on demand, reused, queued for, and released when idle.
 *
 *   no instance ──first request──> spawn (thread + instantiate: the cold start)
 *        ^                             │
 *        │                             v
 *   idle > idleMs <── idle <──call──> busy ──timeout/crash──> gone (next request spawns)
 *
 * A call queues on the busy instance the last call went to while that one
 * has room, else goes to an idle instance (instance.ts hasRoom: calls of
 * microseconds queue there, a burst is served by one thread without a wake-up
 * per call), else waits in the pool's queue (MAX_QUEUE, then 503), and
 * another instance starts, up to `instances`, unless the busy ones are only
 * full of quick calls. Idle instances are kept on a stack, so the most
 * recently used one serves next and the others age out: under a light load
 * the pool shrinks back.
 *
 * Where calls run is decided when the module is loaded: a module made
 * interruptible (module-check.ts, unless run = thread) gets one instance on
 * the event loop (loop-instance.ts), which serves every call synchronously in
 * run(): no thread, queue or ring. Such a module that asks to sleep moves its
 * calls to instance threads until the module is reloaded.
 *
 * Metrics: live instances (a gauge) and cold starts go to the slot of the
 * first route using the pool in the current metrics file (countInto).
 */
import type { Logger } from 'pino';
import { FlexiError } from '@flexilib/contract';
import { R } from '@flexilib/contract/metrics-layout';
import type { RouteCounters } from '../executor.js';
import { WasmInstance, type InstanceOwner, type WasmJob } from './instance.js';
import { LoopInstance, MOVE_TO_THREAD } from './loop-instance.js';
import type { WasmLimits } from '@flexilib/contract';
import type { CompiledModule } from './module-check.js';
import type { SpareThreads } from './thread-handle.js';

const MAX_QUEUE = 1024;
/** After a failed start, requests within this time get the same error instead of another attempt. */
const RETRY_AFTER_MS = 1000;

export interface PoolOptions {
  limits: WasmLimits;
  /** Names the module in messages and logs. */
  label: string;
  /** The compiled module (cached; recompiled when the file changed). */
  load(): Promise<CompiledModule>;
  arenaBytes: number;
  maxRequestBytes: number;
  log: Logger;
  /** Where instance threads come from (a spare started ahead when there is one). */
  threads: SpareThreads;
}

export class InstancePool implements InstanceOwner {
  private readonly idle: WasmInstance[] = [];
  private readonly live = new Set<WasmInstance>();
  private readonly queue: WasmJob[] = [];
  private starting = 0;
  private generation = 0;
  private closed = false;
  private reaper: NodeJS.Timeout | null = null;
  private lastError: { err: FlexiError; at: number } | null = null;
  /** The instance the last call was queued on (it takes more while it has room). */
  private current: WasmInstance | null = null;
  private counters: RouteCounters | null = null;
  /** The instance on the event loop, when this module's calls run there. */
  private loop: LoopInstance | null = null;
  /** Whether the module's calls run on the event loop: unknown until it is first loaded. */
  private onLoop: boolean | undefined;

  constructor(readonly opts: PoolOptions) {
    if (opts.limits.run === 'thread') this.onLoop = false;
  }

  /** No instance, running or starting (the next call is a cold start). */
  get empty(): boolean {
    return this.live.size + this.starting === 0 && this.loop === null;
  }

  /** The next call is a cold start on an instance thread (a spare thread would serve it). */
  get wantsThread(): boolean {
    return this.onLoop === false && this.empty;
  }

  private get instances(): number {
    return this.live.size + (this.loop?.started ? 1 : 0);
  }

  /**
   * Count instances and cold starts into `counters` from now on (a new
   * metrics file). Routes sharing the pool (same module and limits) count it
   * on the first of them; the previous file's gauge drops to 0.
   */
  countInto(counters: RouteCounters): void {
    if (this.counters?.table === counters.table) return;
    this.counters?.set(R.wasmInstances, 0);
    this.counters = counters;
    counters.set(R.wasmInstances, this.instances);
  }

  run(job: WasmJob): void {
    if (this.loop !== null) {
      this.runOnLoop(this.loop, job);
      return;
    }
    const cur = this.current;
    // Never ahead of calls already waiting in the pool (they go first as slots free).
    const inst = cur !== null && this.queue.length === 0 && cur.inFlight > 0 && cur.hasRoom() ? cur : this.idle.pop();
    if (inst) {
      this.current = inst;
      inst.submit(job, this.opts.limits.timeoutMs);
      return;
    }
    if (this.live.size === 0 && this.starting === 0 && this.lastError && performance.now() - this.lastError.at < RETRY_AFTER_MS) {
      job.done(this.lastError.err);
      return;
    }
    if (this.queue.length >= MAX_QUEUE) {
      job.done(new FlexiError('FLX_PLUGIN_BUSY', `${this.opts.label} is busy: ${MAX_QUEUE} calls already queued`));
      return;
    }
    job.queued?.();
    this.queue.push(job);
    this.grow();
  }

  /**
   * Start another instance for the queue, unless the limit is reached, a busy
   * one will soon take it, or the first one is still starting (how long the
   * module's calls take decides whether one instance serves a burst).
   */
  private grow(): void {
    if (this.starting >= this.queue.length || this.live.size + this.starting >= this.opts.limits.instances) return;
    if (this.live.size === 0 && this.starting > 0) return;
    const cur = this.current;
    if (cur !== null && cur.state === 'busy') {
      // Full of quick calls: it frees a slot within microseconds, sooner than a thread starts.
      if (cur.quick()) return;
      // Stuck in a slow call: what it has not started goes to the new instance too.
      this.current = null;
      const back = cur.takeBack();
      for (let i = back.length - 1; i >= 0; i--) this.queue.unshift(back[i]);
    }
    this.spawn();
  }

  /** Calls an instance accepted but could not run (it died, or is stuck): first in line again. */
  resubmit(jobs: WasmJob[]): void {
    if (jobs.length === 0) return;
    for (let i = jobs.length - 1; i >= 0; i--) this.queue.unshift(jobs[i]);
    const inst = this.idle.pop();
    if (inst) this.released(inst);
    else this.grow();
  }

  /**
   * An instance is stuck in a slow call: the calls queued behind it go
   * elsewhere, and so do calls waiting in the pool (they had been left for it
   * while it looked quick: with nothing queued on it, nothing else would start
   * another instance for them before the stuck call's deadline).
   */
  stalled(inst: WasmInstance): void {
    if (this.current === inst) this.current = null;
    const back = inst.takeBack();
    if (back.length > 0) this.resubmit(back);
    else if (this.queue.length > 0) this.grow();
  }

  /**
   * Serve a call on the event loop, now. A failed call dropped the instance
   * (the next one instantiates again, synchronously); a call whose module
   * asked to sleep or outran its slice (run = auto) is served again from the
   * start on an instance thread.
   */
  private runOnLoop(loop: LoopInstance, job: WasmJob): void {
    if (!loop.started) {
      try {
        loop.start();
      } catch (err) {
        this.dropLoop();
        this.lastError = { err: err as FlexiError, at: performance.now() };
        this.opts.log.error({ module: this.opts.label, code: (err as FlexiError).code, err: (err as Error).message }, 'WASM module unavailable');
        job.done(err as FlexiError);
        return;
      }
      this.counters?.set(R.wasmInstances, this.instances);
    }
    const r = loop.call(job);
    if (r === MOVE_TO_THREAD) {
      this.opts.log.info({ module: this.opts.label, ...loop.moved }, `WASM module ${loop.movedBecause}: its calls run on instance threads from now on`);
      this.dropLoop();
      this.onLoop = false;
      this.run(job);
      return;
    }
    if (!loop.started) this.counters?.set(R.wasmInstances, this.instances);
    else if (this.opts.limits.idleMs === 0) this.dropLoop();
    else this.armReaper(this.opts.limits.idleMs);
    job.done(r);
  }

  /** Release the event loop's instance (flexi_deinit runs); the next call loads the module again. */
  private dropLoop(): void {
    const loop = this.loop;
    if (loop === null) return;
    this.loop = null;
    loop.stop();
    this.counters?.set(R.wasmInstances, this.instances);
  }

  private spawn(): void {
    this.starting++;
    const generation = this.generation;
    const t0 = performance.now();
    this.opts
      .load()
      .then<LoopInstance | WasmInstance>((compiled) => {
        if (compiled.info.fueled && this.onLoop !== false) {
          const inst = new LoopInstance(compiled, { arenaBytes: this.opts.arenaBytes, label: this.opts.label, log: this.opts.log, timeoutMs: this.opts.limits.timeoutMs, generation, pinned: this.opts.limits.run === 'loop' });
          inst.start();
          return inst;
        }
        if (compiled.notInterruptible !== undefined && this.onLoop === undefined) {
          this.opts.log.info({ module: this.opts.label, reason: compiled.notInterruptible }, 'WASM module runs on instance threads: it cannot be made interruptible');
        }
        this.onLoop = false;
        return new WasmInstance(compiled, { arenaBytes: this.opts.arenaBytes, maxRequestBytes: this.opts.maxRequestBytes, label: this.opts.label, log: this.opts.log, owner: this, generation, thread: this.opts.threads.take() }).started;
      })
      .then(
        (inst: LoopInstance | WasmInstance) => {
          this.starting--;
          this.lastError = null;
          if (inst instanceof LoopInstance) this.onLoop = true;
          else this.live.add(inst);
          this.counters?.add(R.wasmColdStarts, 1);
          this.counters?.add(R.wasmColdStartSeconds, (performance.now() - t0) / 1000);
          this.opts.log.debug({ module: this.opts.label, ms: Math.round((performance.now() - t0) * 100) / 100, instantiateMs: inst.instantiateMs, instances: this.instances + (inst instanceof LoopInstance ? 1 : 0), onLoop: inst instanceof LoopInstance }, 'WASM instance started');
          if (inst instanceof LoopInstance) this.loopStarted(inst);
          else {
            this.counters?.set(R.wasmInstances, this.instances);
            this.released(inst);
          }
        },
        (err: unknown) => {
          this.starting--;
          const e = err instanceof FlexiError ? err : new FlexiError('FLX_WASM_INIT', `${this.opts.label}: ${(err as Error).message}`);
          this.lastError = { err: e, at: performance.now() };
          this.opts.log.error({ module: this.opts.label, code: e.code, err: e.message }, 'WASM module unavailable');
          // Calls waiting for this start fail unless another instance will serve them.
          if (this.empty) {
            for (const job of this.queue.splice(0)) job.done(e);
            this.opts.threads.refillSoon();
          }
        },
      );
  }

  /** The event loop's instance started: it serves what queued meanwhile, and every call from now on. */
  private loopStarted(inst: LoopInstance): void {
    if (inst.generation !== this.generation || this.closed) {
      inst.stop();
      if (this.queue.length) this.spawn();
      return;
    }
    this.loop = inst;
    this.counters?.set(R.wasmInstances, this.instances);
    for (const job of this.queue.splice(0)) this.run(job);
    if (this.loop !== null && this.opts.limits.idleMs > 0) this.armReaper(this.opts.limits.idleMs);
  }

  /** An instance finished a call (or started): give it queued calls while it has room, else keep it idle. */
  released(inst: WasmInstance): void {
    if (inst.generation !== this.generation || (this.closed && this.queue.length === 0)) {
      if (inst.inFlight > 0) return;
      if (this.current === inst) this.current = null;
      this.retire(inst);
      if (this.queue.length) this.spawn();
      return;
    }
    while (this.queue.length > 0 && inst.hasRoom()) {
      this.current = inst;
      inst.submit(this.queue.shift()!, this.opts.limits.timeoutMs);
    }
    if (this.queue.length > 0) this.grow();
    if (inst.inFlight > 0 || inst.state !== 'idle') return;
    if (this.current === inst) this.current = null;
    if (this.opts.limits.idleMs === 0) {
      this.retire(inst);
      return;
    }
    this.idle.push(inst);
    this.armReaper(this.opts.limits.idleMs);
  }

  died(inst: WasmInstance): void {
    if (this.current === inst) this.current = null;
    this.live.delete(inst);
    this.counters?.set(R.wasmInstances, this.instances);
    if (this.wantsThread) this.opts.threads.refillSoon();
    const i = this.idle.indexOf(inst);
    if (i >= 0) this.idle.splice(i, 1);
    if (this.queue.length && this.live.size + this.starting < this.opts.limits.instances) this.spawn();
  }

  private retire(inst: WasmInstance): void {
    if (this.current === inst) this.current = null;
    this.live.delete(inst);
    this.counters?.set(R.wasmInstances, this.instances);
    inst.stop();
    if (this.wantsThread) this.opts.threads.refillSoon();
  }

  private armReaper(ms: number): void {
    if (this.reaper) return;
    this.reaper = setTimeout(() => this.reap(), ms);
    this.reaper.unref();
  }

  /** Release instances idle for idleMs; re-arm for the next one due. */
  private reap(): void {
    this.reaper = null;
    const now = performance.now();
    const idleMs = this.opts.limits.idleMs;
    let next = Infinity;
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const inst = this.idle[i];
      const due = inst.lastUsed + idleMs;
      if (due <= now) {
        this.idle.splice(i, 1);
        this.retire(inst);
      } else {
        next = Math.min(next, due);
      }
    }
    const loop = this.loop;
    if (loop !== null) {
      const due = loop.lastUsed + idleMs;
      if (due <= now) this.dropLoop();
      else next = Math.min(next, due);
    }
    if (next !== Infinity) this.armReaper(Math.max(1, next - now));
    if (this.instances === 0) this.opts.log.debug({ module: this.opts.label }, 'WASM module scaled to zero');
  }

  /** A new version of the module: idle instances go now, busy ones after their call. */
  reload(): void {
    this.generation++;
    this.current = null;
    this.lastError = null;
    this.dropLoop();
    // The new version decides afresh where its calls run.
    if (this.opts.limits.run !== 'thread') this.onLoop = undefined;
    for (const inst of this.idle.splice(0)) this.retire(inst);
  }

  /** No route uses this pool any more: release idle instances; queued calls are still served. */
  close(): void {
    this.closed = true;
    this.current = null;
    this.dropLoop();
    for (const inst of this.idle.splice(0)) this.retire(inst);
    if (this.reaper) clearTimeout(this.reaper);
    this.reaper = null;
  }
}
