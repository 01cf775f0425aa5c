/**
 * Entry of an instance thread: one WASM instance, serving calls handed over
 * on its channel (channel.ts) one at a time. The thread exists so that the
 * worker's event loop can stop it: a module in an infinite loop is ended by
 * Worker.terminate(), which the main side calls when the time limit passes.
 *
 *   start (empty, or a spare) ──> wait for ThreadInit ──> instantiate, _initialize, ABI check, flexi_init, allocate areas ──> "ready"
 *     loop: take a call off AVAIL (sleep while there is none) ─> copy the slot's request in
 *           ─> handle_request ─> copy the response out ─> DONE = ++served
 *           a trap, proc_exit or a memory blow-up answers, then the instance is
 *           replaced here (its state can no longer be trusted, and memory never shrinks)
 *     EXIT (with nothing submitted) ─> flexi_deinit ─> thread ends
 *
 * Per instance, in linear memory (allocated once with the module's own malloc):
 *   request area:  [flexi_request][flexi_header x n][strings][body]   (regrown when a request outgrows it)
 *   response area: [flexi_response][arena (RESPONSE_PREALLOCATION_KB)]
 */
import { readlinkSync } from 'node:fs';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { ABI_VERSION } from '@flexilib/plugin-abi/layout';
import type { ErrorCode } from '@flexilib/contract';
import { CTL, Channel, DATA, copyBytes, HDR, KIND, RING_SLOTS, Ring, overflowed, relocateRequest, writeError, writeResponse, type ChannelInit } from './channel.js';
// Not the contract's index, nor module-check.ts: each instance thread is an isolate that loads what it imports.
import { InitError, capNote, describe, growRequestArea, instantiate as instantiateLive, memPages, nearCap, refreshMemory, type Live } from './live-instance.js';
import { mib, type ModuleInfo } from './module-info.js';
import type { ThreadBoot } from './thread-handle.js';
import { ProcExit } from './wasi-shim.js';

/** Handed to the thread when it is given an instance to run. */
export interface ThreadInit {
  module: WebAssembly.Module;
  info: ModuleInfo;
  channel: ChannelInit;
  arenaBytes: number;
  /** Names the module in messages: `module FILE` or `service NAME`. */
  label: string;
}

/** Thread -> main (postMessage; never per request except module output). */
export type ThreadMessage =
  /** Instantiated and initialized; calls may start. */
  | { type: 'ready'; memPages: number; instantiateMs: number; tid: number }
  /** Instantiation or initialization failed; the thread ends. */
  | { type: 'failed'; code: ErrorCode; message: string }
  /** A line the module wrote to stdout or stderr. */
  | { type: 'output'; fd: 1 | 2; line: string };

// Started empty (thread-handle.ts): wait for the instance to run.
const boot = workerData as ThreadBoot;
const goFlag = new Int32Array(boot.go);
Atomics.wait(goFlag, 0, 0);
const init = receiveMessageOnPort(boot.port)!.message as ThreadInit;
boot.port.close();
const port = parentPort!;
const ring = new Ring(init.channel, init.channel.port, CTL.SWAP_TO_MAIN);
const hdr = ring.hdr;

function instantiate(): Live {
  return instantiateLive({
    module: init.module,
    info: init.info,
    arenaBytes: init.arenaBytes,
    label: init.label,
    output: (fd, line) => port.postMessage({ type: 'output', fd, line } satisfies ThreadMessage),
  });
}

