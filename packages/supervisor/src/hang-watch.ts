/**
 * Finds workers stuck in an inline plugin call. An inline call runs on the
 * worker's event loop, so a plugin that never returns makes the worker deaf to
 * every request and every control message; only the supervisor can end it.
 * It samples each worker's call marker (the inline slot's word and sequence
 * number): the same call seen for longer than --hang-timeout kills the worker,
 * which then counts as a crash of that library. Threaded calls are not judged:
 * a stuck pool thread blocks only its own route.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { MARKER, readInlineCall } from '@flexilib/contract';
import type { PoolWorker } from './worker-pool.js';

const SAMPLE_BYTES = (MARKER.HEADER_WORDS + MARKER.WORDS_PER_SLOT) * 4;

interface Seen {
  seq: number;
  word: number;
  since: number;
}

export class HangWatch {
  private timer: NodeJS.Timeout | undefined;
  private readonly seen = new Map<number, Seen>();
  private readonly buf = Buffer.alloc(SAMPLE_BYTES);

  constructor(
    private readonly timeoutMs: number,
    private readonly workers: () => PoolWorker[],
    private readonly onHang: (w: PoolWorker, stuckMs: number) => void,
  ) {}

  start(): void {
    if (this.timeoutMs <= 0) return;
    const every = Math.max(50, Math.min(1000, Math.floor(this.timeoutMs / 4)));
    this.timer = setInterval(() => this.sample(Date.now()), every);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private read(file: string): Buffer | undefined {
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch {
      return undefined;
    }
    try {
      return readSync(fd, this.buf, 0, SAMPLE_BYTES, 0) === SAMPLE_BYTES ? this.buf : undefined;
    } finally {
      closeSync(fd);
    }
  }

  private sample(now: number): void {
    const alive = new Set<number>();
    for (const w of this.workers()) {
      if (!w.listening || w.killedFor) continue;
      alive.add(w.id);
      const bytes = this.read(w.marker);
      const call = bytes && readInlineCall(bytes);
      if (!call) {
        this.seen.delete(w.id);
        continue;
      }
      const word = ((call.generation16 << 16) | ((call.routeIndex ?? 0xfffe) + 1)) >>> 0;
      const prev = this.seen.get(w.id);
      if (!prev || prev.seq !== call.seq || prev.word !== word) {
        this.seen.set(w.id, { seq: call.seq, word, since: now });
        continue;
      }
      if (now - prev.since >= this.timeoutMs) {
        this.seen.delete(w.id);
        this.onHang(w, now - prev.since);
      }
    }
    for (const id of this.seen.keys()) if (!alive.has(id)) this.seen.delete(id);
  }
}
