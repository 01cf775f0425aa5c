/**
 * Sums the workers' metrics files (see @flexilib/contract/metrics-layout) into totals.
 *
 *   live worker's file ──mapped──> read at every scrape
 *        │ worker exits, or the file is sealed (its route table retired and idle)
 *        v
 *   read one last time ──> added to `retired` ──> file deleted
 *
 * `retired` only grows and a live file's counters only grow, so every total
 * the supervisor reports is monotonic for the supervisor's life: what a dead
 * worker counted stays in the aggregate, and the run folder holds at most one
 * or two files per live worker however many restarts and reloads happen.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { runDirNames, workerFiles } from '../run-dir-files.js';
import type { Logger } from 'pino';
import { ERROR_CODES, ERROR_SLOT, H, LIBRARY_SLOTS, METRICS_FILE_RE, R, ROUTE_SLOTS, STATUS_CLASSES, WASM_GAUGE } from '@flexilib/contract/metrics-layout';
import { MappedMetricsFile, readMetricsFile, type MetricsData } from '@flexilib/worker';

export interface RouteSeries {
  route: string;
  kind: string;
  /** One route slot (layout R offsets), summed. */
  v: Float64Array;
  /** Error answers by code, in ERROR_CODES order, summed. */
  errors: Float64Array;
}

export interface Totals {
  /** by route key + "\0" + kind */
  routes: Map<string, RouteSeries>;
  /** by library file: one library slot (layout L offsets), summed */
  libraries: Map<string, Float64Array>;
  /** requests in flight in live workers */
  inflight: number;
  /** metrics files of live workers read for this snapshot */
  liveFiles: number;
}

function emptyTotals(): Totals {
  return { routes: new Map(), libraries: new Map(), inflight: 0, liveFiles: 0 };
}

function copyTotals(t: Totals): Totals {
  const c = emptyTotals();
  for (const [k, s] of t.routes) c.routes.set(k, { route: s.route, kind: s.kind, v: Float64Array.from(s.v), errors: Float64Array.from(s.errors) });
  for (const [k, v] of t.libraries) c.libraries.set(k, Float64Array.from(v));
  return c;
}

function addInto(t: Totals, d: MetricsData, live: boolean): void {
  const { info, f } = d;
  info.table.routes.forEach((r, i) => {
    const key = `${r.key}\0${r.kind}`;
    let s = t.routes.get(key);
    if (!s) t.routes.set(key, (s = { route: r.key, kind: r.kind, v: new Float64Array(ROUTE_SLOTS), errors: new Float64Array(ERROR_CODES.length) }));
    const at = info.routesAt + i * ROUTE_SLOTS;
    // A gauge is a level, not a count: a final file's (its worker gone, or its table retired) is not added.
    for (let j = 0; j < ROUTE_SLOTS; j++) if (live || j !== WASM_GAUGE) s.v[j] += f[at + j];
    const codes = info.table.errors;
    const errorsAt = info.errorsAt + i * codes.length;
    for (let j = 0; j < codes.length; j++) {
      const slot = ERROR_SLOT.get(codes[j]);
      if (slot !== undefined) s.errors[slot] += f[errorsAt + j];
    }
  });
  info.table.libraries.forEach((lib, i) => {
    let v = t.libraries.get(lib);
    if (!v) t.libraries.set(lib, (v = new Float64Array(LIBRARY_SLOTS)));
    const at = info.librariesAt + i * LIBRARY_SLOTS;
    for (let j = 0; j < LIBRARY_SLOTS; j++) v[j] += f[at + j];
  });
  if (live) {
    t.inflight += f[H.inflight];
    t.liveFiles++;
  }
}

export class MetricsAggregator {
  private readonly live = new Map<string, MappedMetricsFile>();
  private readonly retired = emptyTotals();
  private readonly exited = new Set<number>();

  constructor(private readonly runDir: string, private readonly log: Logger) {}

  /** A worker exited: its files are final; fold them in now. */
  workerExited(id: number): void {
    this.exited.add(id);
    for (const { name, workerId } of this.list()) if (workerId === id) this.fold(name);
    // A file it was still creating when it died.
    for (const name of this.listAll()) {
      if (name.startsWith(`worker-${id}.`) && name.endsWith('.metrics.tmp')) rmSync(path.join(this.runDir, name), { force: true });
    }
  }

  /** Current totals: everything retired plus every live file, read now. */
  snapshot(): Totals {
    this.refresh();
    const t = copyTotals(this.retired);
    for (const m of this.live.values()) addInto(t, m, true);
    return t;
  }

  /** Requests each live worker answered on its current route tables, read now (the status page's requests/s). */
  requestsByWorker(): Map<number, number> {
    this.refresh();
    const out = new Map<number, number>();
    for (const m of this.live.values()) {
      let n = 0;
      for (let i = 0; i < m.info.table.routes.length; i++) {
        const at = m.info.routesAt + i * ROUTE_SLOTS + R.requests;
        for (let j = 0; j < STATUS_CLASSES.length; j++) n += m.f[at + j];
      }
      const id = m.info.workerId;
      out.set(id, (out.get(id) ?? 0) + n);
    }
    return out;
  }

  /** Map new live files, fold the final ones. */
  private refresh(): void {
    for (const { name, workerId } of this.list()) {
      if (this.live.has(name)) continue;
      if (this.exited.has(workerId)) {
        this.fold(name);
        continue;
      }
      try {
        this.live.set(name, new MappedMetricsFile(path.join(this.runDir, name)));
      } catch (err) {
        this.log.warn({ file: name, err: (err as Error).message }, 'cannot read a worker metrics file; skipping it');
      }
    }
    for (const [name, m] of this.live) if (m.sealed) this.fold(name);
  }

  /** Unmap everything (supervisor exit). */
  close(): void {
    for (const m of this.live.values()) m.close();
    this.live.clear();
  }

  private fold(name: string): void {
    const file = path.join(this.runDir, name);
    const mapped = this.live.get(name);
    try {
      // No process writes this file any more: one plain read is exact.
      addInto(this.retired, readMetricsFile(file), false);
    } catch (err) {
      this.log.error({ file: name, err: (err as Error).message }, 'cannot read a final worker metrics file; its counts are lost');
    }
    if (mapped) {
      mapped.close();
      this.live.delete(name);
    }
    rmSync(file, { force: true });
  }

  private listAll(): string[] {
    return runDirNames(this.runDir);
  }

  private list(): Array<{ name: string; workerId: number }> {
    return workerFiles(this.runDir, METRICS_FILE_RE);
  }
}
