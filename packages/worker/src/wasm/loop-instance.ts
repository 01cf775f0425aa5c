/**
 * An instance that runs its calls on the worker's event loop: no thread, no
 * isolate, no channel. The request is written straight into linear memory,
 * handle_request runs synchronously, the answer is read straight out of it.
 *
 * What stops a runaway call is the module itself: it was rewritten with fuel
 * checks (fuel.ts), so every 2^16 loop turns or function calls it calls
 * tick(), which throws once the call's deadline has passed; the throw unwinds
 * the module (504, and the instance is replaced: its state is mid-call).
 *
 * With run = auto, a call that holds the event loop longer than LOOP_SLICE_MS
 * (and spent SLICE_CPU_MS of it on the CPU) or asks to sleep (WASI poll_oneoff with a clock: nanosleep, usleep), which
 * it cannot do here without stopping the worker, is abandoned at that point
 * (MovesToThread), the instance dropped (its state is mid-call, and its output
 * during the call is discarded with it), and the pool serves the call again
 * from the start on an instance thread, where the module's calls run from then
 * on (instance-pool.ts). So a runaway module costs its worker's other requests
 * one slice, not its whole time limit. With run = loop the route asked for
 * the event loop whatever it costs: a sleep blocks it, and a long call holds
 * it, up to the call's deadline plus one fuel period (then 504).
 */
import type { Logger } from 'pino';
import { FlexiError } from '@flexilib/contract';
import { ABI_VERSION } from '@flexilib/plugin-abi/layout';
import { KIND, failedCall, measureResponse, overflowed, readLinearResponse, relocateRequest, writeRequest, type CallResult, type Latin1Buffer, type RequestArea } from './channel.js';
import { FUEL } from './fuel.js';
import type { WasmJob } from './instance.js';
import { InitError, capNote, describe, growRequestArea, instantiate, nearCap, refreshMemory, type Live } from './live-instance.js';
import type { CompiledModule } from './module-check.js';
import { mib } from './module-info.js';
import { ProcExit, blockFor } from './wasi-shim.js';

/** Thrown by tick() past the call's deadline: unwinds the module. */
class Interrupted extends Error {}
/** Thrown (run = auto) when the module asks to sleep or outruns its slice: the call moves to a thread. */
class MovesToThread extends Error {
  constructor(message: string, readonly figures: { wallMs: number; cpuMs: number } | null = null) {
    super(message);
  }
}

/**
 * The longest a call holds the event loop under run = auto before it moves to
 * an instance thread: far above what a request handler that belongs on the
 * loop takes (the C example: ~10 µs).
 */
export const LOOP_SLICE_MS = 50;
/**
 * CPU time the process must have spent in the call (since its first fuel
 * tick) for the slice to count: a worker merely kept from its core on a busy
 * host (seen: over 100 ms at a load average of 10-15 on two cores) is not
 * running a long call, and moving its module to threads would be for nothing.
 */
export const SLICE_CPU_MS = LOOP_SLICE_MS / 2;

/** The process's CPU time (user + system), µs: one getrusage, read only by calls long enough to tick. */
function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** call()'s answer when the module wants to sleep: serve the call on a thread. */
export const MOVE_TO_THREAD = Symbol('move to a thread');

export interface LoopOptions {
  arenaBytes: number;
  label: string;
  log: Logger;
  timeoutMs: number;
  generation: number;
  /** run = loop: a sleep blocks the event loop and a long call holds it (up to the deadline) instead of moving to a thread. */
  pinned: boolean;
}

const MAX_HELD_LINES = 256;

/** Linear memory as writeRequest's target: the request area, regrown by the module's allocator. */
class MemoryArea implements RequestArea {
  buf!: Latin1Buffer;
  u8!: Uint8Array;
  u32!: Uint32Array;
  private buffer: ArrayBuffer | null = null;
  /** The size of the last image placed. */
  wanted = 0;
  live!: Live;

  place(bytes: number): number {
    const live = this.live;
    this.wanted = bytes;
    if (!growRequestArea(live, bytes)) return -1;
    this.refresh();
    return live.reqBase;
  }

  refresh(): void {
    const live = this.live;
    refreshMemory(live);
    if (live.buffer === this.buffer) return;
    this.buffer = live.buffer;
    this.buf = Buffer.from(live.buffer) as Latin1Buffer;
    this.u8 = live.m8;
    this.u32 = live.m32;
  }
}

