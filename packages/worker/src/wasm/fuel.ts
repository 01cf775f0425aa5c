/**
 * Make a module interruptible, so that its calls can run on the event loop:
 * every loop header and the entry of every function that calls another spends one unit of fuel, and
 * when the fuel runs out the module calls the host, which throws past the
 * call's deadline (the trap unwinds the module) or refills the fuel.
 *
 * Each check, inserted after each `loop bt` and after the locals of every
 * function that calls anything (a leaf without loops ends by itself):
 *
 *   global.get $fuel  i32.eqz  if  i32.const 0  call_indirect $tick_type $tick_table  end
 *   global.get $fuel  i32.const 1  i32.sub  global.set $fuel
 *
 * Why this shape, and our own walker rather than binaryen: adding a function
 * import would shift every function index (call, ref.func, elements, exports,
 * start, the name section), which needs either a full renumbering pass or a
 * library such as binaryen (~10 MiB of JS and WASM, loaded into the worker
 * that these changes exist to slim down). Instead only things whose indices
 * nothing else refers to are appended: a type `[] -> []`, a global (the
 * fuel), a one-entry funcref table, and two exports for the host. The host
 * puts its tick function into that table after instantiation (a
 * WebAssembly-exported wrapper of a JS function: see loop-instance.ts), and
 * the check reaches it with call_indirect on the new table. So the rewrite
 * only inserts bytes into function bodies; it must still decode every
 * instruction to find the loops, and any opcode it does not know (exception
 * handling, GC, anything newer) refuses the module, which then runs on an
 * instance thread as before: never a guess.
 *
 *   module  := magic version section*
 *   code    := count (size locals expr)*          a body's size is re-encoded
 */
import { FUEL_GLOBAL, TICK_TABLE } from './module-info.js';
import { Reader, WasmFormatError, leb } from './wasm-binary.js';

/** Fuel per refill: the host looks at the clock once per this many loop turns or calls (~50-200 µs of work). */
export const FUEL = 1 << 16;
export { FUEL_GLOBAL, TICK_TABLE };

/** Why a module cannot be made interruptible (it runs on an instance thread instead). */
export class NotInterruptible extends Error {}


function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

/** Value types a plain (pre-GC) module may use, one byte each. */
const VALTYPES = new Set([0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f]);

function valtype(r: Reader): void {
  const t = r.byte();
  if (!VALTYPES.has(t)) throw new NotInterruptible(`value type 0x${t.toString(16)}`);
}

function blocktype(r: Reader): void {
  const t = r.b[r.pos];
  if (t === 0x40 || VALTYPES.has(t)) r.pos++;
  else r.sleb(33);
}

function memarg(r: Reader): void {
  const align = r.leb();
  if (align & 0x40) r.leb(); // multi-memory: the memory index follows
  r.leb();
}

/**
 * Walk one function body's instructions from `r.pos` to its end, calling
 * `atLoop(pos)` right after each loop's block type. Returns whether the body
 * calls anything. Throws NotInterruptible on an opcode it does not know.
 */
function walk(r: Reader, atLoop: (pos: number) => void): boolean {
  let depth = 1;
  let calls = false;
  while (depth > 0) {
    const op = r.byte();
    switch (op) {
      case 0x02: // block
      case 0x04: // if
        blocktype(r);
        depth++;
        break;
      case 0x03: // loop
        blocktype(r);
        depth++;
        atLoop(r.pos);
        break;
      case 0x0b: // end
        depth--;
        break;
      case 0x00: case 0x01: case 0x05: case 0x0f: case 0x1a: case 0x1b: case 0xd1: // no immediate
        break;
      case 0x10: case 0x12: // call, return_call
        calls = true;
        r.leb();
        break;
      case 0x0c: case 0x0d: case 0xd2: // br, br_if, ref.func
      case 0x20: case 0x21: case 0x22: case 0x23: case 0x24: case 0x25: case 0x26: // locals, globals, table.get/set
        r.leb();
        break;
      case 0x0e: { // br_table
        const n = r.leb();
        for (let i = 0; i <= n; i++) r.leb();
        break;
      }
      case 0x11: case 0x13: // call_indirect, return_call_indirect: type, table
        calls = true;
        r.leb();
        r.leb();
        break;
      case 0x1c: { // select t*
        const n = r.leb();
        for (let i = 0; i < n; i++) valtype(r);
        break;
      }
      case 0x3f: case 0x40: // memory.size, memory.grow: memory index
        r.leb();
        break;
      case 0x41: r.sleb(32); break;
      case 0x42: r.sleb(64); break;
      case 0x43: r.skip(4); break;
      case 0x44: r.skip(8); break;
      case 0xd0: // ref.null: a heap type (func or extern)
        valtype(r);
        break;
      case 0xfc:
        misc(r, r.leb());
        break;
      case 0xfd:
        simd(r, r.leb());
        break;
      case 0xfe:
        atomic(r, r.leb());
        break;
      default:
        if (op >= 0x28 && op <= 0x3e) memarg(r); // loads and stores
        else if (op >= 0x45 && op <= 0xc4) { /* numeric, sign extension: no immediate */ }
        else throw new NotInterruptible(`opcode 0x${op.toString(16)}`);
    }
  }
  return calls;
}

