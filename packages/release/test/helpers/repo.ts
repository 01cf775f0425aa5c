/** Paths of the workspace under test, and temp folders that clean up after themselves. */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const at = (...parts: string[]): string => path.join(ROOT, ...parts);

/** A fresh folder under os.tmpdir(); `dispose()` removes it. */
export function tempDir(prefix: string): { dir: string; dispose(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `flexilib-${prefix}-`));
  return { dir, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}
