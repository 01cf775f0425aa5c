/**
 * The ABI's struct layouts, defined once. Offsets are computed from the field
 * list with the C rules for LP64 (natural alignment, trailing padding), and a
 * test compiles flexilib.h and checks every offset and size against the C
 * compiler's offsetof/sizeof, so this file and the header cannot drift apart.
 */

/** Major and minor version of the ABI this host speaks (see flexilib.h). */
export const ABI_VERSION_MAJOR = 1;
export const ABI_VERSION_MINOR = 0;
export const ABI_VERSION = (ABI_VERSION_MAJOR << 16) | ABI_VERSION_MINOR;

type FieldType = 'ptr' | 'size' | 'u8' | 'u16' | 'u32' | 'i32';
const SIZES: Record<FieldType, number> = { ptr: 8, size: 8, u8: 1, u16: 2, u32: 4, i32: 4 };

export interface StructLayout<F extends string> {
  name: string;
  size: number;
  align: number;
  offsets: Record<F, number>;
  fields: ReadonlyArray<readonly [F, FieldType]>;
}

function layout<F extends string>(name: string, fields: ReadonlyArray<readonly [F, FieldType]>): StructLayout<F> {
  let off = 0;
  let align = 1;
  const offsets = {} as Record<F, number>;
  for (const [field, type] of fields) {
    const size = SIZES[type];
    off = Math.ceil(off / size) * size;
    offsets[field] = off;
    off += size;
    align = Math.max(align, size);
  }
  return { name, size: Math.ceil(off / align) * align, align, offsets, fields };
}

/** `flexi_header`: one request header. */
export const HEADER = layout('flexi_header', [
  ['name', 'ptr'], ['name_len', 'size'], ['value', 'ptr'], ['value_len', 'size'],
] as const);

/** `flexi_request`. */
export const REQUEST = layout('flexi_request', [
  ['method', 'ptr'], ['method_len', 'size'],
  ['target', 'ptr'], ['target_len', 'size'],
  ['headers', 'ptr'], ['headers_len', 'size'],
  ['body', 'ptr'], ['body_len', 'size'],
  ['remote_addr', 'ptr'], ['remote_addr_len', 'size'],
  ['remote_port', 'u16'], ['http_major', 'u8'], ['http_minor', 'u8'],
  ['host_abi_version', 'u32'],
] as const);

/** `flexi_resp_header`: a response header node in the arena. */
export const RESP_HEADER = layout('flexi_resp_header', [
  ['next', 'ptr'], ['name', 'ptr'], ['name_len', 'size'], ['value', 'ptr'], ['value_len', 'size'],
] as const);

/** `flexi_heap_block`: an overflow block chained on the response. */
export const HEAP_BLOCK = layout('flexi_heap_block', [['next', 'ptr'], ['size', 'size']] as const);

/** `struct flexi_response`. */
export const RESPONSE = layout('flexi_response', [
  ['status', 'i32'], ['flags', 'u32'],
  ['reason', 'ptr'], ['reason_len', 'size'],
  ['headers', 'ptr'], ['headers_tail', 'ptr'], ['headers_len', 'size'],
  ['body', 'ptr'], ['body_len', 'size'], ['body_cap', 'size'],
  ['arena', 'ptr'], ['arena_size', 'size'], ['arena_top', 'size'],
  ['heap', 'ptr'], ['heap_bytes', 'size'],
] as const);

/** Every struct, for the layout test and for tools. */
export const STRUCTS = [HEADER, REQUEST, RESP_HEADER, HEAP_BLOCK, RESPONSE] as const;