function misc(r: Reader, sub: number): void {
  if (sub <= 7) return; // saturating truncations
  switch (sub) {
    case 8: r.leb(); r.leb(); return; // memory.init data mem
    case 9: case 13: case 15: case 16: case 17: r.leb(); return; // data.drop, elem.drop, table.grow/size/fill
    case 10: case 12: case 14: r.leb(); r.leb(); return; // memory.copy, table.init, table.copy
    case 11: r.leb(); return; // memory.fill
  }
  throw new NotInterruptible(`opcode 0xfc ${sub}`);
}

function simd(r: Reader, sub: number): void {
  if (sub <= 11 || sub === 92 || sub === 93) memarg(r);
  else if (sub === 12 || sub === 13) r.skip(16); // v128.const, i8x16.shuffle
  else if (sub >= 21 && sub <= 34) r.skip(1); // extract/replace lane
  else if (sub >= 84 && sub <= 91) { memarg(r); r.skip(1); } // lane loads and stores
  else if (sub > 0xff) throw new NotInterruptible(`opcode 0xfd ${sub}`);
}

function atomic(r: Reader, sub: number): void {
  if (sub === 3) r.skip(1); // atomic.fence
  else if (sub <= 0x4e) memarg(r);
  else throw new NotInterruptible(`opcode 0xfe ${sub}`);
}

interface Section {
  id: number;
  payload: Uint8Array;
}

/** Where a section goes in the module (custom sections stay where they are). */
const ORDER: Record<number, number> = { 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13 };

function vecPayload(r: Reader): { count: number; rest: Uint8Array } {
  const count = r.leb();
  return { count, rest: r.b.subarray(r.pos, r.end) };
}

/** A vector section with `n` entries (encoded in `entries`) appended. */
function withAppended(payload: Uint8Array | undefined, entries: number[], n = 1): Uint8Array {
  if (!payload) return Uint8Array.from([...leb(n), ...entries]);
  const r = new Reader(payload, 0, payload.length);
  const { count, rest } = vecPayload(r);
  return Uint8Array.from([...leb(count + n), ...rest, ...entries]);
}

/** The fuel check, for global `fuel`, type `type` and table `table`. */
function check(fuel: number, type: number, table: number): number[] {
  const g = leb(fuel);
  return [0x23, ...g, 0x45, 0x04, 0x40, 0x41, 0x00, 0x11, ...leb(type), ...leb(table), 0x0b, 0x23, ...g, 0x41, 0x01, 0x6b, 0x24, ...g];
}

/**
 * The module with fuel checks (see above). Throws NotInterruptible for a
 * module the rewrite does not handle, WasmFormatError for a malformed one.
 */
