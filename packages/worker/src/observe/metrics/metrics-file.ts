/**
 * Reading a worker's metrics file (layout: @flexilib/contract/metrics-layout), for the supervisor.
 *
 * A live worker's file is mapped (MAP_SHARED) and read with aligned float64
 * loads, so a value is never seen half-written while the worker counts. A dead
 * worker's file (or a sealed one) has no writer left and is read once with
 * readFileSync, folded into the supervisor's totals, and deleted.
 */
import { readFileSync, statSync } from 'node:fs';
import { mapSharedFile, unmapShared } from '../../native/ffi.js';
import { H, HEADER_SLOTS, LAYOUT_VERSION, MAGIC, type MetricsTable } from '@flexilib/contract/metrics-layout';

export interface MetricsFileInfo {
  pid: number;
  workerId: number;
  seq: number;
  routesAt: number;
  librariesAt: number;
  /** float64 index of route 0's error counters (table.errors.length per route) */
  errorsAt: number;
  table: MetricsTable;
}

function parse(file: string, buf: Buffer): MetricsFileInfo {
  if (buf.length < HEADER_SLOTS * 8) throw new Error(`${file}: too short for a metrics file (${buf.length} bytes)`);
  const h = new Float64Array(buf.buffer, buf.byteOffset, HEADER_SLOTS);
  if (h[H.magic] !== MAGIC) throw new Error(`${file}: not a flexilib metrics file`);
  if (h[H.version] !== LAYOUT_VERSION) throw new Error(`${file}: metrics layout ${h[H.version]}, expected ${LAYOUT_VERSION}`);
  const tableAt = h[H.tableAt];
  const tableLength = h[H.tableLength];
  if (tableAt + tableLength > buf.length) throw new Error(`${file}: table beyond the end of the file`);
  const table = JSON.parse(buf.toString('utf8', tableAt, tableAt + tableLength)) as MetricsTable;
  if (table.errors.length !== h[H.errorCodeCount]) throw new Error(`${file}: ${h[H.errorCodeCount]} error codes in the header, ${table.errors.length} in the table`);
  return { pid: h[H.pid], workerId: h[H.workerId], seq: h[H.seq], routesAt: h[H.routesAt], librariesAt: h[H.librariesAt], errorsAt: h[H.errorsAt], table };
}

/** How many float64s the header and counters of a file span (the error counters come last). */
function countersIn(info: MetricsFileInfo): number {
  return info.errorsAt + info.table.routes.length * info.table.errors.length;
}

/** Counters of one file: `f` is indexed by the metrics layout's offsets. */
export interface MetricsData {
  info: MetricsFileInfo;
  f: Float64Array;
}

/** Read a file no process writes any more (its worker died, or it is sealed). */
export function readMetricsFile(file: string): MetricsData {
  const buf = readFileSync(file);
  const info = parse(file, buf);
  // readFileSync's buffer may sit at an unaligned offset of a shared pool: copy to align.
  const n = countersIn(info);
  if (n * 8 > buf.length) throw new Error(`${file}: counters beyond the end of the file`);
  const f = new Float64Array(n);
  new Uint8Array(f.buffer).set(buf.subarray(0, n * 8));
  return { info, f };
}

/** A live worker's file, mapped. close() unmaps it; `f` must not be used after. */
export class MappedMetricsFile implements MetricsData {
  readonly info: MetricsFileInfo;
  f: Float64Array;
  private buf: Buffer | null;

  constructor(readonly file: string) {
    const size = statSync(file).size;
    const buf = mapSharedFile(file, size);
    try {
      this.info = parse(file, buf);
    } catch (err) {
      unmapShared(buf);
      throw err;
    }
    this.buf = buf;
    this.f = new Float64Array(buf.buffer, buf.byteOffset, countersIn(this.info));
  }

  get sealed(): boolean {
    return this.f[H.sealed] === 1;
  }

  get inflight(): number {
    return this.f[H.inflight];
  }

  close(): void {
    if (!this.buf) return;
    const buf = this.buf;
    this.buf = null;
    this.f = new Float64Array(0);
    unmapShared(buf);
  }
}
