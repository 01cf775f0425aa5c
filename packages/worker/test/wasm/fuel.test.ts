/**
 * The fuel rewrite (fuel.ts), in process: a module with loops, recursion,
 * indirect calls and globals computes exactly what the original computes; the
 * fuel reaches the host, which can stop a runaway loop at its deadline; and a
 * module the walker cannot read is refused (it runs on threads), never guessed at.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { compileWasm, exampleSource, tempDir } from '@flexilib/test-support';
import { FlexiError } from '@flexilib/contract';
import { FUEL, FUEL_GLOBAL, NotInterruptible, TICK_TABLE, addFuel } from '../../src/wasm/fuel.js';
import { compileModule } from '../../src/wasm/module-check.js';
import { FIXTURES } from './wasm-fixtures.js';

type Compute = { sum_to(n: number): bigint; fib(n: number): number; mix(r: number): number; calls_made(): number; spin(): void };

/** `t`, wrapped as a WebAssembly function (a funcref table takes no plain JS function). */
function wasmFunction(t: () => void): unknown {
  const wrapper = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0, 2, 7, 1, 1, 0x68, 1, 0x74, 0, 0, 7, 5, 1, 1, 0x74, 0, 0]);
  return new WebAssembly.Instance(new WebAssembly.Module(wrapper), { h: { t } }).exports.t;
}

test('the rewritten module computes what the original computes, and gives the host its ticks', { timeout: 120_000 }, async (t) => {
  const tmp = tempDir('fuel');
  t.after(() => tmp.cleanup());
  const file = await compileWasm(path.join(FIXTURES, 'compute.c'), path.join(tmp.dir, 'compute.wasm'));
  const bytes = readFileSync(file);
  const fueled = addFuel(bytes);
  assert.ok(fueled.length > bytes.length);

  // What wasi-libc's start-up imports (nothing this module calls needs them).
  const stubs = (m: WebAssembly.Module): WebAssembly.Imports => {
    const imports: Record<string, Record<string, () => number>> = {};
    for (const i of WebAssembly.Module.imports(m)) (imports[i.module] ??= {})[i.name] = () => 0;
    return imports;
  };
  const origModule = new WebAssembly.Module(bytes);
  const fuelModule = new WebAssembly.Module(fueled as BufferSource);
  const original = new WebAssembly.Instance(origModule, stubs(origModule)).exports as unknown as Compute;
  const inst = new WebAssembly.Instance(fuelModule, stubs(fuelModule));
  const x = inst.exports as unknown as Compute;
  const fuel = inst.exports[FUEL_GLOBAL] as WebAssembly.Global;
  const table = inst.exports[TICK_TABLE] as WebAssembly.Table;
  let ticks = 0;
  let deadline = Infinity;
  table.set(0, wasmFunction(() => {
    ticks++;
    if (performance.now() >= deadline) throw new Error('past the deadline');
    fuel.value = FUEL;
  }) as never);

  for (const i of [original, x] as unknown as Array<{ _initialize?: () => void }>) i._initialize?.();
  for (const n of [0, 1, 7, 1000, 300_000]) assert.equal(x.sum_to(n), original.sum_to(n), `sum_to(${n})`);
  for (const n of [0, 1, 2, 10, 25]) assert.equal(x.fib(n), original.fib(n), `fib(${n})`);
  for (const r of [0, 1, 5, 100, 50_000]) assert.equal(x.mix(r), original.mix(r), `mix(${r})`);
  assert.equal(x.calls_made(), original.calls_made(), 'globals kept the same count');
  assert.ok(ticks > 0, 'loops and calls spent fuel: the host was called');

  // fib(25) makes ~250k calls and no loop: function entries spend fuel too.
  const before = ticks;
  x.fib(25);
  assert.ok(ticks - before >= 3, `recursion alone reached the host (${ticks - before} ticks)`);

  // A runaway loop is stopped by the host at its deadline, and the instance still answers afterwards.
  deadline = performance.now() + 200;
  assert.throws(() => x.spin(), /past the deadline/);
  assert.ok(performance.now() >= deadline);
  deadline = Infinity;
  assert.equal(x.fib(10), 55);
});

test('the C example rewrites and compiles; a module the walker cannot read runs on threads', { timeout: 120_000 }, async (t) => {
  const tmp = tempDir('fuel-ex');
  t.after(() => tmp.cleanup());
  const example = readFileSync(await compileWasm(exampleSource, path.join(tmp.dir, 'example.wasm')));
  const auto = await compileModule(example, 16 << 20, 'example', 'auto');
  assert.equal(auto.info.fueled, true);
  assert.equal(auto.notInterruptible, undefined);
  assert.equal((await compileModule(example, 16 << 20, 'example', 'thread')).info.fueled, false);

  // Exception handling (try = 0x06) is not something the walker decodes: refused, not guessed.
  //   (module (type (func)) (func (type 0) try end))
  const eh = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0, 10, 7, 1, 5, 0, 0x06, 0x40, 0x0b, 0x0b]);
  assert.throws(() => addFuel(eh), (err: unknown) => err instanceof NotInterruptible && /opcode 0x6/.test((err as Error).message));
  // A start function would run before the host could interrupt it.
  //   (module (type (func)) (func (type 0)) (start 0))
  const start = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0, 8, 1, 0, 10, 4, 1, 2, 0, 0x0b]);
  assert.throws(() => addFuel(start), /start function/);

  // run = loop on such a module is refused, with its code and the reason; run = auto takes
  // it on (to the export checks, which these bare modules fail).
  for (const [m, reason] of [[eh, /opcode 0x6/], [start, /start function/]] as const) {
    await assert.rejects(compileModule(m, 16 << 20, 'm.wasm', 'loop'), (err: unknown) => {
      assert.ok(err instanceof FlexiError);
      assert.equal(err.code, 'FLX_WASM_NOT_INTERRUPTIBLE');
      assert.match(err.message, /^m\.wasm cannot run on the event loop \(run = loop\)/);
      assert.match(err.message, reason);
      return true;
    });
    await assert.rejects(compileModule(m, 16 << 20, 'm.wasm', 'auto'), (err: unknown) => err instanceof FlexiError && err.code === 'FLX_WASM_EXPORTS');
  }
});
