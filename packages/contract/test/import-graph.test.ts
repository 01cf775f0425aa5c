/**
 * The layering, read from the real sources of packages/<name>/src with
 * TypeScript's own import scanner (static, type-only, re-exports and dynamic
 * import()): no import circles; the contract imports neither side; the
 * supervisor reaches the worker only through its public entry; koffi only in
 * the worker's native/ffi.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';

const packagesDir = path.resolve(import.meta.dirname, '../..');

function sourcesOf(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourcesOf(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Every package's src/*.ts with the module specifiers it imports. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const pkg of readdirSync(packagesDir)) {
    const src = path.join(packagesDir, pkg, 'src');
    if (!existsSync(src)) continue;
    for (const file of sourcesOf(src)) {
      const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
      graph.set(file, info.importedFiles.map((f) => f.fileName));
    }
  }
  return graph;
}

/** A relative specifier as the file it names (NodeNext: `./x.js` is `./x.ts` in the source). */
function resolveLocal(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const abs = path.resolve(path.dirname(from), spec);
  for (const candidate of [abs.replace(/\.js$/, '.ts'), abs, `${abs}.ts`, path.join(abs, 'index.ts')]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return undefined;
}

function findCycles(graph: Map<string, string[]>): string[] {
  const edges = new Map<string, string[]>();
  for (const [file, specs] of graph) {
    edges.set(file, specs.map((s) => resolveLocal(file, s)).filter((f): f is string => f !== undefined));
  }
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of edges.get(file) ?? []) {
      if (state.get(next) === 'open') {
        cycles.push([...stack.slice(stack.indexOf(next)), next].map((f) => path.relative(packagesDir, f)).join(' -> '));
      } else if (!state.has(next)) {
        visit(next);
      }
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of edges.keys()) if (!state.has(file)) visit(file);
  return cycles;
}

const graph = importGraph();
const rel = (file: string) => path.relative(packagesDir, file);

test('the scan sees the packages it judges', () => {
  for (const pkg of ['contract', 'worker', 'supervisor']) {
    const files = [...graph.keys()].filter((f) => rel(f).startsWith(`${pkg}/src/`));
    assert.ok(files.length > 5, `packages/${pkg}/src: ${files.length} files scanned`);
  }
  // The scanner reads type-only imports too (fast-lane.ts imports only types from its neighbour).
  const lane = [...graph.entries()].find(([f]) => rel(f) === 'worker/src/http/fast-lane.ts');
  assert.ok(lane?.[1].includes('./server-state.js'), 'fast-lane.ts imports ./server-state.js');
});

test('no module imports itself back through others', () => {
  assert.deepEqual(findCycles(graph), []);
});

test('the contract imports neither the worker nor the supervisor', () => {
  const bad: string[] = [];
  for (const [file, specs] of graph) {
    if (!rel(file).startsWith('contract/src/')) continue;
    for (const s of specs) if (/^@flexilib\/(worker|supervisor)/.test(s) || s === 'koffi') bad.push(`${rel(file)}: ${s}`);
  }
  assert.deepEqual(bad, []);
});

test("the supervisor uses only the worker's public entry, and the worker never imports the supervisor", () => {
  const bad: string[] = [];
  for (const [file, specs] of graph) {
    const where = rel(file);
    for (const s of specs) {
      if (where.startsWith('supervisor/src/') && s.startsWith('@flexilib/worker/')) bad.push(`${where}: ${s}`);
      if (where.startsWith('supervisor/src/') && s.includes('/worker/')) bad.push(`${where}: ${s}`);
      if (where.startsWith('worker/src/') && s.startsWith('@flexilib/supervisor')) bad.push(`${where}: ${s}`);
    }
  }
  assert.deepEqual(bad, []);
});

test('koffi is imported by the worker\'s native/ffi.ts alone', () => {
  const importers = [...graph.entries()].filter(([, specs]) => specs.includes('koffi')).map(([f]) => rel(f));
  assert.deepEqual(importers, ['worker/src/native/ffi.ts']);
});
