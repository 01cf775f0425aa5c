#!/usr/bin/env node
// Part of `pnpm build` for @flexilib/worker: bundles the WASM instance thread's
// entry (dist/wasm/instance-thread.js and what it imports) into one CommonJS
// file, dist/wasm/instance-thread.cjs, which thread-handle.ts starts. Each
// instance thread is an isolate of its own: an ES module entry brings node's ESM
// loader and a resolution per import into every one (~1 MiB of RSS and a slower
// cold start, measured in docs/memory.md); one CommonJS file needs neither.
import { buildSync } from 'esbuild';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
buildSync({
  entryPoints: [path.join(root, 'dist/wasm/instance-thread.js')],
  outfile: path.join(root, 'dist/wasm/instance-thread.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  logLevel: 'warning',
  // Its sources use no import.meta: make any future use a build error, not an empty object.
  logOverride: { 'empty-import-meta': 'error' },
});
