/**
 * A threaded route's call ring: its own native threads (started by the helper
 * dist/native/thread-ring.so, c/thread-ring.c) take calls from descriptors in
 * memory shared with JS, one descriptor per call slot, and tell the event
 * loop they finished through a pipe, once per burst. The threads are shared
 * by the descriptors: there may be more slots (calls submitted) than threads,
 * and a thread that finishes a call takes the next submitted one at once.
 *
 *   submit(i): write fn/plugin into descriptor i, state = SUBMITTED, bump seq;
 *              the round's first submit arms one setImmediate (flush)
 *   flush:     after the round's I/O callbacks (the check phase): if a thread may
 *              be idle and no wake is on its way, wake one (one koffi call: a
 *              futex wake); it finds the round's whole burst
 *              and arms the watchdog (WATCH_MS): calls still untaken then, while
 *              no thread took one meanwhile, get a thread woken for them
 *   thread:    claims a SUBMITTED descriptor (-> RUNNING); on a route whose last
 *              call took 50 µs or more (or none returned yet), if others are left
 *              untaken and a thread sleeps, wakes one more first (the call may
 *              block); calls the plugin, rc, state = DONE; the first completion
 *              since JS last drained writes one byte into the pipe; then the
 *              next SUBMITTED one, or sleep
 *   cancel(i): SUBMITTED -> IDLE, when no thread has taken the call yet
 *   drain:     the pipe's net.Socket reads it: notified = 0, then every DONE
 *              descriptor is handed to `done(i, rc)` and set IDLE
 *
 * Why: koffi's async calls (the previous way) cost, per call, a libuv work
 * request through the shared thread pool's queue, a completion handle and a
 * JS callback entered from C++ with its own HandleScope. Here a call is a few
 * stores into shared memory, the wake only when the thread sleeps, and one
 * JS entry per burst of completions. Figures for the C example on a threaded
 * route, one worker, wrk -c16, on a busy 2-core machine:
 *   callgrind (`bench/run.ts --instructions flexilib-threaded`), main thread:
 *     koffi async 47.8k instructions/request, this ring 42.1k (inline on the loop: 37.9k)
 *   strace -c -f, system calls per request: futex 4.4 -> 2.0 (one wake, one
 *     wait), write 1.5 -> 1.5 (the answer, and a pipe byte per ~2 calls where
 *     koffi wrote libuv's eventfd), read 1.25 -> 1.25
 *   worker CPU per request (/proc utime+stime over 8 s, two runs each):
 *     koffi async 19.2 and 43.6 µs, this ring 15.8 and 18.4 µs
 *   on the quiet machine, `pnpm bench --only flexilib-threaded` back to back
 *   (2 workers, wrk -c32): this ring 0.63x bare node:http at 22.5 µs, koffi
 *   async 0.65x at 23.9 µs and 0.51x at 28.3 µs: fewer instructions and
 *   system calls, but requests/s within the machine's noise
 * (Those are the first version of this ring, one thread per slot.) With one
 * thread per slot a thread had always gone to sleep before JS gave its slot
 * the next call: a futex wake and wait per call. Shared threads chain the
 * calls queued behind them: one worker, wrk -c32, quiet machine, runs
 * alternated, voluntary context switches per request 1.48-1.49 -> 1.02-1.17,
 * worker CPU 19.6-19.8 -> 15.5-16.4 µs per request, requests/s +12-27%.
 * Spinning before sleeping was tried (300 and 3000 pause instructions): 23-57%
 * fewer requests and 1.3-2.6x the CPU per request on two cores, since the
 * spinning takes a core from the event loop.
 *
 * One wake per loop round: a fast handler finished before JS submitted the
 * next call, so a wake per submit still woke a thread per call (often two or
 * more threads: each submit saw one sleeping). Now the round's submits go in
 * first and one thread is woken for them, after the poll phase's callbacks.
 * A call may block, and the calls behind it must not wait for it: on a route
 * of slow calls a thread taking a call while others wait untaken wakes one
 * more, never more than one wake on its way at a time (`waking`); on a route
 * of fast calls that wake mostly found the burst taken (a thread woken per
 * round for nothing), so there the watchdog covers it instead: a call that
 * blocks unexpectedly holds the calls behind it 1-2 ms, until the watchdog
 * wakes another thread. Figures, busy machine, runs alternated old/new, the C
 * example: one worker, wrk -c32 (ctx-threaded.sh, its switch counts are
 * voluntary and involuntary together): context switches per request
 * 1.65/1.72/2.17 -> 0.60/0.70/0.30, requests in 4 s 241k/242k/309k ->
 * 372k/309k/420k; voluntary switches alone 0.81 -> 0.16 per request (the
 * loop's 0.001 -> 0.013: it never sleeps), worker CPU 15.2 -> 7.1 µs per
 * request (loop 11.1 -> 6.6, ring threads 4.1 -> 0.5); strace: futex calls
 * 2.09 -> 0.41 per request, one loop round (epoll) per ~9 requests, pipe
 * bytes ~0.04 per request. `bench/run.ts --only flexilib-threaded` (2
 * workers, wrk -c32, 3 rounds of 4 s, the same busy machine): 0.49x -> 0.77x
 * bare node:http, 30.8 -> 16.4 µs CPU per request. Callgrind
 * (--instructions) is unchanged, 41.4k instructions per request on the
 * loop: it runs one thread at a time, so it never sees a wake.
 * The watchdog in place of the extra wake on routes of fast calls (2 workers,
 * 6 alternated runs each): voluntary context switches per request 0.42 ->
 * 0.23 (mean), worker CPU per request 13.5 -> 13.6 µs, requests +9% (mean,
 * within the machine's swings); `--only flexilib-threaded` ratios
 * 1.00/1.09/0.99x (extra wake) against 0.75/0.91/1.00x (watchdog): noise on
 * this busy machine, the quiet bench decides.
 *
 * What was measured and left: the completion byte (written by the first
 * completion since JS drained, ~0.04 per request: the loop, busy, reads it
 * with the sockets of its next round) need not wait for the end of a burst;
 * writing it only as the thread runs out of calls would hold a finished call
 * behind a call that may block. Draining completions in the flush would
 * answer nothing sooner: the burst it woke finishes after it.
 *
 * V8's Atomics.notify cannot wake a native futex waiter (V8 emulates
 * futexes), hence the koffi wake; JS's Atomics.exchange of the state and add
 * to seq, and the thread's seq_cst add to `sleepers` before it reads seq and
 * looks for calls, make the pair Dekker-safe: either JS sees a sleeper and
 * wakes one, or the thread sees SUBMITTED, or seq moved and its wait returns.
 */
