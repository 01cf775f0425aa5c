/**
 * The only module that touches koffi. Everything native — loading plugins,
 * native memory for the request and response structs, libc's free for the
 * overflow blocks plugins take from malloc, shared file mappings and the unix
 * datagram client of systemd notify — goes through here.
 */
import { closeSync, fstatSync, ftruncateSync, openSync } from 'node:fs';
import os from 'node:os';
import koffi, { type LibraryHandle } from 'koffi';

const libc = koffi.load('libc.so.6');
const cFree = libc.func('void free(void *ptr)');
const cMemcpy = libc.func('void *memcpy(void *dst, void *src, size_t n)');
// The fast lane's answers from native memory; node ignores SIGPIPE, so a gone peer is EPIPE.
const cWritev = libc.func('long writev(int fd, void *iov, int iovcnt)');

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

/**
 * writev(2) of `count` iovecs (16 bytes each: base, length) stored in native
 * memory at `iov`, to file descriptor `fd`. Returns the bytes written, or -1
 * (nothing written: the caller falls back to node's own write, which meets
 * the same condition and reports it). Lets the fast lane hand the kernel a
 * plugin's answer straight from native memory (native/held-body.ts).
 */
export function writevNative(fd: number, iov: Pointer, count: number): number {
  return Number(cWritev(fd, iov, count));
}

/** malloc_trim(3), bound on first use: glibc returns the free pages of its heaps to the system (memory-return.ts). */
let cMallocTrim: ((pad: number) => number) | null | undefined;
export function trimNativeHeap(): void {
  if (cMallocTrim === undefined) cMallocTrim = optionalFunc<(pad: number) => number>(libc, 'int malloc_trim(size_t pad)') ?? null;
  cMallocTrim?.(0);
}

/** free(3) on memory a plugin took from malloc. */
export function freeAt(addr: number): void {
  cFree(BigInt(addr));
}

/** What a thread of a threaded route calls (thread-ring.ts): `fn(req, resp)`, or `fn(plugin, req, resp)` when plugin is not 0n. */
export interface NativeTarget {
  fn: Pointer;
  plugin: Pointer;
}

/** handle_request, called on the event loop; `target` is the same call for a ring thread. */
export type HandleFn = ((req: Pointer, resp: Pointer) => number) & { target: NativeTarget };

/** A dlopen'ed plugin and its exports. */
export interface PluginSymbols {
  handleRequest: HandleFn;
  /** flexi_abi_version, or undefined when the plugin does not export it. */
  abiVersion: number | undefined;
  init?: () => number;
  deinit?: () => void;
  requestDeinit?: () => void;
  /** The address of an exported function, or undefined when not exported (FlexiLib's interface calls through them). */
  address(name: string): Pointer | undefined;
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
  const handleRequest = optionalFunc<HandleFn>(lib, 'int handle_request(void *req, void *resp)');
  if (handleRequest) handleRequest.target = { fn: koffi.address(lib.symbol('handle_request')), plugin: 0n };
  return {
    handleRequest,
    abiVersion,
    init: optionalFunc(lib, 'int flexi_init(void)'),
    deinit: optionalFunc(lib, 'void flexi_deinit(void)'),
    requestDeinit: optionalFunc(lib, 'void request_deinit(void)'),
    address: (name) => {
      try {
        const sym = lib.symbol(name);
        return sym ? koffi.address(sym) : undefined;
      } catch {
        return undefined;
      }
    },
    unload: () => lib.unload(),
  };
}

/** `int flexilib_adapter_call(plugin, req, resp)`: FlexiLib's interface behind a v1 call (native/flexilib-interface.ts). */
export type AdapterCallFn = ((plugin: Pointer, req: Pointer, resp: Pointer) => number) & { address: Pointer };

/** dlopen the FlexiLib adapter (built from zig/flexilib-adapter.zig); throws koffi's error when it cannot. */
export function openFlexiLibAdapter(file: string): AdapterCallFn {
  const lib = koffi.load(file);
  const call = lib.func('int flexilib_adapter_call(void *plugin, void *req, void *resp)') as unknown as AdapterCallFn;
  call.address = koffi.address(lib.symbol('flexilib_adapter_call'));
  return call;
}

