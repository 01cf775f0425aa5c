/**
 * Where a worker reads a library from. Under a supervisor, from its verified
 * copy (supervisor's library-store.ts): the last version of the file that was
 * complete, so a worker that meets a library for the first time — a fresh
 * worker, a spare taking over — while the file is being rewritten in place
 * loads the last complete version, as the workers that had it loaded serve
 * it. Without a supervisor (flexilib invoke, tests), or for a library it holds
 * no copy of yet, the configured file itself.
 */
import { existsSync } from 'node:fs';
import { verifiedLibraryFile } from '@flexilib/contract';

let runDir: string | undefined;

/** Read libraries from the verified copies of this supervisor run folder. */
export function useVerifiedCopies(dir: string): void {
  runDir = dir;
}

/** The file to read for the configured library `file`. */
export function librarySource(file: string): string {
  if (runDir === undefined) return file;
  const copy = verifiedLibraryFile(runDir, file);
  return existsSync(copy) ? copy : file;
}
