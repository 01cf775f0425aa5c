/**
 * The native executor: calls a plugin's handle_request through koffi.
 *
 * inline mode (default): the call runs on the event loop with the worker's one
 *   shared slot. Fastest — no thread hop — but a plugin that blocks stalls the
 *   whole worker.
 * threaded mode: calls run on the route's own native threads (thread-ring.ts, `threads` of
 *   them per route), each call in a slot of its own; up to SLOTS_PER_THREAD × `threads` calls are
 *   submitted to the ring, where a thread takes the next as it finishes one; further requests
 *   queue in order. A call (queued or running) past the route's timeout answers 504; a running
 *   one cannot be cancelled, so its worker is replaced (stuck-calls.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { RouteSpec } from '@flexilib/contract';
import { answersHttp, FlexiError } from '@flexilib/contract';
import type { Executor, RequestLike, RequestStats, ResponseSink } from '../executor.js';
import { holdRequest } from '../http/held-request.js';
import { hasNoBody, readBody } from '../http/request-body.js';
import { sendError } from '../http/respond.js';
import { applyResponseRules, writeAnswer } from '../http/response-rules.js';
import { CallDeadlines, type Deadlined } from './call-deadlines.js';
import type { CallMarker } from './call-marker.js';
import type { Library, LoadedVersion } from './library.js';
import { Slot, type PluginResponse } from './slot.js';
import type { StuckCalls } from './stuck-calls.js';
import { ThreadRing } from './thread-ring.js';

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
class ThreadedCall implements Deadlined {
  deadline = 0;
  prevDue: Deadlined | null = null;
  nextDue: Deadlined | null = null;
  due = false;
  /** Answered 504: the call's result, if it ever comes, is dropped. */
  timedOut = false;
  /** The thread slot its call runs in, once started. */
  slot: ThreadSlot | null = null;
  constructor(
    public req: RequestLike,
    readonly res: ResponseSink,
    public body: Buffer | null,
    readonly stats: RequestStats,
    /** `req` is the fast lane's reused object: copied (holdRequest) if the call has to queue. */
    public borrowed: boolean,
  ) {}
}

/** Call slots per thread of a threaded route: calls submitted beyond the threads wait in the ring,
 * where a thread that finishes a call takes the next at once (thread-ring.ts). */
const SLOTS_PER_THREAD = 4;

/** A threaded route's call memory, its crash-marker slot, and its call descriptor in the ring (`index`). */
class ThreadSlot {
  /** The call running in it, and the library version it runs. */
  call: ThreadedCall | null = null;
  version: LoadedVersion | null = null;
  constructor(
    readonly slot: Slot,
    readonly mark: number,
    readonly index: number,
  ) {}
}

const INLINE_SLOT = 0;

const MAX_QUEUE = 1024;

export class NativeExecutor implements Executor {
  readonly kind = 'native' as const;
  private readonly free: ThreadSlot[] = [];
  private readonly queue: ThreadedCall[] = [];
  /** Threaded slots whose call passed its timeout and has not returned. */
  private stuckSlots = 0;
  private readonly timeoutMs: number;
  /** Threaded slots made so far (free, busy or stuck), by their ring index. */
  private readonly slots: ThreadSlot[] = [];
  /** Threaded slots freed after close(): the ring goes when all are. */
  private slotsFreed = 0;
  /** The threads of a threaded route, made with its first slot. */
  private ring: ThreadRing | null = null;
  private readonly onReturned = (i: number, rc: number) => this.returned(this.slots[i], rc);
  private startFailureLogged = false;
  private readonly maxBody: number;
  private readonly marker: CallMarker;
  private readonly markWord: number;
  /** Threaded routes with a timeout: the calls started and not yet answered. */
  private readonly deadlines: CallDeadlines<ThreadedCall> | null;
  private closed = false;
  /** The fast lane's way in, by mode: an inline call answers synchronously (direct), a threaded one later (laneHandle). */
  readonly direct: ((req: RequestLike, stats: RequestStats) => PluginResponse | null) | undefined;
  readonly laneHandle: ((req: RequestLike, res: ResponseSink, stats: RequestStats) => void) | undefined;

  constructor(readonly route: RouteSpec, private readonly deps: NativeExecutorDeps) {
    this.maxBody = route.options.maxBodyBytes ?? deps.maxBodyBytes;
    this.timeoutMs = deps.timeoutMs;
    this.marker = deps.marker;
    this.markWord = deps.markWord;
    this.deadlines = this.timeoutMs > 0 ? new CallDeadlines<ThreadedCall>(this.timeoutMs, (c) => this.timedOut(c)) : null;
    const inline = route.options.mode === 'inline';
    this.direct = inline ? this.inlineLane : undefined;
    this.laneHandle = inline ? undefined : this.threadedLane;
  }

