/**
 * The native executor: calls a plugin's handle_request through koffi.
 *
 * inline mode (default): the call runs on the event loop with the worker's one
 *   shared slot. Fastest — no thread hop — but a plugin that blocks stalls the
 *   whole worker.
 * threaded mode: calls run on koffi's async worker threads, each with a slot of
 *   its own (`threads` of them per route); further requests queue in order. A
 *   call (queued or running) past the route's timeout answers 504; a running
 *   one cannot be cancelled, so its worker is replaced (stuck-calls.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { RouteSpec } from '@flexilib/contract';
import { answersHttp, FlexiError } from '@flexilib/contract';
import type { Executor, RequestLike, RequestStats } from '../executor.js';
import { hasNoBody, readBody } from '../http/request-body.js';
import { sendError } from '../http/respond.js';
import { applyResponseRules, writeAnswer } from '../http/response-rules.js';
import type { CallMarker } from './call-marker.js';
import type { Library, LoadedVersion } from './library.js';
import { Slot, type PluginResponse } from './slot.js';
import type { StuckCalls } from './stuck-calls.js';

export interface NativeExecutorDeps {
  library: Library;
  /** The worker's inline slot, shared by all inline routes (one call at a time on the loop). */
  inlineSlot: Slot;
  arenaBytes: number;
  maxHeaderBytes: number;
  maxBodyBytes: number;
  /** Records the call in progress for crash attribution (call-marker.ts). */
  marker: CallMarker;
  /** This route's marker word (marker-layout.ts markWord). */
  markWord: number;
  log: Logger;
  /** Threaded routes: a call past this answers 504 (0: never). */
  timeoutMs: number;
  stuck: StuckCalls;
}

/** A threaded request from its arrival to its answer; the timeout covers queueing and the call. */
interface ThreadedCall {
  req: IncomingMessage;
  res: ServerResponse;
  body: Buffer | null;
  stats: RequestStats;
  timer: NodeJS.Timeout | undefined;
  /** Answered 504: the call's result, if it ever comes, is dropped. */
  timedOut: boolean;
  /** The slot its call runs in, once started. */
  slot: Slot | undefined;
}

function onCallTimeout(ex: NativeExecutor, c: ThreadedCall): void {
  ex.timedOut(c);
}

const INLINE_SLOT = 0;

const MAX_QUEUE = 1024;

export class NativeExecutor implements Executor {
  readonly kind = 'native' as const;
  private readonly free: Slot[] = [];
  private readonly queue: ThreadedCall[] = [];
  /** Threaded slots whose call passed its timeout and has not returned. */
  private stuckSlots = 0;
  private readonly timeoutMs: number;
  private readonly slots: Slot[] = [];
  private readonly maxBody: number;
  private readonly marker: CallMarker;
  private readonly markWord: number;
  /** Marker slot of each threaded call slot. */
  private readonly slotMarks = new Map<Slot, number>();
  private closed = false;

  constructor(readonly route: RouteSpec, private readonly deps: NativeExecutorDeps) {
    this.maxBody = route.options.maxBodyBytes ?? deps.maxBodyBytes;
    this.timeoutMs = deps.timeoutMs;
    this.marker = deps.marker;
    this.markWord = deps.markWord;
  }

  handle(req: IncomingMessage, res: ServerResponse, stats: RequestStats): void {
    if (hasNoBody(req)) this.call(req, res, null, stats);
    else readBody(req, res, this.maxBody, (body) => this.call(req, res, body, stats));
  }

  private call(req: IncomingMessage, res: ServerResponse, body: Buffer | null, stats: RequestStats): void {
    if (this.route.options.mode !== 'inline') {
      const c: ThreadedCall = { req, res, body, stats, timer: undefined, timedOut: false, slot: undefined };
      if (this.timeoutMs > 0) c.timer = setTimeout(onCallTimeout, this.timeoutMs, this, c);
      this.callThreaded(c);
      return;
    }
    const version = this.acquire(res);
    if (version === undefined) return;
    const slot = this.deps.inlineSlot;
    if (!slot.fillRequest(req, body)) {
      sendError(res, 'FLX_PLUGIN_HEADERS_TOO_LARGE', 'request headers too large for the plugin call');
      return;
    }
    this.finish(version, slot, this.callInline(version, slot), res, stats);
  }

