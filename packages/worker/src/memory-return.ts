/**
 * Gives the memory of dropped answers back to the system, soon and for sure.
 *
 * An answer a client never read (cut by --send-timeout, or left behind when the
 * client went away) is garbage once its connection is gone — but its bytes are
 * a Buffer in V8's old generation, freed only by a major collection. V8 runs
 * one when the heap grows, and a worker in a steady state does not grow: 160
 * MiB of dropped answers stayed in a worker serving a request every 25 ms for
 * over 90 s. And once freed, glibc keeps large blocks it took from its heap
 * (its mmap threshold rises after the first large free) unless asked to trim.
 *
 * So dropping at least DROPPED_BYTES asks for both: one major collection, then
 * malloc_trim(3). Debounced (connections cut in one sweep share one) and at
 * most one per MIN_INTERVAL_MS, off the request path: only dropped answers
 * ever start it.
 */
import type { Logger } from 'pino';
import { trimNativeHeap } from './native/ffi.js';

/** Dropped bytes worth a collection: below this the heap's own growth will do. */
const DROPPED_BYTES = 1024 * 1024;
/** Connections cut together (one stall sweep, a burst of leaving clients) share one collection. */
const DEBOUNCE_MS = 100;
const MIN_INTERVAL_MS = 2000;
/** V8 frees a collected Buffer's memory on a background thread; trim once it has. */
const TRIM_AFTER_MS = 200;

type Collect = (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async' }) => void;

export class MemoryReturn {
  private dropped = 0;
  private last = 0;
  private timer: NodeJS.Timeout | undefined;

  /** `collect` is V8's gc() (workers start with --expose-gc); without it only the trim runs. */
  constructor(private readonly log: Logger, private readonly collect: Collect | undefined = (globalThis as { gc?: Collect }).gc) {}

  /** A connection was dropped with `bytes` of its output never sent. */
  drop(bytes: number): void {
    this.dropped += bytes;
    if (this.dropped < DROPPED_BYTES || this.timer) return;
    const wait = Math.max(DEBOUNCE_MS, this.last + MIN_INTERVAL_MS - Date.now());
    this.timer = setTimeout(() => this.run(), wait);
    this.timer.unref();
  }

  private run(): void {
    const dropped = this.dropped;
    this.timer = undefined;
    this.dropped = 0;
    this.last = Date.now();
    const before = process.memoryUsage.rss();
    this.collect?.({ type: 'major', execution: 'sync' });
    const collectMs = Date.now() - this.last;
    setTimeout(() => {
      trimNativeHeap();
      const mib = (n: number) => Math.round(n / 1048576);
      const after = process.memoryUsage.rss();
      this.log.info({ droppedMiB: mib(dropped), rssBeforeMiB: mib(before), rssAfterMiB: mib(after), collectMs }, `dropped answers (${mib(dropped)} MiB unsent) collected: RSS ${mib(before)} → ${mib(after)} MiB`);
    }, TRIM_AFTER_MS).unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
