/**
 * The struct layout is defined three more times besides flexilib.h: in
 * layout.ts (the host), in the Zig binding (@cImport of the header) and in
 * the Rust binding (#[repr(C)] mirrors). Each must equal what the C compiler
 * says, field by field.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { STRUCTS } from '../src/layout.js';
import { abiRoot, exec, includeDir, requireCargo, parseLayoutDump, zigPath } from './toolchains.js';

/** What layout.ts says, in the dump format. */
function expected(): Map<string, number> {
  const m = new Map<string, number>();
  for (const s of STRUCTS) {
    m.set(`${s.name}.sizeof`, s.size);
    for (const [field] of s.fields) m.set(`${s.name}.${field}`, s.offsets[field as keyof typeof s.offsets]);
  }
  return m;
}

let dir: string;
let cLayout: Map<string, number>;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'flexi-layout-'));
  // A C program printing offsetof/sizeof for every field layout.ts names.
  const lines = STRUCTS.flatMap((s) => {
    const type = s.name === 'flexi_response' ? 'struct flexi_response' : s.name;
    return [
      `  printf("%s sizeof %zu\\n", "${s.name}", sizeof(${type}));`,
      ...s.fields.map(([f]) => `  printf("%s %s %zu\\n", "${s.name}", "${f}", offsetof(${type}, ${f}));`),
    ];
  });
  const src = `#include <flexilib.h>\n#include <stdio.h>\nint handle_request(const flexi_request *q, flexi_response *r) { (void)q; (void)r; return 0; }\nint main(void) {\n${lines.join('\n')}\n  return 0;\n}\n`;
  await writeFile(path.join(dir, 'layout.c'), src);
  await exec('cc', ['-std=c11', '-Wall', '-Werror', '-I', includeDir, '-o', path.join(dir, 'layout'), path.join(dir, 'layout.c')]);
  cLayout = parseLayoutDump((await exec(path.join(dir, 'layout'))).stdout);
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('layout.ts equals the C compiler offsetof/sizeof for every field', () => {
  assert.equal(cLayout.size, expected().size);
  assert.deepEqual(cLayout, expected());
});

test('the Zig binding (@cImport of flexilib.h) has the C layout', async () => {
  const { stdout } = await exec(zigPath(), ['run', 'layout.zig', '-I', includeDir, '-lc'], { cwd: path.join(abiRoot, 'zig') });
  // Zig lists every field of its structs, so this also catches a field layout.ts lacks.
  assert.deepEqual(parseLayoutDump(stdout), cLayout);
});

test('the Rust binding (#[repr(C)] mirrors) has the C layout', async () => {
  requireCargo();
  const { stdout } = await exec('cargo', ['run', '-q', '--offline', '--release', '--example', 'layout'], { cwd: path.join(abiRoot, 'rust') });
  assert.deepEqual(parseLayoutDump(stdout), cLayout);
});