import net from 'node:net';
import path from 'node:path';
import { FlexiError } from '@flexilib/contract';
import { openThreadRingHelper, type NativeTarget, type Pointer, type ThreadRingHelper } from './ffi.js';

/** Where pnpm build puts the helper: next to this module in dist/native. */
export const THREAD_RING_FILE = path.join(import.meta.dirname, 'thread-ring.so');

const helpers = new Map<string, ThreadRingHelper>();

function ringHelper(file: string): ThreadRingHelper {
  let helper = helpers.get(file);
  if (helper) return helper;
  try {
    helper = openThreadRingHelper(file);
  } catch (err) {
    throw new FlexiError(
      'FLX_THREAD_RING_HELPER',
      `the threaded-call helper ${file} cannot be loaded (pnpm build makes it from packages/worker/c/thread-ring.c): ${(err as Error).message.replace(/\s+/g, ' ')}`,
    );
  }
  helpers.set(file, helper);
  return helper;
}

// The layout of c/thread-ring.c: a 64-byte head, then 48-byte descriptors.
const HEAD = 64;
const DESC = 48;
const NOTIFIED = 0; // int32 index
const READ_FD = 1;
const SEQ = 5;
const SLEEPERS = 6;
const WAKING = 9;
const CLAIMS = 11;
const STATE = 0; // int32 offsets within a descriptor, /4
const RC = 2;
const FN = 2; // u64 offsets within a descriptor, /8
const PLUGIN = 3;
const REQ = 4;
const RESP = 5;
const IDLE = 0;
const SUBMITTED = 1;
const DONE = 2;

/**
 * On a route of fast calls a thread taking a call does not wake another for
 * the calls behind it (c/thread-ring.c); should that call block after all,
 * a thread is woken for the calls still untaken this long after a flush.
 */
const WATCH_MS = 1;

/** Plugins are ordinary C code: 1 MiB of stack, as a typical thread pool gives. */
const STACK_BYTES = 1 << 20;

export class ThreadRing {
  private readonly ring: Pointer;
  private readonly helper: ThreadRingHelper;
  private readonly i32: Int32Array;
  private readonly u64: BigUint64Array;
  private readonly pipe: net.Socket;
  /** Descriptors in use so far (0 .. described-1), each a call slot's. */
  private described = 0;
  /** Threads started. */
  threads = 0;
  /** Calls submitted and not yet drained: the pipe keeps the loop alive only while there are some. */
  private running = 0;
  private closed = false;
  /** A flush is armed for this loop round (submits since the last one). */
  private flushArmed = false;
  private readonly flushRound = () => this.flush();
  /** The watchdog (made with the first flush, re-armed by refresh()) and whether it is armed. */
  private watch: NodeJS.Timeout | null = null;
  private watchArmed = false;
  /** The ring's count of calls taken when the watchdog was armed. */
  private watchedClaims = 0;

