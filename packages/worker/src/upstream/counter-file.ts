/**
 * The worker's side of the upstream counters (layout: counter-layout.ts).
 * ok()/fail() are one typed-array increment at a precomputed index. The file
 * is created when the first pool is numbered: a config without upstreams
 * leaves none.
 */
import { renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { mapSharedFile, unmapShared } from '../native/ffi.js';
import { UH, UPSTREAM_HEADER, UPSTREAM_MAGIC, slotAt, upstreamFileName } from '@flexilib/contract';

export class UpstreamCounterFile {
  f: Float64Array;
  private buf: Buffer | null = null;
  private gen = 0;

  /** Without a run folder (no supervisor), counts stay in this process. */
  constructor(private readonly runDir: string | undefined, private readonly workerId: number, capacity = 256) {
    this.f = this.open(capacity, false);
  }

  get capacity(): number {
    return this.f[UH.capacity];
  }

  /** Make room for slot numbers up to `maxSlot`: a bigger file from zero, the old one sealed for the supervisor to fold. */
  ensure(maxSlot: number): void {
    if (maxSlot > 0 && !this.buf && this.runDir && this.gen === 0) {
      // Slot 0 only ever counted what no pool owns: the file starts from zero.
      this.f = this.open(Math.max(this.capacity, maxSlot + 1), true);
    }
    if (maxSlot < this.capacity) return;
    let capacity = this.capacity * 2;
    while (capacity <= maxSlot) capacity *= 2;
    const old = this.buf;
    const oldF = this.f;
    this.gen++;
    this.f = this.open(capacity, old !== null);
    oldF[UH.sealed] = 1;
    if (old) unmapShared(old);
  }

  ok(slot: number): void {
    this.f[slotAt(slot)]++;
  }

  fail(slot: number): void {
    this.f[slotAt(slot) + 1]++;
  }

  close(): void {
    if (!this.buf) return;
    this.f[UH.sealed] = 1;
    unmapShared(this.buf);
    this.buf = null;
    this.f = new Float64Array(this.f.length);
  }

  private open(capacity: number, shared: boolean): Float64Array {
    const n = UPSTREAM_HEADER + 2 * capacity;
    let f: Float64Array;
    let file: string | undefined;
    let tmp: string | undefined;
    if (shared && this.runDir) {
      file = path.join(this.runDir, upstreamFileName(this.workerId, this.gen));
      tmp = `${file}.tmp`;
      rmSync(tmp, { force: true });
      this.buf = mapSharedFile(tmp, n * 8);
      f = new Float64Array(this.buf.buffer, this.buf.byteOffset, n);
    } else {
      f = new Float64Array(n);
    }
    f[UH.pid] = process.pid;
    f[UH.workerId] = this.workerId;
    f[UH.gen] = this.gen;
    f[UH.capacity] = capacity;
    f[UH.magic] = UPSTREAM_MAGIC;
    if (file && tmp) renameSync(tmp, file);
    return f;
  }
}