  handle(req: IncomingMessage, res: ServerResponse, stats: RequestStats): void {
    if (hasNoBody(req)) this.call(req, res, null, stats);
    else readBody(req, res, this.maxBody, (body) => this.call(req, res, body, stats));
  }

  private call(req: IncomingMessage, res: ServerResponse, body: Buffer | null, stats: RequestStats): void {
    if (this.route.options.mode !== 'inline') {
      this.startThreaded(req, res, body, stats, false);
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

  /**
   * The fast lane's call for threaded routes (inline ones are direct()'s):
   * answered through `res` when the call returns. The request is copied into
   * the call's slot now, or held (copied) while the call queues.
   */
  private threadedLane(req: RequestLike, res: ResponseSink, stats: RequestStats): void {
    this.startThreaded(req, res, req.body ?? null, stats, true);
  }

  private startThreaded(req: RequestLike, res: ResponseSink, body: Buffer | null, stats: RequestStats, borrowed: boolean): void {
    const c = new ThreadedCall(req, res, body, stats, borrowed);
    this.deadlines?.add(c);
    this.callThreaded(c);
  }

  /** The library's current version, or undefined having answered why it cannot load. */
  private acquire(res: ResponseSink): LoadedVersion | undefined {
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
      this.deadlines?.remove(c);
      return;
    }
    let ts: ThreadSlot | undefined;
    try {
      ts = this.takeSlot();
    } catch (err) {
      const e = err as FlexiError;
      this.deadlines?.remove(c);
      version.release();
      // Logged once per route: a missing helper would otherwise log every request.
      if (!this.startFailureLogged) this.deps.log.error({ route: this.route.key, library: this.deps.library.file, code: e.code, err: e.message }, 'threaded call cannot start');
      this.startFailureLogged = true;
      sendError(c.res, answersHttp(e.code) ? e.code : 'FLX_INTERNAL', `route "${this.route.key}": ${e.message}`);
      return;
    }
    if (!ts) {
      // Calls waiting in the ring (submitted beyond the threads) count as queued too.
      const waitingInRing = this.slots.length - this.free.length - (this.route.options.threads + this.stuckSlots);
      if (this.queue.length + (waitingInRing > 0 ? waitingInRing : 0) >= MAX_QUEUE) {
        this.deadlines?.remove(c);
        sendError(c.res, 'FLX_PLUGIN_BUSY', `route "${this.route.key}" is busy: ${MAX_QUEUE} calls already queued`, { 'retry-after': '1' });
        return;
      }
      if (c.borrowed) {
        c.req = holdRequest(c.req);
        c.body = c.req.body ?? null;
        c.borrowed = false;
      }
      this.queue.push(c);
      return;
    }
    const slot = ts.slot;
    if (!slot.fillRequest(c.req, c.body)) {
      this.deadlines?.remove(c);
      this.putSlot(ts);
      sendError(c.res, 'FLX_PLUGIN_HEADERS_TOO_LARGE', 'request headers too large for the plugin call');
      return;
    }
    slot.resetResponse();
    c.slot = ts;
    ts.call = c;
    ts.version = version;
    version.inflight++;
    this.marker.enter(ts.mark, this.markWord);
    this.ring!.submit(ts.index, version.handleRequest.target);
  }

  /** The call in `ts` is over (returned, or withdrawn before it ran): the slot no longer holds it. */
  private vacate(ts: ThreadSlot): LoadedVersion {
    const version = ts.version!;
    ts.call = null;
    ts.version = null;
    version.inflight--;
    this.marker.exit(ts.mark);
    return version;
  }

  /** The ring: the call in `ts` returned. */
  private returned(ts: ThreadSlot, rc: number): void {
    const c = ts.call!;
    const slot = ts.slot;
    const version = this.vacate(ts);
    if (c.timedOut) {
      // Its client got a 504 long ago: drop the answer, the thread is free again.
      this.stuckSlots--;
      this.deps.stuck.returned();
      try {
        version.requestDeinit?.();
      } finally {
        slot.resetResponse();
        version.release();
        this.putSlot(ts);
      }
      return;
    }
    this.deadlines?.remove(c);
    const res = c.res;
    try {
      this.finish(version, slot, rc, res, c.stats);
    } finally {
      this.putSlot(ts);
    }
  }

  /** The call passed the route's timeout: 504 now. A call still queued (in JS, or submitted and
   * not yet taken by a thread) is dropped; a running one cannot be cancelled: its slot and thread
   * are written off (others may take their place) and the worker asks to be replaced
   * (stuck-calls.ts). */
  private timedOut(c: ThreadedCall): void {
    c.timedOut = true;
    const library = this.deps.library.file;
    const ts = c.slot;
    let running = ts !== null;
    if (ts !== null && this.ring!.cancel(ts.index)) {
      // No thread took it: the slot is free again, the call never ran.
      running = false;
      c.slot = null;
      this.vacate(ts).release();
      this.putSlot(ts);
    } else if (running) {
      this.stuckSlots++;
      this.deps.stuck.add(this.route.key, library, this.timeoutMs);
      // The stuck call holds a thread: another takes its place for the calls behind it.
      this.ring!.ensureThreads(Math.min(this.route.options.threads + this.stuckSlots, this.slots.length));
    } else {
      const i = this.queue.indexOf(c);
      if (i >= 0) this.queue.splice(i, 1);
    }
    const why = `route "${this.route.key}": library ${library} did not answer within ${this.timeoutMs} ms`;
    this.deps.log.error({ code: 'FLX_PLUGIN_TIMEOUT', route: this.route.key, library, timeoutMs: this.timeoutMs, running }, `${why}${running ? '' : ' (still queued)'}; answered 504`);
    sendError(c.res, 'FLX_PLUGIN_TIMEOUT', why);
  }

  /** A free slot, a new one while the route has fewer than SLOTS_PER_THREAD × `threads` (plus
   * stuck ones), or undefined: queue. Slots beyond the threads are calls queued natively, which a
   * thread finishing a call takes without a round trip through JS; threads start as slots need
   * them, up to `threads` (plus one per stuck call).
   * Throws FlexiError when the ring cannot be made or a thread cannot start. */
  private takeSlot(): ThreadSlot | undefined {
    const ts = this.free.pop();
    if (ts) return ts;
    const n = this.slots.length;
    const threads = this.route.options.threads;
    // Stuck slots are replaced up to as many again as `threads` (and 8 more): the worker is being replaced meanwhile.
    this.ring ??= new ThreadRing(threads * (SLOTS_PER_THREAD + 1) + 8, this.onReturned);
    if (n >= threads * SLOTS_PER_THREAD + this.stuckSlots || n >= this.ring.capacity) return undefined;
    const slot = new Slot(this.deps.arenaBytes, this.deps.maxHeaderBytes);
    try {
      this.ring.ensureThreads(Math.min(threads + this.stuckSlots, n + 1));
      this.ring.describe(n, slot.req.ptr, slot.resp.ptr);
    } catch (err) {
      slot.close();
      throw err;
    }
    const made = new ThreadSlot(slot, this.marker.allocSlot(), n);
    this.slots.push(made);
    return made;
  }

  private putSlot(ts: ThreadSlot): void {
    if (this.closed) {
      this.freeSlot(ts);
      return;
    }
    this.free.push(ts);
    const next = this.queue.shift();
    if (next) this.callThreaded(next);
  }

  /**
   * The fast lane's call for inline routes (fast-lane.ts) whose library is
   * loaded; the body, if any, read whole by the lane within this route's
   * limit (req.body), is copied into the slot. A large answer body stays
   * in native memory for the lane to send (a HeldBody). Anything else (a first load, a load failure to report) is
   * left to handle() by returning null.
   */
  private inlineLane(req: RequestLike, stats: RequestStats): PluginResponse | null {
    const version = this.deps.library.current;
    if (version === null) return null;
    const slot = this.deps.inlineSlot;
    if (!slot.fillRequest(req, req.body ?? null)) return null;
    return this.settle(version, slot, this.callInline(version, slot), stats, true);
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

  /** Copy the response out (`hold`: a large body stays in native memory), run request_deinit, apply the response rules. */
  private settle(version: LoadedVersion, slot: Slot, rc: number, stats: RequestStats, hold = false): PluginResponse {
    let out: PluginResponse;
    try {
      out = slot.readResponse(hold);
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
  private finish(version: LoadedVersion, slot: Slot, rc: number, res: ResponseSink, stats: RequestStats): void {
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
  private loadFailed(res: ResponseSink, err: FlexiError, tried: boolean): void {
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
    for (const ts of this.free) this.freeSlot(ts);
    this.free.length = 0;
    if (this.slots.length === 0) this.ring?.close();
  }

  /** After close(): a slot's memory and marker go; with the last one, the ring and its threads. */
  private freeSlot(ts: ThreadSlot): void {
    ts.slot.close();
    this.marker.releaseSlot(ts.mark);
    if (++this.slotsFreed === this.slots.length) this.ring?.close();
  }
}