  /** The library's current version, or undefined having answered why it cannot load. */
  private acquire(res: ServerResponse): LoadedVersion | undefined {
    const library = this.deps.library;
    const attempts = library.attempts;
    try {
      return library.acquire();
    } catch (err) {
      this.loadFailed(res, err as FlexiError, library.attempts !== attempts);
      return undefined;
    }
  }

  private callThreaded(c: ThreadedCall): void {
    // Acquired when the call starts, so a reload while it queued serves the new code.
    const version = this.acquire(c.res);
    if (version === undefined) {
      clearTimeout(c.timer);
      return;
    }
    const slot = this.takeSlot();
    if (!slot) {
      if (this.queue.length >= MAX_QUEUE) {
        clearTimeout(c.timer);
        sendError(c.res, 'FLX_PLUGIN_BUSY', `route "${this.route.key}" is busy: ${MAX_QUEUE} calls already queued`, { 'retry-after': '1' });
        return;
      }
      this.queue.push(c);
      return;
    }
    if (!slot.fillRequest(c.req, c.body)) {
      clearTimeout(c.timer);
      this.putSlot(slot);
      sendError(c.res, 'FLX_PLUGIN_HEADERS_TOO_LARGE', 'request headers too large for the plugin call');
      return;
    }
    slot.resetResponse();
    c.slot = slot;
    version.inflight++;
    const mark = this.slotMarks.get(slot)!;
    this.marker.enter(mark, this.markWord);
    version.handleRequest.async(slot.req.ptr, slot.resp.ptr, (err, rc) => {
      version.inflight--;
      this.marker.exit(mark);
      if (c.timedOut) {
        // Its client got a 504 long ago: drop the answer, the thread is free again.
        this.stuckSlots--;
        this.deps.stuck.returned();
        try {
          if (!err) version.requestDeinit?.();
        } finally {
          slot.resetResponse();
          version.release();
          this.putSlot(slot);
        }
        return;
      }
      clearTimeout(c.timer);
      const res = c.res;
      try {
        if (err) {
          this.deps.log.error({ route: this.route.key, library: this.deps.library.file, err: String(err) }, 'threaded plugin call failed');
          sendError(res, 'FLX_INTERNAL', 'Internal Server Error');
          slot.resetResponse();
          version.release();
        } else {
          this.finish(version, slot, rc, res, c.stats);
        }
      } finally {
        this.putSlot(slot);
      }
    });
  }

  /** The call passed the route's timeout: 504 now. A call still queued is dropped; a running
   * one cannot be cancelled: its slot is written off (a new one may take its place) and the
   * worker asks to be replaced (stuck-calls.ts). */
  timedOut(c: ThreadedCall): void {
    c.timedOut = true;
    const library = this.deps.library.file;
    const running = c.slot !== undefined;
    if (running) {
      this.stuckSlots++;
      this.deps.stuck.add(this.route.key, library, this.timeoutMs);
    } else {
      const i = this.queue.indexOf(c);
      if (i >= 0) this.queue.splice(i, 1);
    }
    const why = `route "${this.route.key}": library ${library} did not answer within ${this.timeoutMs} ms`;
    this.deps.log.error({ code: 'FLX_PLUGIN_TIMEOUT', route: this.route.key, library, timeoutMs: this.timeoutMs, running }, `${why}${running ? '' : ' (still queued)'}; answered 504`);
    sendError(c.res, 'FLX_PLUGIN_TIMEOUT', why);
  }

  private takeSlot(): Slot | undefined {
    const slot = this.free.pop();
    if (slot) return slot;
    if (this.slots.length < this.route.options.threads + this.stuckSlots) {
      const s = new Slot(this.deps.arenaBytes, this.deps.maxHeaderBytes);
      this.slots.push(s);
      this.slotMarks.set(s, this.marker.allocSlot());
      return s;
    }
    return undefined;
  }

