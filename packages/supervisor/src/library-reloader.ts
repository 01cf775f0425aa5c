/**
 * Turns a changed library file into a reload in every worker, and the workers'
 * answers into one outcome.
 *
 *   file changed (debounced) ──> complete ELF? ──no──> log, wait for the next change
 *                                     │yes
 *                     quarantined? ── lift it (the change is a new build)
 *                                     │
 *          reload-library asked of each listening worker ──> library-reloaded ──> one 'library-reloaded' event
 *
 * A complete native library becomes the supervisor's verified copy first
 * (library-store.ts): workers load it from there, from a private copy, checked
 * again, and keep the old one serving when it fails (wrong ABI, missing
 * symbol, failing flexi_init).
 */
import type { Logger } from 'pino';
import { MAX_LIBRARY_BYTES, MAX_MODULE_BYTES, elfProblem, readPluginFile } from '@flexilib/worker';
import type { LibraryReloadedEvent } from './events.js';
import type { WorkerPool } from './worker-pool.js';

/** Workers that have not answered by then are left out of the outcome. */
const ROUND_TIMEOUT_MS = 10_000;

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
    void this.reload(file, this.deps.liftQuarantine(file), started);
  }

  /** Ask every listening worker to reload `file`; their answers make one outcome. */
  private async reload(file: string, lift: boolean, started: number): Promise<void> {
    const targets = this.deps.pool.listening();
    const outcomes = await this.deps.pool.requestAll(targets, { type: 'reload-library', file, ...(lift ? { lift: true } : {}) }, ROUND_TIMEOUT_MS);
    let loaded = 0;
    let silent = 0;
    const errors: string[] = [];
    for (const { reply, error } of outcomes) {
      if (reply) {
        if (reply.loaded) loaded++;
        if (!reply.ok) errors.push(reply.error ?? 'unknown error');
      } else if (error.code === 'FLX_WORKER_NO_REPLY') silent++;
      // A worker that died is not waited for: its replacement loads the new version.
    }
    const ok = errors.length === 0 && silent === 0;
    const error = errors[0] ?? (silent ? `${silent} worker(s) did not answer within ${ROUND_TIMEOUT_MS} ms` : undefined);
    const durationMs = Date.now() - started;
    const e: LibraryReloadedEvent = { file, ok, workers: targets.length, loaded, durationMs, ...(error ? { error } : {}) };
    if (ok) this.deps.log.info({ library: file, workers: targets.length, loaded, durationMs }, 'library reloaded');
    else {
      const then = lift ? 'the quarantined version is dropped and requests retry the file' : 'the old version keeps serving';
      this.deps.log.error({ code: 'FLX_LIB_RELOAD_FAILED', library: file, workers: targets.length, failed: errors.length, err: error }, `library reload failed; ${then}: ${error}`);
    }
    this.deps.emit(e);
  }
}
