#!/usr/bin/env node
// Part of `pnpm build` for @flexilib/worker: builds dist/native/thread-ring.so,
// the native loop threaded routes call their plugins through
// (c/thread-ring.c, src/native/thread-ring.ts), with `zig cc` from the Zig
// devDependency that also builds the FlexiLib adapter, or the system's cc
// where that Zig is not installed (not x86_64 Linux). Without either the build
// fails: threaded routes cannot run without it.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { zigPath } from './zig-path.mjs';

const root = path.resolve(import.meta.dirname, '..');
const zig = zigPath();
const outDir = path.join(root, 'dist', 'native');
mkdirSync(outDir, { recursive: true });
// Stripped, and no build path recorded: the release tarball carries it (release-tarball.test.ts).
const args = ['-shared', '-fPIC', '-O2', '-std=c11', '-Wall', '-Werror', '-pthread', '-s', `-ffile-prefix-map=${root}=.`, '-o', path.join(outDir, 'thread-ring.so'), path.join(root, 'c', 'thread-ring.c')];
const [cmd, argv] = zig ? [zig, ['cc', ...args]] : ['cc', args];
const res = spawnSync(cmd, argv, { stdio: 'inherit' });
if (res.error) console.error(`@flexilib/worker: cannot build dist/native/thread-ring.so: ${cmd}: ${res.error.message}`);
process.exit(res.status ?? 1);
