/**
 * Compiled modules of a worker process, by file and memory cap. Compiling
 * happens once per file version: a cold start (new instance) reuses the
 * compiled module, checking only the file's mtime and size, so a module
 * replaced on disk is picked up at the next cold start even without a reload
 * message, and a reload message drops it at once.
 */
import { stat } from 'node:fs/promises';
import { MAX_MODULE_BYTES, readPluginFile } from '../plugin-file.js';
import { FlexiError, type WasmRun } from '@flexilib/contract';
import { compileModule, type CompiledModule } from './module-check.js';

interface Entry {
  file: string;
  mtimeMs: number;
  size: number;
  compiled: Promise<CompiledModule>;
}

export class ModuleCache {
  private readonly entries = new Map<string, Entry>();

  /** The compiled module for `file` with its memory capped at `capBytes`, made interruptible unless `run` is thread. Rejects with FlexiError. */
  async get(file: string, capBytes: number, label: string, run: WasmRun): Promise<CompiledModule> {
    let st;
    try {
      st = await stat(file);
    } catch {
      throw new FlexiError('FLX_WASM_NOT_FOUND', `${label}: file not found: ${file}`);
    }
    const key = `${capBytes}|${run}|${file}`;
    const e = this.entries.get(key);
    if (e && e.mtimeMs === st.mtimeMs && e.size === st.size) return e.compiled;
    let bytes: Buffer;
    try {
      // A regular file within MAX_MODULE_BYTES: never /dev/zero, a FIFO, ...
      bytes = readPluginFile(file, MAX_MODULE_BYTES).data;
    } catch (err) {
      throw new FlexiError('FLX_WASM_NOT_FOUND', `${label}: cannot read ${(err as Error).message}`);
    }
    const compiled = compileModule(bytes, capBytes, label, run);
    this.entries.set(key, { file, mtimeMs: st.mtimeMs, size: st.size, compiled });
    return compiled;
  }

  /** Forget every compiled version of `file`. */
  invalidate(file: string): void {
    for (const [key, e] of this.entries) if (e.file === file) this.entries.delete(key);
  }

  /** Keep only the files still in use. */
  retain(files: Set<string>): void {
    for (const [key, e] of this.entries) if (!files.has(e.file)) this.entries.delete(key);
  }
}
