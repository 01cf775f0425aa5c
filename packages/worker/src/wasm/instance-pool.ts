/**
 * The instances of one module (with one set of limits) in a worker process:
 * started on demand, reused, queued for, and released when idle.
 *
 *   no instance ──first request──> spawn (thread + instantiate: the cold start)
 *        ^                             │
 *        │                             v
 *   idle > idleMs <── idle <──call──> busy ──timeout/crash──> gone (next request spawns)
 *
 * Up to `instances` run at once; further calls queue (MAX_QUEUE, then 503).
 * Idle instances are kept on a stack, so the most recently used one serves
 * next and the others age out: under a light load the pool shrinks back.
 *
 * Metrics: live instances (a gauge) and cold starts go to the slot of the
 * first route using the pool in the current metrics file (countInto).
 */
import type { Logger } from 'pino';
import { FlexiError } from '@flexilib/contract';
import { R } from '@flexilib/contract/metrics-layout';
import type { RouteCounters } from '../executor.js';
import { SYNC_WAIT_MS, WasmInstance, type InstanceOwner, type WasmJob } from './instance.js';
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
  /** Whether the last call outran the synchronous wait (then the next one waits asynchronously). */
  private slow = false;
  private counters: RouteCounters | null = null;

  constructor(readonly opts: PoolOptions) {}

  /**
   * Count instances and cold starts into `counters` from now on (a new
   * metrics file). Routes sharing the pool (same module and limits) count it
   * on the first of them; the previous file's gauge drops to 0.
   */
  countInto(counters: RouteCounters): void {
    if (this.counters?.table === counters.table) return;
    this.counters?.set(R.wasmInstances, 0);
    this.counters = counters;
    counters.set(R.wasmInstances, this.live.size);
  }

  run(job: WasmJob): void {
    const inst = this.idle.pop();
    if (inst) {
      this.dispatch(inst, job);
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
    if (this.starting < this.queue.length && this.live.size + this.starting < this.opts.limits.instances) this.spawn();
  }

  private dispatch(inst: WasmInstance, job: WasmJob): void {
    inst.call(job, this.opts.limits.timeoutMs, this.slow ? 0 : SYNC_WAIT_MS);
  }

  private spawn(): void {
    this.starting++;
    const generation = this.generation;
    const t0 = performance.now();
    this.opts
      .load()
      .then((compiled) => new WasmInstance(compiled, { arenaBytes: this.opts.arenaBytes, maxRequestBytes: this.opts.maxRequestBytes, label: this.opts.label, log: this.opts.log, owner: this, generation, thread: this.opts.threads.take() }).started)
      .then(
        (inst) => {
          this.starting--;
          this.lastError = null;
          this.live.add(inst);
          this.counters?.set(R.wasmInstances, this.live.size);
          this.counters?.add(R.wasmColdStarts, 1);
          this.counters?.add(R.wasmColdStartSeconds, (performance.now() - t0) / 1000);
          this.opts.log.debug({ module: this.opts.label, ms: Math.round((performance.now() - t0) * 100) / 100, instantiateMs: inst.instantiateMs, instances: this.live.size }, 'WASM instance started');
          this.released(inst);
        },
        (err: unknown) => {
          this.starting--;
          const e = err instanceof FlexiError ? err : new FlexiError('FLX_WASM_INIT', `${this.opts.label}: ${(err as Error).message}`);
          this.lastError = { err: e, at: performance.now() };
          this.opts.log.error({ module: this.opts.label, code: e.code, err: e.message }, 'WASM module unavailable');
          // Calls waiting for this start fail unless another instance will serve them.
          if (this.live.size === 0 && this.starting === 0) {
            for (const job of this.queue.splice(0)) job.done(e);
          }
        },
      );
  }

  /** An instance finished a call (or started): serve the queue, else keep it idle. */
  released(inst: WasmInstance): void {
    this.slow = inst.lastCallUs > SYNC_WAIT_MS * 1000;
    if (inst.generation !== this.generation || (this.closed && this.queue.length === 0)) {
      this.retire(inst);
      if (this.queue.length) this.spawn();
      return;
    }
    const job = this.queue.shift();
    if (job) {
      this.dispatch(inst, job);
      return;
    }
    if (this.opts.limits.idleMs === 0) {
      this.retire(inst);
      return;
    }
    this.idle.push(inst);
    this.armReaper(this.opts.limits.idleMs);
  }

  died(inst: WasmInstance): void {
    this.live.delete(inst);
    this.counters?.set(R.wasmInstances, this.live.size);
    const i = this.idle.indexOf(inst);
    if (i >= 0) this.idle.splice(i, 1);
    if (this.queue.length && this.live.size + this.starting < this.opts.limits.instances) this.spawn();
  }

  private retire(inst: WasmInstance): void {
    this.live.delete(inst);
    this.counters?.set(R.wasmInstances, this.live.size);
    inst.stop();
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
    if (next !== Infinity) this.armReaper(Math.max(1, next - now));
    if (this.live.size === 0) this.opts.log.debug({ module: this.opts.label }, 'WASM module scaled to zero');
  }

  /** A new version of the module: idle instances go now, busy ones after their call. */
  reload(): void {
    this.generation++;
    this.lastError = null;
    for (const inst of this.idle.splice(0)) this.retire(inst);
  }

  /** No route uses this pool any more: release idle instances; queued calls are still served. */
  close(): void {
    this.closed = true;
    for (const inst of this.idle.splice(0)) this.retire(inst);
    if (this.reaper) clearTimeout(this.reaper);
    this.reaper = null;
  }
}
