/**
 * The only module that touches koffi. Everything native — loading plugins,
 * native memory for the request and response structs, and libc's free for the
 * overflow blocks plugins take from malloc — goes through here.
 */
import { closeSync, fstatSync, ftruncateSync, openSync } from 'node:fs';
import koffi, { type LibraryHandle } from 'koffi';

// Async (threaded-route) calls get 1 MiB of stack like a typical thread pool,
// not koffi's 128 KiB default, since plugins are ordinary C code. Must be set
// before the first library is loaded.
koffi.config({ ...koffi.config(), async_stack_size: 1 << 20 });

const libc = koffi.load('libc.so.6');
const cFree = libc.func('void free(void *ptr)');
const cMemcpy = libc.func('void *memcpy(void *dst, void *src, size_t n)');

export type Pointer = bigint;

/** A block of native memory with a Buffer over it (no copy). */
export interface NativeBlock {
  ptr: Pointer;
  /** The address as a number (exact: user-space addresses are below 2^47). */
  addr: number;
  buf: Buffer;
  size: number;
}

export function allocBlock(size: number): NativeBlock {
  const ptr = koffi.alloc('uint8', size) as Pointer;
  const buf = Buffer.from(koffi.view(ptr, size));
  buf.fill(0);
  return { ptr, addr: Number(ptr), buf, size };
}

export function freeBlock(block: NativeBlock): void {
  koffi.free(block.ptr);
}

/**
 * Copy len bytes of native memory at addr into dest (a JS Buffer, written in
 * place by memcpy). Used for memory outside our own blocks — plugin overflow
 * blocks — instead of koffi.view, which leaks ~200 bytes per view in koffi 3.
 */
export function copyFromNative(addr: number, dest: Buffer, len: number): void {
  if (len > dest.length) throw new RangeError(`copyFromNative: ${len} bytes into a ${dest.length}-byte buffer`);
  cMemcpy(dest, BigInt(addr), len);
}

/** free(3) on memory a plugin took from malloc. */
export function freeAt(addr: number): void {
  cFree(BigInt(addr));
}

export type HandleFn = ((req: Pointer, resp: Pointer) => number) & {
  async: (req: Pointer, resp: Pointer, cb: (err: unknown, rc: number) => void) => void;
};

/** A dlopen'ed plugin and its exports. */
export interface PluginSymbols {
  handleRequest: HandleFn;
  /** flexi_abi_version, or undefined when the plugin does not export it. */
  abiVersion: number | undefined;
  init?: () => number;
  deinit?: () => void;
  requestDeinit?: () => void;
  unload(): void;
}

function optionalFunc<T>(lib: LibraryHandle, decl: string): T | undefined {
  try {
    return lib.func(decl) as unknown as T;
  } catch {
    return undefined;
  }
}

/** dlopen `file` and bind its exports. Throws koffi's error when dlopen fails;
 * handleRequest is undefined (not thrown) when the export is missing. */
export function openPlugin(file: string): Omit<PluginSymbols, 'handleRequest'> & { handleRequest?: HandleFn } {
  const lib = koffi.load(file);
  let abiVersion: number | undefined;
  try {
    abiVersion = koffi.decode(lib.symbol('flexi_abi_version'), 'uint32') as number;
  } catch {
    abiVersion = undefined;
  }
  return {
    handleRequest: optionalFunc<HandleFn>(lib, 'int handle_request(void *req, void *resp)'),
    abiVersion,
    init: optionalFunc(lib, 'int flexi_init(void)'),
    deinit: optionalFunc(lib, 'void flexi_deinit(void)'),
    requestDeinit: optionalFunc(lib, 'void request_deinit(void)'),
    unload: () => lib.unload(),
  };
}

const cMmap = libc.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off)');
const cMunmap = libc.func('int munmap(void *addr, size_t len)');
/** Live mappings by the ArrayBuffer over them, for unmapShared. */
const mappings = new WeakMap<ArrayBufferLike, { ptr: bigint; size: number }>();
const PROT_READ_WRITE = 3;
const MAP_SHARED = 1;
const MAP_FAILED = 0xffffffffffffffffn;

/**
 * Map `size` bytes of `file` (created or extended as needed) shared and
 * writable, returning a Buffer over the mapping. Writes land in the page cache
 * at once, so another process reading the file — the supervisor, even after
 * this process was killed — sees them with no IPC. The mapping lives as long
 * as the process.
 */
export function mapSharedFile(file: string, size: number): Buffer {
  const fd = openSync(file, 'a+');
  try {
    if (fstatSync(fd).size < size) ftruncateSync(fd, size);
    const ptr = cMmap(null, size, PROT_READ_WRITE, MAP_SHARED, fd, 0) as bigint;
    if (ptr === MAP_FAILED || ptr === 0n) throw new Error(`mmap of ${file} failed (errno ${koffi.errno()})`);
    const view = koffi.view(ptr, size);
    mappings.set(view, { ptr, size });
    return Buffer.from(view);
  } finally {
    closeSync(fd);
  }
}

/**
 * Unmap a buffer mapSharedFile returned. Every view over it must be dropped
 * first: touching one afterwards is a segmentation fault.
 */
export function unmapShared(buf: Buffer): void {
  const m = mappings.get(buf.buffer);
  if (!m) throw new Error('unmapShared: not a live mapSharedFile buffer');
  mappings.delete(buf.buffer);
  cMunmap(m.ptr, m.size);
}
