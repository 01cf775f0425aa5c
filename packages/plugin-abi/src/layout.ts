/**
 * The ABI's struct layouts, defined once. Offsets are computed from the field
 * list with the C rules (natural alignment, trailing padding) for a given
 * pointer size: 8 for the LP64 native host, 4 for wasm32 plugins, where
 * pointers and size_t are 32-bit. Tests compile flexilib.h and check every
 * offset and size against the C compiler's offsetof/sizeof for both targets
 * (cc for LP64, zig cc --target=wasm32-wasi for wasm32), so this file and the
 * header cannot drift apart.
 */

/** Major and minor version of the ABI this host speaks (see flexilib.h). */
export const ABI_VERSION_MAJOR = 1;
export const ABI_VERSION_MINOR = 0;
export const ABI_VERSION = (ABI_VERSION_MAJOR << 16) | ABI_VERSION_MINOR;

type FieldType = 'ptr' | 'size' | 'u8' | 'u16' | 'u32' | 'i32';

/** Bytes of a pointer (and size_t): 8 on LP64, 4 on wasm32. */
export type PointerSize = 4 | 8;

export interface StructLayout<F extends string> {
  name: string;
  size: number;
  align: number;
  offsets: Record<F, number>;
  fields: ReadonlyArray<readonly [F, FieldType]>;
}

function sizeOf(type: FieldType, ptrSize: PointerSize): number {
  switch (type) {
    case 'ptr':
    case 'size':
      return ptrSize;
    case 'u8':
      return 1;
    case 'u16':
      return 2;
    default:
      return 4;
  }
}

function layout<F extends string>(name: string, fields: ReadonlyArray<readonly [F, FieldType]>, ptrSize: PointerSize): StructLayout<F> {
  let off = 0;
  let align = 1;
  const offsets = {} as Record<F, number>;
  for (const [field, type] of fields) {
    // Every field type here is aligned to its own size on both targets.
    const size = sizeOf(type, ptrSize);
    off = Math.ceil(off / size) * size;
    offsets[field] = off;
    off += size;
    align = Math.max(align, size);
  }
  return { name, size: Math.ceil(off / align) * align, align, offsets, fields };
}

/* The field lists: the one definition both layouts come from. */
const HEADER_FIELDS = [
  ['name', 'ptr'], ['name_len', 'size'], ['value', 'ptr'], ['value_len', 'size'],
] as const;
const REQUEST_FIELDS = [
  ['method', 'ptr'], ['method_len', 'size'],
  ['target', 'ptr'], ['target_len', 'size'],
  ['headers', 'ptr'], ['headers_len', 'size'],
  ['body', 'ptr'], ['body_len', 'size'],
  ['remote_addr', 'ptr'], ['remote_addr_len', 'size'],
  ['remote_port', 'u16'], ['http_major', 'u8'], ['http_minor', 'u8'],
  ['host_abi_version', 'u32'],
] as const;
const RESP_HEADER_FIELDS = [
  ['next', 'ptr'], ['name', 'ptr'], ['name_len', 'size'], ['value', 'ptr'], ['value_len', 'size'],
] as const;
const HEAP_BLOCK_FIELDS = [['next', 'ptr'], ['size', 'size']] as const;
const RESPONSE_FIELDS = [
  ['status', 'i32'], ['flags', 'u32'],
  ['reason', 'ptr'], ['reason_len', 'size'],
  ['headers', 'ptr'], ['headers_tail', 'ptr'], ['headers_len', 'size'],
  ['body', 'ptr'], ['body_len', 'size'], ['body_cap', 'size'],
  ['arena', 'ptr'], ['arena_size', 'size'], ['arena_top', 'size'],
  ['heap', 'ptr'], ['heap_bytes', 'size'],
] as const;

/**
 * Every ABI struct laid out for one pointer size.
 *
 * @example
 * const wasm = layoutFor(4);
 * wasm.REQUEST.offsets.target;   // 8  (16 on LP64)
 * wasm.RESPONSE.size;            // 60 (112 on LP64)
 */
export function layoutFor(ptrSize: PointerSize) {
  const HEADER = layout('flexi_header', HEADER_FIELDS, ptrSize);
  const REQUEST = layout('flexi_request', REQUEST_FIELDS, ptrSize);
  const RESP_HEADER = layout('flexi_resp_header', RESP_HEADER_FIELDS, ptrSize);
  const HEAP_BLOCK = layout('flexi_heap_block', HEAP_BLOCK_FIELDS, ptrSize);
  const RESPONSE = layout('flexi_response', RESPONSE_FIELDS, ptrSize);
  return { ptrSize, HEADER, REQUEST, RESP_HEADER, HEAP_BLOCK, RESPONSE, STRUCTS: [HEADER, REQUEST, RESP_HEADER, HEAP_BLOCK, RESPONSE] as const };
}

export type AbiLayout = ReturnType<typeof layoutFor>;

/** The LP64 layout the native host uses. */
export const LP64: AbiLayout = layoutFor(8);
/** The wasm32 layout: structs as they sit in a WASM plugin's linear memory. */
export const WASM32: AbiLayout = layoutFor(4);

/** `flexi_header`: one request header (LP64). */
export const HEADER = LP64.HEADER;
/** `flexi_request` (LP64). */
export const REQUEST = LP64.REQUEST;
/** `flexi_resp_header`: a response header node in the arena (LP64). */
export const RESP_HEADER = LP64.RESP_HEADER;
/** `flexi_heap_block`: an overflow block chained on the response (LP64). */
export const HEAP_BLOCK = LP64.HEAP_BLOCK;
/** `struct flexi_response` (LP64). */
export const RESPONSE = LP64.RESPONSE;
/** Every struct (LP64), for the layout test and for tools. */
export const STRUCTS = LP64.STRUCTS;
