/**
 * Where registered WASM services persist: a state folder beside the config.
 *
 *   <config dir>/.flexilib/
 *     services.json            {"version":1,"services":[...]}   (written to a temp file, then renamed)
 *     modules/<sha256>.wasm    module bytes, named by content    (idem; never rewritten)
 *
 * Naming modules by their hash means a worker reading a module file never
 * sees it change under it, and a re-registration with new bytes is a new file.
 * Every write is temp + rename, so a crash leaves the old or the new state,
 * never half of one.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { WasmLimits } from '@flexilib/contract';
import { FlexiError } from '@flexilib/contract';

/** One registered service as persisted. */
export interface StoredService {
  name: string;
  prefix: string;
  /** Module file name inside modules/. */
  module: string;
  sha256: string;
  bytes: number;
  limits: Partial<WasmLimits>;
  createdAt: string;
}

interface StateFile {
  version: 1;
  services: StoredService[];
}

export class ServiceStore {
  readonly file: string;
  readonly modulesDir: string;

  constructor(readonly dir: string) {
    this.file = path.join(dir, 'services.json');
    this.modulesDir = path.join(dir, 'modules');
  }

  /** The persisted services ([] when none were ever registered). Throws naming the file when it is corrupt. */
  load(): StoredService[] {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new FlexiError('FLX_SERVICE_STATE', `cannot read the WASM services state ${this.file}: ${(err as Error).message}`);
    }
    let state: StateFile;
    try {
      state = JSON.parse(text) as StateFile;
    } catch (err) {
      throw new FlexiError('FLX_SERVICE_STATE', `the WASM services state ${this.file} is not valid JSON (${(err as Error).message}): fix or remove it`);
    }
    if (state?.version !== 1 || !Array.isArray(state.services)) {
      throw new FlexiError('FLX_SERVICE_STATE', `the WASM services state ${this.file} has an unknown format (expected {"version":1,"services":[...]})`);
    }
    return state.services;
  }

  save(services: StoredService[]): void {
    const state: StateFile = { version: 1, services };
    this.writeAtomic(this.file, JSON.stringify(state, null, 2) + '\n');
  }

  /** Store module bytes under their hash (a no-op when already stored). */
  putModule(bytes: Uint8Array): { module: string; sha256: string } {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const module = `${sha256}.wasm`;
    const file = this.modulePath(module);
    if (!existsSync(file)) this.writeAtomic(file, bytes);
    return { module, sha256 };
  }

  modulePath(module: string): string {
    return path.join(this.modulesDir, module);
  }

  /** Remove module files no listed service uses. */
  pruneModules(services: StoredService[]): void {
    const keep = new Set(services.map((s) => s.module));
    let names: string[];
    try {
      names = readdirSync(this.modulesDir);
    } catch {
      return;
    }
    for (const name of names) {
      if (name.endsWith('.wasm') && !keep.has(name)) rmSync(path.join(this.modulesDir, name), { force: true });
    }
  }

  /** Write a temp file, flush it to disk, rename it over `file`. */
  private writeAtomic(file: string, data: string | Uint8Array): void {
    mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    const fd = openSync(tmp, 'w');
    try {
      for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  }
}