/** The thread ring helper's exports (c/thread-ring.c; its logic is thread-ring.ts's). */
export interface ThreadRingHelper {
  /** A ring of `capacity` call descriptors, or 0n when out of memory or pipes. */
  open(capacity: number): Pointer;
  /** Start one more of the ring's threads; 0 or an errno. */
  addThread(ring: Pointer, stackBytes: number): number;
  /** Wake one idle thread. */
  wake(ring: Pointer): void;
  close(ring: Pointer): void;
  /** A Buffer over the ring's `size` bytes of shared memory (made once per ring). */
  view(ring: Pointer, size: number): Buffer;
}

/** dlopen the thread ring helper (dist/native/thread-ring.so); throws koffi's error when it cannot. */
export function openThreadRingHelper(file: string): ThreadRingHelper {
  const lib = koffi.load(file);
  const open = lib.func('void *flexi_ring_open(int32_t capacity)');
  const addThread = lib.func('int32_t flexi_ring_add_thread(void *ring, int32_t stack)');
  const wake = lib.func('void flexi_ring_wake(void *ring)');
  const close = lib.func('void flexi_ring_close(void *ring)');
  return {
    open: (capacity) => (open(capacity) as Pointer | null) ?? 0n,
    addThread: (ring, stack) => addThread(ring, stack) as number,
    wake: (ring) => wake(ring),
    close: (ring) => close(ring),
    view: (ring, size) => Buffer.from(koffi.view(ring, size)),
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

const cSocket = libc.func('int socket(int domain, int type, int protocol)');
const cSendto = libc.func('long sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)');
const cClose = libc.func('int close(int fd)');
const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_NOSIGNAL = 0x4000;
/** sizeof(struct sockaddr_un): sa_family_t then char sun_path[108]. */
const SOCKADDR_UN_SIZE = 110;
const SUN_PATH_MAX = 108;

function errnoName(n: number): string {
  const hit = Object.entries(os.constants.errno).find(([, v]) => v === n);
  return hit ? hit[0] : `errno ${n}`;
}

/**
 * Send one datagram to a unix datagram socket (Node has no unix dgram client).
 * `socketPath` is a filesystem path, or an abstract socket name written with a
 * leading '@' (as systemd's NOTIFY_SOCKET does). Throws an Error whose `code`
 * is the errno name (ENOENT, ECONNREFUSED, ...) when the send fails.
 *
 * @example sendUnixDatagram(process.env.NOTIFY_SOCKET!, 'READY=1\n')
 */
export function sendUnixDatagram(socketPath: string, message: string | Uint8Array): void {
  const abstract = socketPath.startsWith('@');
  const name = Buffer.from(abstract ? socketPath.slice(1) : socketPath);
  // A path needs its terminating NUL inside sun_path; an abstract name starts with a NUL.
  if (name.length + 1 > SUN_PATH_MAX) throw new Error(`unix socket path too long (${name.length} bytes, at most ${SUN_PATH_MAX - 1}): ${socketPath}`);
  const addr = Buffer.alloc(SOCKADDR_UN_SIZE);
  if (os.endianness() === 'LE') addr.writeUInt16LE(AF_UNIX, 0);
  else addr.writeUInt16BE(AF_UNIX, 0);
  let addrLen: number;
  if (abstract) {
    name.copy(addr, 3); // sun_path[0] = 0
    addrLen = 3 + name.length;
  } else {
    name.copy(addr, 2);
    addrLen = 2 + name.length + 1;
  }
  const data = typeof message === 'string' ? Buffer.from(message) : message;
  const fd = cSocket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0) as number;
  if (fd < 0) throw errnoError('socket(AF_UNIX, SOCK_DGRAM)', socketPath);
  try {
    const n = Number(cSendto(fd, data, data.length, MSG_NOSIGNAL, addr, addrLen));
    if (n < 0) throw errnoError('sendto', socketPath);
  } finally {
    cClose(fd);
  }
}

function errnoError(call: string, socketPath: string): Error {
  const code = errnoName(koffi.errno());
  return Object.assign(new Error(`${call} to ${socketPath} failed: ${code}`), { code });
}
