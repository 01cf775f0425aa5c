/**
 * The workers' upstream counter files (@flexilib/worker counter-layout.ts),
 * summed per slot — the same scheme as the metrics files (metrics/aggregator.ts):
 *
 *   live worker's file ──mapped──> read at every /stats and scrape
 *        │ worker exits, or the file is sealed (outgrown)
 *        v
 *   read one last time ──> added to `retired` ──> file deleted
 *
 * A killed worker's counts are in its file up to its last request, so /stats
 * is as exact as /metrics.
 */
import { readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { runDirNames, workerFiles } from '../run-dir-files.js';
import type { Logger } from 'pino';
import { UH, UPSTREAM_FILE_RE, UPSTREAM_HEADER, UPSTREAM_MAGIC } from '@flexilib/contract';
import { mapSharedFile, unmapShared } from '@flexilib/worker';

interface Mapped {
  buf: Buffer;
  f: Float64Array;
}

function check(file: string, f: Float64Array): void {
  if (f.length < UPSTREAM_HEADER || f[UH.magic] !== UPSTREAM_MAGIC) throw new Error(`${file}: not a flexilib upstream counter file`);
}

export class UpstreamCounterBook {
  private readonly live = new Map<string, Mapped>();
  /** Per float64 index of the layout (slotAt), what files no longer written counted. */
  private retired = new Float64Array(0);
  private readonly exited = new Set<number>();

  /** @param runDir the supervisor's run folder; undefined: no files (counts stay zero). */
  constructor(private readonly runDir: string | undefined, private readonly log: Logger) {}

  /** A worker exited: its files are final; fold them in now. */
  workerExited(id: number): void {
    this.exited.add(id);
    for (const { name, workerId } of this.list()) if (workerId === id) this.fold(name);
    for (const name of this.listAll()) {
      if (name.startsWith(`worker-${id}.`) && name.endsWith('.upstream.tmp')) rmSync(path.join(this.runDir!, name), { force: true });
    }
  }

  /** Sums over every file, indexed like one file (slotAt(slot) = success, +1 = failed). */
  sums(): Float64Array {
    for (const { name, workerId } of this.list()) {
      if (this.live.has(name)) continue;
      if (this.exited.has(workerId)) {
        this.fold(name);
        continue;
      }
      const file = path.join(this.runDir!, name);
      try {
        const buf = mapSharedFile(file, statSync(file).size);
        const f = new Float64Array(buf.buffer, buf.byteOffset, Math.floor(buf.length / 8));
        try {
          check(file, f);
        } catch (err) {
          unmapShared(buf);
          throw err;
        }
        this.live.set(name, { buf, f });
      } catch (err) {
        this.log.warn({ file: name, err: (err as Error).message }, 'cannot read a worker upstream counter file; skipping it');
      }
    }
    for (const [name, m] of this.live) if (m.f[UH.sealed] === 1) this.fold(name);
    let n = this.retired.length;
    for (const m of this.live.values()) n = Math.max(n, m.f.length);
    const out = new Float64Array(n);
    out.set(this.retired);
    for (const m of this.live.values()) addInto(out, m.f);
    return out;
  }

  close(): void {
    for (const m of this.live.values()) unmapShared(m.buf);
    this.live.clear();
  }

  private fold(name: string): void {
    const file = path.join(this.runDir!, name);
    const mapped = this.live.get(name);
    try {
      // No process writes this file any more: one plain read is exact.
      const bytes = readFileSync(file);
      const f = new Float64Array(Math.floor(bytes.length / 8));
      new Uint8Array(f.buffer).set(bytes.subarray(0, f.length * 8));
      check(file, f);
      if (f.length > this.retired.length) {
        const grown = new Float64Array(f.length);
        grown.set(this.retired);
        this.retired = grown;
      }
      addInto(this.retired, f);
    } catch (err) {
      this.log.error({ file: name, err: (err as Error).message }, 'cannot read a final worker upstream counter file; its counts are lost');
    }
    if (mapped) {
      unmapShared(mapped.buf);
      this.live.delete(name);
    }
    rmSync(file, { force: true });
  }

  private listAll(): string[] {
    return runDirNames(this.runDir);
  }

  private list(): Array<{ name: string; workerId: number }> {
    return workerFiles(this.runDir, UPSTREAM_FILE_RE);
  }
}

/** Counters only: the header's fields are not sums. */
function addInto(into: Float64Array, f: Float64Array): void {
  for (let i = UPSTREAM_HEADER; i < f.length; i++) into[i] += f[i];
}
