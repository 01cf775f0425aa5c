#!/usr/bin/env node
// `pnpm build` for the Rust example: `cargo build --release --offline` when
// cargo is installed (the crate has no registry dependencies), else a clear
// skip. Output: target/release/libflexi_example_rust.so
import { spawnSync } from 'node:child_process';

const here = import.meta.dirname;
const probe = spawnSync('cargo', ['--version'], { encoding: 'utf8' });
if (probe.error || probe.status !== 0) {
  console.error('rust-plugin: cargo not found on PATH: skipping the Rust example (install Rust from rustup.rs or your distribution to build it)');
  process.exit(0);
}
const res = spawnSync('cargo', ['build', '--release', '--offline', ...process.argv.slice(2)], { cwd: here, stdio: 'inherit' });
process.exit(res.status ?? 1);
