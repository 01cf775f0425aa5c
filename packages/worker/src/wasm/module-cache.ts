/**
 * Compiled modules of a worker process, by file and memory cap. Compiling
 * happens once per file version: a cold start (new instance) reuses the
 * compiled module, checking only the file's mtime and size, so a module
 * replaced on disk is picked up at the next cold start even without a reload
 * message, and a reload message drops it at once.
 */
import { readFile, stat } from 'node:fs/promises';
import { FlexiError } from '@flexilib/contract';
import { compileModule, type CompiledModule } from './module-check.js';

interface Entry {
  file: string;
  mtimeMs: number;
  size: number;
  compiled: Promise<CompiledModule>;
}

export class ModuleCache {
  private readonly entries = new Map<string, Entry>();

  /** The compiled module for `file` with its memory capped at `capBytes`. Rejects with FlexiError. */
  async get(file: string, capBytes: number, label: string): Promise<CompiledModule> {
    let st;
    try {
      st = await stat(file);
    } catch {
      throw new FlexiError('FLX_WASM_NOT_FOUND', `${label}: file not found: ${file}`);
    }
    const key = `${capBytes}|${file}`;
    const e = this.entries.get(key);
    if (e && e.mtimeMs === st.mtimeMs && e.size === st.size) return e.compiled;
    const compiled = readFile(file).then(
      (bytes) => compileModule(bytes, capBytes, label),
      (err: Error) => {
        throw new FlexiError('FLX_WASM_NOT_FOUND', `${label}: cannot read ${file}: ${err.message}`);
      },
    );
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