  private putSlot(slot: Slot): void {
    if (this.closed) {
      slot.close();
      this.marker.releaseSlot(this.slotMarks.get(slot)!);
      return;
    }
    this.free.push(slot);
    const next = this.queue.shift();
    if (next) this.callThreaded(next);
  }

  /**
   * The fast lane's call (fast-lane.ts): inline routes whose library is
   * loaded; the body, if any, read whole by the lane within this route's
   * limit (req.body), is copied into the slot as handle() does. Anything else
   * (a first load, a load failure to report, a threaded route) is left to
   * handle() by returning null.
   */
  direct(req: RequestLike, stats: RequestStats): PluginResponse | null {
    if (this.route.options.mode !== 'inline') return null;
    const version = this.deps.library.current;
    if (version === null) return null;
    const slot = this.deps.inlineSlot;
    if (!slot.fillRequest(req, req.body ?? null)) return null;
    return this.settle(version, slot, this.callInline(version, slot), stats);
  }

  /** handle_request on the event loop, with the crash marker set; the request is in the slot. */
  private callInline(version: LoadedVersion, slot: Slot): number {
    slot.resetResponse();
    version.inflight++;
    this.marker.enter(INLINE_SLOT, this.markWord);
    try {
      return version.handleRequest(slot.req.ptr, slot.resp.ptr);
    } finally {
      version.inflight--;
      this.marker.exit(INLINE_SLOT);
    }
  }

  /** Copy the response out, run request_deinit, apply the response rules. */
  private settle(version: LoadedVersion, slot: Slot, rc: number, stats: RequestStats): PluginResponse {
    let out: PluginResponse;
    try {
      out = slot.readResponse();
    } finally {
      try {
        version.requestDeinit?.();
      } finally {
        version.release();
      }
    }
    stats.arenaBytes = slot.arenaBytes;
    stats.alloc = out.heapBytes;
    applyResponseRules(out, rc);
    if (rc !== 0) {
      this.deps.log.warn({ route: this.route.key, library: this.deps.library.file, rc, status: out.status }, 'plugin returned an error');
    }
    stats.bytes = out.body.length;
    return out;
  }

  /** Settle the call and answer through node:http. */
  private finish(version: LoadedVersion, slot: Slot, rc: number, res: ServerResponse, stats: RequestStats): void {
    const refused = writeAnswer(res, this.settle(version, slot, rc, stats));
    if (refused !== null) sendError(res, 'FLX_PLUGIN_BAD_RESPONSE', this.refused(refused));
  }

  /** A response node:http's rules refuse (either path): logged, and the reason for the 502 sent instead. */
  refused(err: Error): string {
    this.deps.log.error({ route: this.route.key, library: this.deps.library.file, err: err.message }, 'plugin produced an invalid response');
    return `plugin for route "${this.route.key}" produced an invalid response: ${err.message}`;
  }

  /** `tried`: this request attempted the load (logged); else it answers the last failure during
   * the backoff (the library's retry: next change of the file, or 1 s, 2 s, 4 s ... 30 s). */
  private loadFailed(res: ServerResponse, err: FlexiError, tried: boolean): void {
    if (tried) this.deps.log.error({ route: this.route.key, library: this.deps.library.file, code: err.code, err: err.message }, 'library unavailable');
    sendError(res, answersHttp(err.code) ? err.code : 'FLX_LIB_LOAD', `route "${this.route.key}": ${err.message}`);
  }

  /** Free idle slots now; busy ones are freed when their call returns. Queued calls still run. */
  close(): void {
    if (this.queue.length > 0) {
      // Let the queue drain on the old executor before freeing everything.
      setImmediate(() => this.close());
      return;
    }
    this.closed = true;
    for (const s of this.free) {
      s.close();
      this.marker.releaseSlot(this.slotMarks.get(s)!);
    }
    this.free.length = 0;
  }
}