export class LoopInstance {
  readonly generation: number;
  /** performance.now() when the instance last started a call: the running call's start, and (calls are synchronous) as good as its end for idling. */
  lastUsed = 0;
  /** Instantiation and initialization, ms. */
  instantiateMs = 0;
  private live: Live | null = null;
  private deadline = 0;
  /** When the running call stops being the loop's (run = auto: then it moves to a thread). */
  private sliceEnd = Infinity;
  /** Why the last call that returned MOVE_TO_THREAD moved, and (past its slice) its time then, for the log. */
  movedBecause = '';
  moved: { wallMs: number; cpuMs: number } | null = null;
  /** Calls made, and the call whose CPU time was sampled at cpuAt (µs, its first tick). */
  private calls = 0;
  private sampled = -1;
  private cpuAt = 0;
  private readonly area = new MemoryArea();
  /** The response struct as reset before every call, in words. */
  private template: Uint32Array = new Uint32Array(0);
  /**
   * The module's output lines during a call, logged once it ends (dropped if
   * the call moves to a thread), or as soon as MAX_HELD_LINES are held: a
   * module printing in a loop until its deadline must not grow the worker's heap.
   */
  private lines: Array<1 | 2 | string> = [];
  private readonly tick = (fuel: WebAssembly.Global) => {
    const now = performance.now();
    if (now >= this.deadline) throw new Interrupted('interrupted at its deadline');
    if (now >= this.sliceEnd) this.sliceOver(now);
    else if (this.sampled !== this.calls) this.sampleCpu();
    fuel.value = FUEL;
  };
  private readonly output = (fd: 1 | 2, line: string) => {
    if (this.lines.push(fd, line) >= 2 * MAX_HELD_LINES) this.emitLines();
  };
  private readonly sleep = (ms: number) => {
    if (!this.opts.pinned) throw new MovesToThread('sleeps (poll_oneoff)');
    const left = this.deadline - performance.now();
    blockFor(Math.max(0, Math.min(ms, left)));
    if (ms >= left) throw new Interrupted('interrupted at its deadline');
  };

  private sampleCpu(): void {
    this.sampled = this.calls;
    this.cpuAt = cpuMicros();
  }

  /**
   * The call has held the loop for its slice by the wall clock: it moves to a
   * thread if it also spent SLICE_CPU_MS on the CPU since its first tick;
   * otherwise the process was mostly kept from its core, and it is looked at
   * again once it could have spent that much more.
   */
  private sliceOver(now: number): void {
    if (this.sampled === this.calls) {
      const cpuMs = (cpuMicros() - this.cpuAt) / 1000;
      if (cpuMs >= SLICE_CPU_MS) {
        throw new MovesToThread(`held the event loop for ${LOOP_SLICE_MS} ms in one call`, { wallMs: Math.round(now - this.lastUsed), cpuMs: Math.round(cpuMs) });
      }
    } else this.sampleCpu();
    this.sliceEnd = now + SLICE_CPU_MS;
  }

  constructor(private readonly compiled: CompiledModule, private readonly opts: LoopOptions) {
    this.generation = opts.generation;
  }

  /** Whether an instance is live (false after a failed call: the next one instantiates again). */
  get started(): boolean {
    return this.live !== null;
  }

  /** Instantiate (the cold start, or after a failed call). Throws FlexiError. */
  start(): void {
    const t0 = performance.now();
    this.deadline = t0 + this.opts.timeoutMs;
    // Instantiation runs once per instance: its own time limit, no slice.
    this.sliceEnd = Infinity;
    try {
      this.live = instantiate({ module: this.compiled.module, info: this.compiled.info, arenaBytes: this.opts.arenaBytes, label: this.opts.label, output: this.output, sleep: this.sleep, tick: this.tick });
    } catch (err) {
      this.emitLines();
      if (err instanceof InitError) throw new FlexiError(err.code, err.message);
      throw new FlexiError('FLX_WASM_INIT', `${this.opts.label}: ${describe(err)}`);
    }
    this.emitLines();
    this.area.live = this.live;
    this.area.refresh();
    this.template = new Uint32Array(this.live.template.buffer, this.live.template.byteOffset, this.live.template.byteLength >>> 2);
    this.instantiateMs = Math.round((performance.now() - t0) * 100) / 100;
  }

