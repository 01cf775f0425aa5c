/** Every error code the supervisor logs is in its catalogue and documented for operators
 * (the admin listener's API error codes are its own: admin/). */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ERRORS } from '../src/errors.js';
import { repoRoot } from '@flexilib/test-support';

test('codes used in log lines are catalogued and in docs/operations.md', () => {
  const src = path.join(repoRoot, 'packages/supervisor/src');
  const used = new Set<string>();
  for (const f of readdirSync(src)) {
    if (!f.endsWith('.ts')) continue;
    for (const m of readFileSync(path.join(src, f), 'utf8').matchAll(/code: '(FLX_[A-Z_]+)'/g)) used.add(m[1]);
  }
  assert.ok(used.size >= 8, `codes found: ${[...used]}`);
  const docs = readFileSync(path.join(repoRoot, 'docs/operations.md'), 'utf8');
  for (const code of used) {
    assert.ok(code in ERRORS, `${code} is in errors.ts`);
    assert.ok(docs.includes(code), `${code} is documented in docs/operations.md`);
  }
});
