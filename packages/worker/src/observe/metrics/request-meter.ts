/**
 * The worker's side of the metrics: counts each request into its metrics file
 * (@flexilib/contract/metrics-layout) once the response has closed. One RequestMeter per route table:
 * a config switch opens a new one and retires the old, which seals its file
 * when the last request begun on it closes.
 *
 * The hot path is begin() and record(): typed-array stores at precomputed
 * offsets and one Map lookup (executor -> slot); no allocation, no strings,
 * no system call.
 */
import { renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Executor, RouteCounters } from '../../executor.js';
import { mapSharedFile, unmapShared } from '../../native/ffi.js';
import type { LibraryEvent } from '../../native/library.js';
import {
  ABORTED, DURATION_BUCKETS, ERROR_CODES, ERROR_SLOT, H, HEADER_SLOTS, L, LAYOUT_VERSION, LIBRARY_SLOTS, MAGIC, R, ROUTE_SLOTS, UNMATCHED_ROUTE,
  fileSize, metricsFileName, type MetricsTable,
} from '@flexilib/contract/metrics-layout';

/** Bucket bounds in milliseconds, so record() compares without dividing. */
const BOUNDS_MS = Float64Array.from(DURATION_BUCKETS, (s) => s * 1000);
const NBOUNDS = BOUNDS_MS.length;

export interface MeterSpec {
  runDir: string;
  workerId: number;
  /** Which route table of this worker: 0 at start, +1 per config switch. */
  seq: number;
  executors: readonly Executor[];
}

export class RequestMeter {
  /** The mapped counters; replaced by a private array once sealed and unmapped. */
  private f: Float64Array;
  private buf: Buffer | null;
  private readonly slotOf = new Map<Executor, number>();
  private readonly libraryAt = new Map<string, number>();
  private readonly unmatchedAt: number;
  private readonly routesAt: number;
  private readonly errorsAt: number;
  private retired = false;
  readonly file: string;

  constructor(spec: MeterSpec) {
    const table: MetricsTable = { routes: [{ ...UNMATCHED_ROUTE }], libraries: [], errors: ERROR_CODES };
    for (const ex of spec.executors) {
      table.routes.push({ key: ex.route.key, kind: ex.kind });
      const t = ex.route.target;
      if (t.kind === 'native' && !table.libraries.includes(t.library)) table.libraries.push(t.library);
    }
    const json = Buffer.from(JSON.stringify(table));
    const routesAt = HEADER_SLOTS;
    const librariesAt = routesAt + table.routes.length * ROUTE_SLOTS;
    const errorsAt = librariesAt + table.libraries.length * LIBRARY_SLOTS;
    const tableAt = (errorsAt + table.routes.length * ERROR_CODES.length) * 8;
    const size = fileSize(table.routes.length, table.libraries.length, ERROR_CODES.length, json.length);

    this.file = path.join(spec.runDir, metricsFileName(spec.workerId, spec.seq));
    const tmp = `${this.file}.tmp`;
    rmSync(tmp, { force: true });
    const buf = mapSharedFile(tmp, size);
    const f = new Float64Array(buf.buffer, buf.byteOffset, tableAt / 8);
    json.copy(buf, tableAt);
    f[H.version] = LAYOUT_VERSION;
    f[H.pid] = process.pid;
    f[H.workerId] = spec.workerId;
    f[H.seq] = spec.seq;
    f[H.routeCount] = table.routes.length;
    f[H.libraryCount] = table.libraries.length;
    f[H.routesAt] = routesAt;
    f[H.librariesAt] = librariesAt;
    f[H.errorsAt] = errorsAt;
    f[H.errorCodeCount] = ERROR_CODES.length;
    f[H.tableAt] = tableAt;
    f[H.tableLength] = json.length;
    f[H.magic] = MAGIC;
    renameSync(tmp, this.file);

    this.f = f;
    this.buf = buf;
    this.unmatchedAt = routesAt;
    this.routesAt = routesAt;
    this.errorsAt = errorsAt;
    spec.executors.forEach((ex, i) => this.slotOf.set(ex, routesAt + (i + 1) * ROUTE_SLOTS));
    table.libraries.forEach((lib, i) => this.libraryAt.set(lib, librariesAt + i * LIBRARY_SLOTS));
    // Executors that count things of their own (WASM instances) count into this file from now on.
    for (const ex of spec.executors) ex.countInto?.(new SlotCounters(this, this.slotOf.get(ex)!));
  }

