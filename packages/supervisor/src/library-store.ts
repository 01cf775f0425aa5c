/**
 * The supervisor's verified copies of the native libraries: for each
 * configured library, the last version of its file that was a complete ELF
 * object, in the run folder, where workers load it from (the worker's
 * native/verified-copy.ts). A library rewritten slowly in place is then never
 * read half-written by a worker meeting it for the first time (a fresh worker,
 * a spare that took over): it loads the last complete version until the
 * watcher sees the new one complete and the copy is replaced.
 *
 *   start, SIGHUP ──> sync(libraries): copy each file that is complete now
 *   file changed, complete ──> put(file, bytes) ──> reload-library to the workers
 *
 * A copy is replaced whole (written aside, renamed over), so a worker reads
 * either the old version or the new one, never a mix. Identical bytes are not
 * rewritten (the content hash is kept).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { verifiedLibraryFile } from '@flexilib/contract';
import { MAX_LIBRARY_BYTES, elfProblem, readPluginFile } from '@flexilib/worker';

export class LibraryStore {
  /** library -> sha256 of its verified copy */
  private readonly hashes = new Map<string, string>();
  private readonly dir: string;
  private seq = 0;

  constructor(private readonly runDir: string, private readonly log: Logger) {
    this.dir = path.dirname(verifiedLibraryFile(runDir, 'x'));
  }

  /** Keep copies of exactly these libraries, refreshed from each file that is complete now. */
  sync(libraries: string[]): void {
    const keep = new Set(libraries);
    for (const file of [...this.hashes.keys()]) {
      if (keep.has(file)) continue;
      this.hashes.delete(file);
      rmSync(verifiedLibraryFile(this.runDir, file), { force: true });
    }
    for (const file of keep) {
      let bytes: Buffer;
      try {
        bytes = readPluginFile(file, MAX_LIBRARY_BYTES).data;
      } catch {
        continue; // missing, not a regular file or too large: workers report it; a later complete version is stored on change
      }
      if (elfProblem(bytes) === null) this.put(file, bytes);
    }
  }

  /** `bytes` (a complete ELF object) become the library's verified copy. False when it cannot be written. */
  put(file: string, bytes: Buffer): boolean {
    const hash = createHash('sha256').update(bytes).digest('hex');
    if (this.hashes.get(file) === hash) return true;
    const dest = verifiedLibraryFile(this.runDir, file);
    const aside = `${dest}.${process.pid}-${this.seq++}.tmp`;
    try {
      mkdirSync(this.dir, { recursive: true });
      writeFileSync(aside, bytes);
      renameSync(aside, dest);
    } catch (err) {
      rmSync(aside, { force: true });
      this.log.error({ code: 'FLX_LIB_STORE', library: file, err: (err as Error).message }, `cannot keep a verified copy of ${file}: workers that load it next read the file itself`);
      return false;
    }
    this.hashes.set(file, hash);
    return true;
  }

}
