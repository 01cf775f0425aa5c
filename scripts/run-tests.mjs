#!/usr/bin/env node
// Runs every *.test.ts under packages/, examples/ and bench/ with node's test
// runner (TypeScript through tsx). Test files run two at a time: they start
// real servers, and the machines have two cores.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const files = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.ts')) files.push(path.relative(root, p));
  }
}
for (const top of ['packages', 'examples', 'bench']) {
  try { walk(path.join(root, top)); } catch { /* folder absent */ }
}
const filter = process.argv.slice(2);
const chosen = filter.length ? files.filter((f) => filter.some((x) => f.includes(x))) : files;
if (chosen.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const res = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${process.env.TEST_CONCURRENCY ?? 2}`, ...chosen], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(res.status ?? 1);
