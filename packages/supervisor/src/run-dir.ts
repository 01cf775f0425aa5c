/**
 * The supervisor's run folder (WorkerInit.runDir): files shared with its
 * workers (call markers, metrics, upstream counters, verified library copies),
 * under /dev/shm when present, removed when the supervisor exits.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Make this run's folder (`flexilib-<pid>-XXXXXX`), after removing the ones dead supervisors left. */
export function createRunDir(): string {
  const base = existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  sweepStaleRunDirs(base);
  const runDir = mkdtempSync(path.join(base, `flexilib-${process.pid}-`));
  process.once('exit', () => rmSync(runDir, { recursive: true, force: true }));
  return runDir;
}

/**
 * Remove run folders (`flexilib-<pid>-*`) left by supervisors that were killed
 * with SIGKILL and could not clean up: their process is gone.
 */
function sweepStaleRunDirs(base: string): void {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^flexilib-(\d+)-[A-Za-z0-9]{6}$/.exec(name);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
      continue; // alive (or not ours to signal): keep
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') continue;
    }
    rmSync(path.join(base, name), { recursive: true, force: true });
  }
}
