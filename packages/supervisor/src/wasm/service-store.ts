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
import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { WasmLimits } from '@flexilib/contract';
import { readStateList, writeAtomic, writeStateList } from '../state-list.js';

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

export class ServiceStore {
  readonly file: string;
  readonly modulesDir: string;

  constructor(readonly dir: string) {
    this.file = path.join(dir, 'services.json');
    this.modulesDir = path.join(dir, 'modules');
  }

  /** The persisted services ([] when none were ever registered). Throws naming the file when it is corrupt. */
  load(): StoredService[] {
    return readStateList<StoredService>(this.file, 'services', 'WASM services', 'FLX_SERVICE_STATE');
  }

  save(services: StoredService[]): void {
    writeStateList(this.file, 'services', services);
  }

  /** Store module bytes under their hash (a no-op when already stored). */
  putModule(bytes: Uint8Array): { module: string; sha256: string } {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const module = `${sha256}.wasm`;
    const file = this.modulePath(module);
    if (!existsSync(file)) writeAtomic(file, bytes);
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
}