  /**
   * Serve one call now. A failed call drops the instance (the next call
   * instantiates again); MOVE_TO_THREAD: the module asked to sleep or
   * outran its slice (movedBecause says which).
   */
  call(job: WasmJob): CallResult | FlexiError | typeof MOVE_TO_THREAD {
    if (this.live === null) {
      try {
        this.start();
      } catch (err) {
        return err as FlexiError;
      }
    }
    const live = this.live!;
    const label = this.opts.label;
    const x = live.x;
    // The fuel is not reset per call (a JS API call per request): a call that starts low
    // only looks at the clock sooner.
    const now = performance.now();
    this.deadline = now + this.opts.timeoutMs;
    if (!this.opts.pinned) this.sliceEnd = now + LOOP_SLICE_MS;
    this.calls++;
    this.lastUsed = now;
    let rc: number;
    try {
      const len = writeRequest(this.area, job.req, job.body);
      if (len < 0) return this.fail(KIND.MEMORY, `${label}: a request of ${mib(this.area.wanted)} does not fit: ${capNote(live)}`);
      relocateRequest(this.area.u32, live.reqBase, ABI_VERSION);
      // The response struct reset: 15 words written here cost less than TypedArray#set's call.
      const m32 = this.area.u32;
      const t32 = this.template;
      for (let i = 0, r = live.respBase >>> 2; i < t32.length; i++) m32[r + i] = t32[i];
      rc = x.handle_request(live.reqBase, live.respBase);
    } catch (err) {
      return this.thrown(err, '');
    }
    live.flush();
    this.area.refresh();
    const m8 = live.m8;
    const m32 = live.m32;
    const bad = measureResponse(m8, m32, live.respBase);
    if (bad !== null) return this.fail(KIND.BAD_RESPONSE, `${label} returned an invalid response: ${bad}`);
    const result = readLinearResponse(this.area.buf, m32, live.respBase, rc);
    if (rc !== 0 && nearCap(live)) {
      // The module failed with its memory nearly exhausted: say so, and start afresh (linear memory never shrinks).
      return this.fail(KIND.MEMORY, `${label}: handle_request returned ${rc} with its ${capNote(live)}; a request probably needed more (raise memory = ...)`);
    }
    try {
      if (overflowed(m32, live.respBase, live.arenaAddr)) x.flexi_wasm_release(live.respBase);
      x.request_deinit?.();
    } catch (err) {
      return this.thrown(err, 'after the call');
    }
    this.emitLines();
    return result;
  }

  /** The module threw (a trap, proc_exit, the deadline, a sleep): the instance is dropped. */
  private thrown(err: unknown, when: string): CallResult | FlexiError | typeof MOVE_TO_THREAD {
    const live = this.live!;
    this.live = null;
    if (err instanceof MovesToThread) {
      this.movedBecause = err.message;
      this.moved = err.figures;
      this.lines = [];
      return MOVE_TO_THREAD;
    }
    live.flush();
    this.emitLines();
    const label = this.opts.label;
    if (err instanceof Interrupted) return new FlexiError('FLX_WASM_TIMEOUT', `${label} did not answer within ${this.opts.timeoutMs} ms; its instance was stopped`);
    if (err instanceof ProcExit) return failedCall(KIND.EXIT, `${label} ${describe(err)}`);
    if (when) return failedCall(KIND.TRAP, `${label} trapped ${when}: ${describe(err)}`);
    if (nearCap(live)) return failedCall(KIND.MEMORY, `${label} trapped: ${describe(err)} (${capNote(live)})`);
    return failedCall(KIND.TRAP, `${label} trapped: ${describe(err)}`);
  }

  private fail(kind: number, message: string): CallResult {
    this.live?.flush();
    this.live = null;
    this.emitLines();
    return failedCall(kind, message);
  }

  private emitLines(): void {
    const lines = this.lines;
    if (lines.length === 0) return;
    this.lines = [];
    for (let i = 0; i < lines.length; i += 2) this.opts.log.info({ module: this.opts.label, stream: lines[i] === 1 ? 'stdout' : 'stderr' }, lines[i + 1] as string);
  }

  /** Release the instance (flexi_deinit runs, within the time limit). */
  stop(): void {
    const live = this.live;
    this.live = null;
    if (!live) return;
    this.deadline = performance.now() + this.opts.timeoutMs;
    try {
      live.x.flexi_deinit?.();
    } catch {
      /* the instance is going away either way */
    }
    live.flush();
    this.emitLines();
  }
}