/** Serve the call in slot `views`. Returns false when the instance must be replaced. */
function serve(live: Live, views: Channel): boolean {
  const ctl = views.ctl;
  const len = ctl[CTL.REQ_LEN];
  const x = live.x;
  if (!growRequestArea(live, len)) {
    writeError(views, KIND.MEMORY, `${init.label}: a request of ${mib(len)} does not fit: ${capNote(live)}`);
    return false;
  }
  refreshMemory(live);
  views.accept();
  copyBytes(live.m8, live.reqBase, views.u8, DATA, len);
  relocateRequest(live.m32, live.reqBase, ABI_VERSION);
  live.m8.set(live.template, live.respBase);

  let rc: number;
  const t0 = performance.now();
  try {
    rc = x.handle_request(live.reqBase, live.respBase);
  } catch (err) {
    ctl[CTL.CALL_US] = Math.round((performance.now() - t0) * 1000);
    live.flush();
    ctl[CTL.MEM_PAGES] = memPages(live);
    const exit = err instanceof ProcExit;
    const what = exit ? describe(err) : `trapped: ${describe(err)}`;
    writeError(views, exit ? KIND.EXIT : nearCap(live) ? KIND.MEMORY : KIND.TRAP, `${init.label} ${what}${nearCap(live) ? ` (${capNote(live)})` : ''}`);
    return false;
  }
  ctl[CTL.CALL_US] = Math.round((performance.now() - t0) * 1000);
  ctl[CTL.RC] = rc;
  live.flush();
  refreshMemory(live);
  ctl[CTL.MEM_PAGES] = memPages(live);
  const bad = writeResponse(views, live.m8, live.m32, live.respBase);
  if (bad !== null) {
    writeError(views, KIND.BAD_RESPONSE, `${init.label} returned an invalid response: ${bad}`);
    return false;
  }
  let keep = true;
  if (rc !== 0 && nearCap(live)) {
    // The module failed with its memory nearly exhausted: say so, and start afresh
    // (linear memory never shrinks).
    writeError(views, KIND.MEMORY, `${init.label}: handle_request returned ${rc} with its ${capNote(live)}; a request probably needed more (raise memory = ...)`);
    keep = false;
  }
  try {
    if (overflowed(live.m32, live.respBase, live.arenaAddr)) x.flexi_wasm_release(live.respBase);
    x.request_deinit?.();
  } catch (err) {
    if (keep) writeError(views, KIND.TRAP, `${init.label} trapped after the call: ${describe(err)}`);
    return false;
  }
  return keep;
}

/**
 * Take the next call off AVAIL, sleeping while there is none. False: asked
 * to exit instead. No spinning first: the event loop wakes the thread once per
 * turn, after submitting every request it read (instance.ts), and a spinning
 * thread would take a core the event loops need (two cores, two workers).
 */
function takeCall(): boolean {
  for (;;) {
    const avail = Atomics.load(hdr, HDR.AVAIL);
    if (avail > 0) {
      // Main may take calls back meanwhile: only a call still there is ours.
      if (Atomics.compareExchange(hdr, HDR.AVAIL, avail, avail - 1) === avail) return true;
      continue;
    }
    if (Atomics.load(hdr, HDR.EXIT) !== 0) return false;
    Atomics.wait(hdr, HDR.AVAIL, 0);
  }
}

/** This thread's kernel id (Linux; 0 elsewhere): main reads its schedstat when it seems stuck (run-queue-probe.ts). */
function threadId(): number {
  try {
    const m = /\/task\/(\d+)$/.exec(readlinkSync('/proc/thread-self'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function main(): void {
  let live: Live | null;
  const t0 = performance.now();
  try {
    live = instantiate();
  } catch (err) {
    const code = err instanceof InitError ? err.code : 'FLX_WASM_INIT';
    port.postMessage({ type: 'failed', code, message: describe(err) } satisfies ThreadMessage);
    return;
  }
  port.postMessage({ type: 'ready', memPages: memPages(live), instantiateMs: Math.round((performance.now() - t0) * 100) / 100, tid: threadId() } satisfies ThreadMessage);
  for (let served = 0; ; ) {
    if (!takeCall()) break;
    const keep = serve(live!, ring.slots[served % RING_SLOTS]);
    served++;
    Atomics.store(hdr, HDR.DONE, served);
    Atomics.notify(hdr, HDR.DONE);
    if (!keep) {
      live = null;
      try {
        live = instantiate();
      } catch (err) {
        const code = err instanceof InitError ? err.code : 'FLX_WASM_INIT';
        port.postMessage({ type: 'failed', code, message: describe(err) } satisfies ThreadMessage);
        return;
      }
    }
  }
  try {
    live?.x.flexi_deinit?.();
  } catch {
    /* the instance is going away either way */
  }
}

main();
