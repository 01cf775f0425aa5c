/**
 * Turns a changed library file into a reload in every worker, and the workers'
 * answers into one outcome.
 *
 *   file changed (debounced) ──> complete ELF? ──no──> log, wait for the next change
 *                                     │yes
 *                     quarantined? ── lift it (the change is a new build)
 *                                     │
 *          reload-library ──> each listening worker ──> library-reloaded ──> one 'library-reloaded' event
 *
 * A complete native library becomes the supervisor's verified copy first
 * (library-store.ts): workers load it from there, from a private copy, checked
 * again, and keep the old one serving when it fails (wrong ABI, missing
 * symbol, failing flexi_init).
 */
import type { Logger } from 'pino';
import { type FromWorker } from '@flexilib/contract';
import { MAX_LIBRARY_BYTES, MAX_MODULE_BYTES, elfProblem, readPluginFile } from '@flexilib/worker';
import type { LibraryReloadedEvent } from './events.js';
import type { PoolWorker, WorkerPool } from './worker-pool.js';

/** Workers that have not answered by then are left out of the outcome. */
const ROUND_TIMEOUT_MS = 10_000;

interface Round {
  file: string;
  started: number;
  pending: Set<number>;
  workers: number;
  loaded: number;
  errors: string[];
  /** The reload lifted a quarantine: a failed load drops the old version instead of keeping it. */
  lift: boolean;
  timer: NodeJS.Timeout;
}

export interface ReloaderDeps {
  pool: WorkerPool;
  log: Logger;
  /** Is this file still a library of the current config? */
  isLibrary(file: string): boolean;
  /** Lift the library's quarantine if it has one; true when it did. */
  liftQuarantine(file: string): boolean;
  emit(e: LibraryReloadedEvent): void;
  /** Keep `bytes` (complete) as the library's verified copy (library-store.ts). */
  store(file: string, bytes: Buffer): void;
}

export class LibraryReloader {
  private readonly rounds: Round[] = [];

  constructor(private readonly deps: ReloaderDeps) {}

  changed(file: string): void {
    const { log } = this.deps;
    if (!this.deps.isLibrary(file)) return;
    const started = Date.now();
    let bytes: Buffer;
    try {
      bytes = readPluginFile(file, file.endsWith('.wasm') ? MAX_MODULE_BYTES : MAX_LIBRARY_BYTES).data;
    } catch (err) {
      log.info({ library: file, err: (err as Error).message }, 'library file is gone or unreadable; the loaded version keeps serving');
      return;
    }
    // A .wasm module is checked as WebAssembly, a shared library as ELF.
    const problem = file.endsWith('.wasm') ? (WebAssembly.validate(new Uint8Array(bytes)) ? undefined : 'not a complete WebAssembly module') : elfProblem(bytes);
    if (problem) {
      log.warn({ code: 'FLX_LIB_INCOMPLETE', library: file, problem }, `library changed but cannot be loaded yet (${problem}); the old version keeps serving until the next change`);
      this.deps.emit({ file, ok: false, error: problem, workers: 0, loaded: 0, durationMs: Date.now() - started });
      return;
    }
    // Workers that load it from now on (fresh ones included) read this version.
    if (!file.endsWith('.wasm')) this.deps.store(file, bytes);
    const lift = this.deps.liftQuarantine(file);
    const targets = this.deps.pool.listening();
    const round: Round = {
      file,
      started,
      pending: new Set(targets.map((w) => w.id)),
      workers: targets.length,
      loaded: 0,
      errors: [],
      lift,
      timer: setTimeout(() => this.finish(round), ROUND_TIMEOUT_MS),
    };
    round.timer.unref();
    this.rounds.push(round);
    for (const w of targets) this.deps.pool.send(w, { type: 'reload-library', file, ...(lift ? { lift: true } : {}) });
    if (round.pending.size === 0) this.finish(round);
  }

  /** A worker's answer. Workers answer in the order they were asked. */
  reply(w: PoolWorker, msg: Extract<FromWorker, { type: 'library-reloaded' }>): void {
    const round = this.rounds.find((r) => r.file === msg.file && r.pending.has(w.id));
    if (!round) return;
    round.pending.delete(w.id);
    if (msg.loaded) round.loaded++;
    if (!msg.ok) round.errors.push(msg.error ?? 'unknown error');
    if (round.pending.size === 0) this.finish(round);
  }

  /** A worker died: stop waiting for it. */
  forget(w: PoolWorker): void {
    for (const round of [...this.rounds]) {
      if (round.pending.delete(w.id) && round.pending.size === 0) this.finish(round);
    }
  }

  private finish(round: Round): void {
    const i = this.rounds.indexOf(round);
    if (i < 0) return;
    this.rounds.splice(i, 1);
    clearTimeout(round.timer);
    const ok = round.errors.length === 0 && round.pending.size === 0;
    const error = round.errors[0] ?? (round.pending.size ? `${round.pending.size} worker(s) did not answer within ${ROUND_TIMEOUT_MS} ms` : undefined);
    const durationMs = Date.now() - round.started;
    const e: LibraryReloadedEvent = { file: round.file, ok, workers: round.workers, loaded: round.loaded, durationMs, ...(error ? { error } : {}) };
    if (ok) this.deps.log.info({ library: round.file, workers: round.workers, loaded: round.loaded, durationMs }, 'library reloaded');
    else {
      const then = round.lift ? 'the quarantined version is dropped and requests retry the file' : 'the old version keeps serving';
      this.deps.log.error({ code: 'FLX_LIB_RELOAD_FAILED', library: round.file, workers: round.workers, failed: round.errors.length, err: error }, `library reload failed; ${then}: ${error}`);
    }
    this.deps.emit(e);
  }
}