  /**
   * An error answer carrying `code` (its x-flexilib-error) was written for a
   * request on `ex`'s route: one Map lookup and one store. A code outside the
   * catalogue is not counted.
   */
  error(ex: Executor | undefined, code: string): void {
    const i = ERROR_SLOT.get(code);
    if (i === undefined) return;
    const at = ex === undefined ? this.unmatchedAt : (this.slotOf.get(ex) ?? this.unmatchedAt);
    this.f[this.errorsAt + ((at - this.routesAt) / ROUTE_SLOTS) * ERROR_CODES.length + i]++;
  }

  /** SlotCounters' access: through this.f, so a store after seal() lands in the private array. */
  add(at: number, n: number): void {
    this.f[at] += n;
  }

  put(at: number, value: number): void {
    this.f[at] = value;
  }

  /** A request begins (call once per request, before record). */
  begin(): void {
    this.f[H.inflight]++;
  }

  /**
   * The response closed. `finished` is false when the connection went away
   * before the response was complete (counted as status class "aborted");
   * `fast` when the fast lane answered it.
   */
  record(ex: Executor | undefined, status: number, ms: number, bytes: number, alloc: number, finished: boolean, fast: boolean): void {
    const f = this.f;
    const at = ex === undefined ? this.unmatchedAt : (this.slotOf.get(ex) ?? this.unmatchedAt);
    let cls = ABORTED;
    if (finished) {
      cls = ((status / 100) | 0) - 1;
      if (cls < 0 || cls > 4) cls = 4;
    }
    f[at + R.requests + cls]++;
    let b = 0;
    while (b < NBOUNDS && ms > BOUNDS_MS[b]) b++;
    f[at + R.buckets + b]++;
    f[at + R.durationSum] += ms * 0.001;
    f[at + R.responseBytes] += bytes;
    if (alloc > 0) {
      f[at + R.overflowBytes] += alloc;
      f[at + R.overflowRequests]++;
    }
    if (fast) f[at + R.fastLane]++;
    f[H.inflight]--;
    if (this.retired && f[H.inflight] <= 0) this.seal();
  }

  /** A library of this route table was loaded, reloaded, or failed to. */
  library(file: string, event: LibraryEvent): void {
    const at = this.libraryAt.get(file);
    if (at === undefined) return;
    const field = event === 'loaded' ? L.loads : event === 'reloaded' ? L.reloads : event === 'load-failed' ? L.loadFailures : L.reloadFailures;
    this.f[at + field]++;
  }

  /** A newer route table took over: seal this file once its last request closes. */
  retire(): void {
    this.retired = true;
    if (this.f[H.inflight] <= 0) this.seal();
  }

  /**
   * Mark the file final (the supervisor then folds it into its totals and
   * deletes it) and unmap it. Later stray writes would land in a private
   * array, never in freed memory.
   */
  private seal(): void {
    if (!this.buf) return;
    this.f[H.sealed] = 1;
    const buf = this.buf;
    this.buf = null;
    this.f = new Float64Array(this.f.length);
    unmapShared(buf);
  }
}

/** One route's slot of a RequestMeter's file, for what its executor counts itself. */
class SlotCounters implements RouteCounters {
  constructor(readonly table: RequestMeter, private readonly at: number) {}
  add(field: number, n: number): void {
    this.table.add(this.at + field, n);
  }
  set(field: number, value: number): void {
    this.table.put(this.at + field, value);
  }
}
