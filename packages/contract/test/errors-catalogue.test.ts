/**
 * The one error catalogue against the operator docs: every code is documented
 * in docs/*.md, every code the docs (and README) name exists, and the table
 * stays one code per line (branches append codes; their additions merge).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ERRORS, FlexiError, answersHttp, statusOf, type ErrorCode, type ErrorSpec } from '../src/errors.js';

const root = path.resolve(import.meta.dirname, '../../..');
const docsDir = path.join(root, 'docs');
const docFiles = readdirSync(docsDir).filter((f) => f.endsWith('.md')).map((f) => path.join(docsDir, f));
/** A code, or a family written as FLX_UPSTREAM_* (its trailing "_" kept). */
const CODE = /FLX_[A-Z0-9_]*[A-Z0-9_](?![A-Za-z0-9])/g;

function mentions(files: string[]): Map<string, string[]> {
  const where = new Map<string, string[]>();
  for (const f of files) {
    for (const m of readFileSync(f, 'utf8').matchAll(CODE)) {
      const list = where.get(m[0]) ?? [];
      if (!list.includes(path.relative(root, f))) list.push(path.relative(root, f));
      where.set(m[0], list);
    }
  }
  return where;
}

test('every catalogued code is documented in docs/*.md', () => {
  const documented = mentions(docFiles);
  const missing = Object.keys(ERRORS).filter((c) => !documented.has(c));
  assert.deepEqual(missing, [], `codes no doc in docs/ mentions: ${missing.join(', ')}`);
  // docs/errors.md is the table of all of them.
  const table = readFileSync(path.join(docsDir, 'errors.md'), 'utf8');
  const rows = Object.keys(ERRORS).filter((c) => !table.includes(`| \`${c}\` |`));
  assert.deepEqual(rows, [], `codes without a row in docs/errors.md: ${rows.join(', ')}`);
});

test('every code the docs and README name exists in the catalogue', () => {
  const named = mentions([...docFiles, path.join(root, 'README.md')]);
  assert.ok(named.size >= 40, `codes found in the docs: ${named.size}`);
  const unknown: string[] = [];
  for (const [name, files] of named) {
    const known = name.endsWith('_') ? Object.keys(ERRORS).some((c) => c.startsWith(name)) : name in ERRORS;
    if (!known) unknown.push(`${name} (${files.join(', ')})`);
  }
  assert.deepEqual(unknown, [], `documented codes that do not exist: ${unknown.join('; ')}`);
});

test('the catalogue is one code per line, with a 4xx/5xx status or an exit code or neither', () => {
  const source = readFileSync(path.join(root, 'packages/contract/src/errors.ts'), 'utf8');
  const body = source.slice(source.indexOf('export const ERRORS = {'), source.indexOf('} as const satisfies'));
  const lines = body.split('\n').slice(1).filter((l) => l.trim() !== '' && !l.trim().startsWith('//'));
  for (const l of lines) assert.match(l, /^ {2}FLX_[A-Z0-9_]+: \{ (status: [45]\d\d, )?(exit: [12], )?text: (['"]).*\3 \},$/, `one code per line: ${l}`);
  assert.equal(lines.length, Object.keys(ERRORS).length);
  for (const [code, spec] of Object.entries(ERRORS) as Array<[ErrorCode, ErrorSpec]>) {
    assert.equal(answersHttp(code), spec.status !== undefined, code);
    if (answersHttp(code)) assert.equal(statusOf(code), spec.status);
  }
});

test('FlexiError takes its status and exit code from the catalogue and keeps its details', () => {
  const api = new FlexiError('FLX_SERVICE_EXISTS', 'a service named "a" is already registered', { field: 'name' });
  assert.equal(api.status, 409);
  assert.equal(api.field, 'name');
  assert.equal(api.exitCode, 1);
  const usage = new FlexiError('FLX_USAGE', '--workers: "x" is not an integer');
  assert.equal(usage.status, undefined);
  assert.equal(usage.exitCode, 2);
  const cause = new Error('dlopen');
  const lib = new FlexiError('FLX_LIB_LOAD', 'cannot load', { route: '/a', library: '/x.so', cause });
  assert.deepEqual([lib.status, lib.route, lib.library, lib.cause], [502, '/a', '/x.so', cause]);
  assert.equal(new FlexiError('FLX_RELEASE_USAGE', 'x').exitCode, 2);
  const later = new FlexiError('FLX_CLUSTER_UNREACHABLE', 'etcd is unreachable', { headers: { 'retry-after': '5' } });
  assert.deepEqual([later.status, later.headers], [503, { 'retry-after': '5' }]);
});
