/**
 * Just enough of the WebAssembly binary format to enforce a memory cap.
 *
 * A module built by zig cc defines its own memory with a minimum and no
 * maximum, and the host cannot change a defined memory's limits after
 * compilation. So before compiling, the memory section is rewritten to carry
 * maximum = cap (in 64 KiB pages): memory.grow beyond it fails inside the
 * module (malloc returns NULL) and the sandbox holds. A module that imports
 * its memory instead gets a WebAssembly.Memory with that maximum.
 *
 *   module  := magic version section*
 *   section := id:u8 size:u32leb payload
 *   memsec  := count:leb (flags:u8 min:leb [max:leb])*     flags bit0 = has max
 */

export interface MemoryLimits {
  /** Initial size, pages. */
  min: number;
  /** Maximum, pages, when declared. */
  max?: number;
  shared: boolean;
  memory64: boolean;
}

export interface MemoryPlan {
  /** The module bytes with the memory maximum capped (the input when nothing changed). */
  bytes: Uint8Array;
  /** The memory the module defines, or imports (then the host must supply it). */
  memory?: MemoryLimits & { imported: boolean };
}

export class WasmFormatError extends Error {}

/** Reads the binary format: bytes, LEB128 numbers and names, up to `end` (fuel.ts reads function bodies with it too). */
export class Reader {
  pos: number;
  constructor(readonly b: Uint8Array, pos = 0, readonly end = b.length) {
    this.pos = pos;
  }
  byte(): number {
    if (this.pos >= this.end) throw new WasmFormatError('unexpected end of module');
    return this.b[this.pos++];
  }
  leb(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      const x = this.byte();
      result += (x & 0x7f) * mul;
      if ((x & 0x80) === 0) return result;
      mul *= 128;
    }
    throw new WasmFormatError('malformed LEB128 number');
  }
  /** Skip a signed LEB128 of at most `bits` bits. */
  sleb(bits: number): void {
    const max = Math.ceil(bits / 7);
    for (let i = 0; i < max; i++) if ((this.byte() & 0x80) === 0) return;
    throw new WasmFormatError('malformed LEB128 number');
  }
  skip(n: number): void {
    if (this.pos + n > this.end) throw new WasmFormatError('unexpected end of module');
    this.pos += n;
  }
  name(): string {
    const n = this.leb();
    const at = this.pos;
    this.skip(n);
    return Buffer.from(this.b.buffer, this.b.byteOffset + at, n).toString('utf8');
  }
  limits(): MemoryLimits {
    const flags = this.byte();
    const min = this.leb();
    const max = flags & 1 ? this.leb() : undefined;
    return { min, max, shared: (flags & 2) !== 0, memory64: (flags & 4) !== 0 };
  }
}

export function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

function encodeLimits(l: MemoryLimits): number[] {
  const flags = 1 | (l.shared ? 2 : 0) | (l.memory64 ? 4 : 0);
  return [flags, ...leb(l.min), ...leb(l.max!)];
}

/** Skip one import's descriptor (after module and field names). */
function skipImportDesc(r: Reader, kind: number): MemoryLimits | undefined {
  switch (kind) {
    case 0: // function: type index
      r.leb();
      return undefined;
    case 1: // table: reftype + limits
      r.byte();
      r.limits();
      return undefined;
    case 2: // memory
      return r.limits();
    case 3: // global: valtype + mutability
      r.byte();
      r.byte();
      return undefined;
    case 4: // tag: attribute + type index
      r.byte();
      r.leb();
      return undefined;
    default:
      throw new WasmFormatError(`unknown import kind ${kind}`);
  }
}

/**
 * Find the module's memory and cap its maximum at `capPages`. Throws
 * WasmFormatError on a module too malformed to read (compile it to get the
 * engine's own message).
 */
export function capMemory(bytes: Uint8Array, capPages: number): MemoryPlan {
  const r = new Reader(bytes);
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new WasmFormatError('not a WebAssembly module (no \\0asm magic)');
  }
  r.pos = 8;
  while (r.pos < bytes.length) {
    const idStart = r.pos;
    const id = r.byte();
    const size = r.leb();
    const payloadStart = r.pos;
    if (payloadStart + size > bytes.length) throw new WasmFormatError(`section ${id} runs past the end of the module`);
    if (id === 2) {
      // Import section: an imported memory is supplied by the host, capped there.
      const s = new Reader(bytes, payloadStart);
      const count = s.leb();
      for (let i = 0; i < count; i++) {
        s.skip(s.leb());
        s.skip(s.leb());
        const kind = s.byte();
        const mem = skipImportDesc(s, kind);
        if (mem) return { bytes, memory: { ...mem, imported: true } };
      }
    } else if (id === 5) {
      const s = new Reader(bytes, payloadStart);
      const count = s.leb();
      if (count === 0) return { bytes };
      const mem = s.limits();
      const rest = bytes.subarray(s.pos, payloadStart + size);
      const capped = { ...mem, max: Math.min(mem.max ?? capPages, capPages) };
      if (mem.max === capped.max || mem.memory64 || mem.min > capPages) return { bytes, memory: { ...mem, imported: false } };
      const payload = [...leb(count), ...encodeLimits(capped)];
      const section = [5, ...leb(payload.length + rest.length), ...payload];
      const out = new Uint8Array(idStart + section.length + rest.length + (bytes.length - payloadStart - size));
      out.set(bytes.subarray(0, idStart), 0);
      out.set(section, idStart);
      out.set(rest, idStart + section.length);
      out.set(bytes.subarray(payloadStart + size), idStart + section.length + rest.length);
      return { bytes: out, memory: { ...capped, imported: false } };
    }
    r.pos = payloadStart + size;
  }
  return { bytes };
}
