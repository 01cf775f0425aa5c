/** Every error code the sources name (supervisor, worker, contract and release, all folders) is
 * in the one catalogue (@flexilib/contract's errors.ts) and documented for operators in docs/. */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ERRORS } from '@flexilib/contract';
import { repoRoot } from '@flexilib/test-support';

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

test('codes used in the sources are catalogued and documented in docs/', () => {
  const used = new Map<string, string>();
  for (const pkg of ['supervisor', 'worker', 'contract', 'release']) {
    for (const f of sources(path.join(repoRoot, 'packages', pkg, 'src'))) {
      for (const m of readFileSync(f, 'utf8').matchAll(/\bFLX_[A-Z0-9_]*[A-Z0-9]\b/g)) used.set(m[0], path.relative(repoRoot, f));
    }
  }
  // Codes from every package and from subfolders (admin/, upstream/, wasm/, native/ ...).
  for (const code of ['FLX_WORKER_EXIT', 'FLX_SERVICE_EXISTS', 'FLX_ADMIN_METHOD', 'FLX_UPSTREAM_STATE', 'FLX_WASM_TRAP', 'FLX_LIB_ABI', 'FLX_RELEASE_SIGN']) {
    assert.ok(used.has(code), `${code} found in the sources`);
  }
  const docsDir = path.join(repoRoot, 'docs');
  const docs = readdirSync(docsDir).filter((f) => f.endsWith('.md')).map((f) => readFileSync(path.join(docsDir, f), 'utf8')).join('\n');
  const uncatalogued = [...used].filter(([c]) => !(c in ERRORS)).map(([c, f]) => `${c} (${f})`);
  assert.deepEqual(uncatalogued, [], `codes missing from packages/contract/src/errors.ts: ${uncatalogued.join(', ')}`);
  const undocumented = [...used.keys()].filter((c) => !new RegExp(`\\b${c}\\b`).test(docs));
  assert.deepEqual(undocumented, [], `codes no doc in docs/ mentions: ${undocumented.join(', ')}`);
});
