/** Temp folders under os.tmpdir() (never a fixed path) that the test removes. */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface TempDir {
  dir: string;
  /** Remove the folder and everything in it. */
  cleanup(): void;
}

/**
 * A fresh folder `flexilib-<label>-XXXXXX` in the system temp folder.
 *
 * @example
 * const tmp = tempDir('reload');
 * after(() => tmp.cleanup());
 */
export function tempDir(label = 'test'): TempDir {
  const dir = mkdtempSync(path.join(os.tmpdir(), `flexilib-${label}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