  /** Throws FlexiError when the helper is missing or the ring cannot be made. */
  constructor(
    readonly capacity: number,
    /** Descriptor i's call returned rc. */
    private readonly done: (i: number, rc: number) => void,
    helperFile = THREAD_RING_FILE,
  ) {
    this.helper = ringHelper(helperFile);
    this.ring = this.helper.open(capacity);
    if (this.ring === 0n) throw new FlexiError('FLX_INTERNAL', `thread ring: cannot allocate ${capacity} call descriptors and a pipe`);
    const buf = this.helper.view(this.ring, HEAD + capacity * DESC);
    this.i32 = new Int32Array(buf.buffer, buf.byteOffset, buf.length >> 2);
    this.u64 = new BigUint64Array(buf.buffer, buf.byteOffset, buf.length >> 3);
    // onread (which node's Socket constructor takes, though its types do not say so): one reused buffer, no allocation per wake.
    const onread = { buffer: Buffer.alloc(64), callback: () => void this.drain() };
    this.pipe = new net.Socket({ fd: this.i32[READ_FD], readable: true, writable: false, onread } as net.SocketConstructorOpts);
    this.pipe.unref();
  }

  /** Give descriptor `i` (i = the number described so far) a call slot's request and response blocks. */
  describe(i: number, req: Pointer, resp: Pointer): void {
    if (i !== this.described || i >= this.capacity) throw new RangeError(`thread ring: descriptor ${i} cannot be set (${this.described} of ${this.capacity} in use)`);
    const d = (HEAD + i * DESC) >> 3;
    this.u64[d + REQ] = req;
    this.u64[d + RESP] = resp;
    this.described++;
  }

  /** Start threads until there are `n`. */
  ensureThreads(n: number): void {
    while (this.threads < n) {
      const err = this.helper.addThread(this.ring, STACK_BYTES);
      if (err !== 0) throw new FlexiError('FLX_INTERNAL', `thread ring: cannot start a thread (errno ${err})`);
      this.threads++;
    }
  }

  /** Run `target` with descriptor i's request and response on the first free thread. */
  submit(i: number, target: NativeTarget): void {
    const d8 = (HEAD + i * DESC) >> 3;
    this.u64[d8 + FN] = target.fn;
    this.u64[d8 + PLUGIN] = target.plugin;
    const i32 = this.i32;
    // Locked instructions (full barriers), so the load of `sleepers` cannot pass them.
    Atomics.exchange(i32, ((HEAD + i * DESC) >> 2) + STATE, SUBMITTED);
    Atomics.add(i32, SEQ, 1);
    if (this.running++ === 0) this.pipe.ref();
    if (!this.flushArmed) {
      this.flushArmed = true;
      setImmediate(this.flushRound);
    }
  }

  /** The round's submits are in (the check phase, after the poll's callbacks): wake one thread for the burst if one may sleep and no wake is on its way. */
  private flush(): void {
    this.flushArmed = false;
    // Its calls may all be over and the ring freed within the round.
    if (this.closed) return;
    const i32 = this.i32;
    if (Atomics.load(i32, SLEEPERS) > 0 && Atomics.load(i32, WAKING) === 0) this.helper.wake(this.ring);
    this.armWatch();
  }

  private armWatch(): void {
    if (this.watchArmed) return;
    this.watchArmed = true;
    this.watchedClaims = Atomics.load(this.i32, CLAIMS);
    if (this.watch === null) {
      // Unref'd: the pipe keeps the loop alive while calls run.
      this.watch = setTimeout(() => this.watchdog(), WATCH_MS);
      this.watch.unref();
    } else this.watch.refresh();
  }

  /**
   * WATCH_MS after a flush: calls still untaken while no thread took one
   * meanwhile (the awake ones are held by calls that block) get a thread, if
   * one sleeps; watched again while any is untaken.
   */
  private watchdog(): void {
    this.watchArmed = false;
    if (this.closed) return;
    const i32 = this.i32;
    for (let i = 0; i < this.described; i++) {
      if (Atomics.load(i32, ((HEAD + i * DESC) >> 2) + STATE) !== SUBMITTED) continue;
      if (Atomics.load(i32, CLAIMS) === this.watchedClaims && Atomics.load(i32, SLEEPERS) > 0 && Atomics.load(i32, WAKING) === 0) this.helper.wake(this.ring);
      this.armWatch();
      return;
    }
  }

  /** Take back descriptor i's call if no thread has started it: true when cancelled (it never runs). */
  cancel(i: number): boolean {
    if (Atomics.compareExchange(this.i32, ((HEAD + i * DESC) >> 2) + STATE, SUBMITTED, IDLE) !== SUBMITTED) return false;
    if (--this.running === 0) this.pipe.unref();
    return true;
  }

  /** The pipe said some call finished: collect every finished one. */
  private drain(): void {
    const i32 = this.i32;
    Atomics.store(i32, NOTIFIED, 0);
    for (let i = 0; i < this.described; i++) {
      const d4 = (HEAD + i * DESC) >> 2;
      if (Atomics.load(i32, d4 + STATE) !== DONE) continue;
      i32[d4 + STATE] = IDLE;
      if (--this.running === 0) this.pipe.unref();
      this.done(i, i32[d4 + RC]);
    }
  }

  /** No call runs any more: end the threads and free the ring. */
  close(): void {
    if (this.closed) return;
    if (this.running > 0) throw new Error(`thread ring: close with ${this.running} calls running`);
    this.closed = true;
    if (this.watch !== null) clearTimeout(this.watch);
    this.pipe.destroy();
    this.helper.close(this.ring);
  }
}