export function addFuel(bytes: Uint8Array): Uint8Array {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) throw new WasmFormatError('not a WebAssembly module (no \\0asm magic)');
  const sections: Section[] = [];
  for (let pos = 8; pos < bytes.length; ) {
    const r = new Reader(bytes, pos, bytes.length);
    const id = r.byte();
    const size = r.leb();
    if (r.pos + size > bytes.length) throw new WasmFormatError(`section ${id} runs past the end of the module`);
    sections.push({ id, payload: bytes.subarray(r.pos, r.pos + size) });
    pos = r.pos + size;
  }
  const find = (id: number) => sections.find((s) => s.id === id);
  if (find(8)) throw new NotInterruptible('it has a start function (it would run before the host can interrupt it)');

  const counts = { types: 0, tables: 0, globals: 0 };
  const types = find(1);
  if (types) counts.types = new Reader(types.payload, 0, types.payload.length).leb();
  const imports = find(2);
  if (imports) {
    const r = new Reader(imports.payload, 0, imports.payload.length);
    for (let n = r.leb(); n > 0; n--) {
      r.name();
      r.name();
      const kind = r.byte();
      if (kind === 0) {
        r.leb();
      } else if (kind === 1) {
        counts.tables++;
        r.byte();
        if (r.byte() & 1) r.leb();
        r.leb();
      } else if (kind === 2) {
        if (r.byte() & 1) r.leb();
        r.leb();
      } else if (kind === 3) {
        counts.globals++;
        r.byte();
        r.byte();
      } else {
        throw new NotInterruptible(`import kind ${kind}`);
      }
    }
  }
  const tables = find(4);
  if (tables) counts.tables += new Reader(tables.payload, 0, tables.payload.length).leb();
  const globals = find(6);
  if (globals) counts.globals += new Reader(globals.payload, 0, globals.payload.length).leb();
  const exports = find(7);
  if (exports) {
    const r = new Reader(exports.payload, 0, exports.payload.length);
    for (let n = r.leb(); n > 0; n--) {
      const name = r.name();
      if (name === FUEL_GLOBAL || name === TICK_TABLE) throw new NotInterruptible(`it already exports ${name}`);
      r.byte();
      r.leb();
    }
  }
  const code = find(10);
  if (!code) throw new NotInterruptible('it has no code');

  const fuel = counts.globals;
  const table = counts.tables;
  const type = counts.types;
  const ins = check(fuel, type, table);
  const added: Record<number, Uint8Array> = {
    1: withAppended(types?.payload, [0x60, 0x00, 0x00]),
    4: withAppended(tables?.payload, [0x70, 0x01, 0x01, 0x01]),
    6: withAppended(globals?.payload, [0x7f, 0x01, 0x41, ...sleb(FUEL), 0x0b]),
    7: withAppended(exports?.payload, [...leb(FUEL_GLOBAL.length), ...Buffer.from(FUEL_GLOBAL), 0x03, ...leb(fuel), ...leb(TICK_TABLE.length), ...Buffer.from(TICK_TABLE), 0x01, ...leb(table)], 2),
    10: fuelCode(code.payload, ins),
  };
  for (const id of [1, 4, 6, 7, 10]) {
    const s = find(id);
    if (s) s.payload = added[id];
    else {
      const at = sections.findIndex((x) => x.id !== 0 && ORDER[x.id] > ORDER[id]);
      sections.splice(at < 0 ? sections.length : at, 0, { id, payload: added[id] });
    }
  }
  const parts: Uint8Array[] = [bytes.subarray(0, 8)];
  for (const s of sections) parts.push(Uint8Array.from([s.id, ...leb(s.payload.length)]), s.payload);
  return Buffer.concat(parts);
}

/** The code section with `ins` at each function's entry and after each loop header. */
function fuelCode(payload: Uint8Array, ins: number[]): Uint8Array {
  const r = new Reader(payload, 0, payload.length);
  const n = r.leb();
  const out: Uint8Array[] = [Uint8Array.from(leb(n))];
  const insBytes = Uint8Array.from(ins);
  for (let f = 0; f < n; f++) {
    const size = r.leb();
    const start = r.pos;
    const end = start + size;
    if (end > payload.length) throw new WasmFormatError(`function ${f} runs past the end of the code section`);
    const body = new Reader(payload, start, end);
    for (let groups = body.leb(); groups > 0; groups--) {
      body.leb();
      valtype(body);
    }
    const entry = body.pos;
    const cuts: number[] = [];
    // A function that calls nothing and has no loop ends within its own length: no check at its entry.
    if (walk(body, (pos) => cuts.push(pos))) cuts.unshift(entry);
    if (body.pos !== end) throw new WasmFormatError(`function ${f}'s body does not end where its size says`);
    const pieces: Uint8Array[] = [];
    let from = start;
    for (const at of cuts) {
      pieces.push(payload.subarray(from, at), insBytes);
      from = at;
    }
    pieces.push(payload.subarray(from, end));
    const bodySize = size + cuts.length * ins.length;
    out.push(Uint8Array.from(leb(bodySize)), ...pieces);
    r.pos = end;
  }
  return Buffer.concat(out);
}
