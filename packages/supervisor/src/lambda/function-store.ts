/**
 * Where functions created on the admin API (CreateFunction) persist, behind a
 * small interface so another backend (a cluster's shared store) can replace
 * the file one:
 *
 *   <config dir>/.flexilib/lambda/
 *     functions.json       {"version":1,"functions":[...]}   (temp file + rename)
 *     code/<sha256>/       the unzipped package, named by its hash (never rewritten)
 *
 * A package's folder is named by the zip's hash, so UpdateFunctionCode makes
 * a new folder and the function's environments are replaced (their task root
 * changed) while running ones finish on the old files.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { readStateList, writeStateList } from '../state-list.js';

/** A created function as persisted (AWS's own field names where they exist). */
export interface StoredFunction {
  FunctionName: string;
  Runtime: string;
  Handler: string;
  Timeout: number;
  MemorySize: number;
  Description: string;
  Role: string;
  Variables: Record<string, string>;
  /** Hex sha256 of the zip: its folder under code/. */
  sha256: string;
  CodeSize: number;
  LastModified: string;
}

export interface FunctionStore {
  /** Every persisted function ([] when none). */
  load(): StoredFunction[];
  save(functions: StoredFunction[]): void;
  /** Unzip a package (once per content) and return its hash and folder. Throws ZipError when it is not a usable zip. */
  putCode(zip: Uint8Array): { sha256: string; dir: string };
  codeDir(sha256: string): string;
  /** The package of this hash is unpacked here already. */
  hasCode(sha256: string): boolean;
  /** Remove code folders no listed function uses. */
  prune(functions: StoredFunction[]): void;
}

export class ZipError extends Error {}

export class FileFunctionStore implements FunctionStore {
  readonly file: string;
  readonly codeRoot: string;

  constructor(readonly dir: string) {
    this.file = path.join(dir, 'functions.json');
    this.codeRoot = path.join(dir, 'code');
  }

  load(): StoredFunction[] {
    return readStateList<StoredFunction>(this.file, 'functions', 'Lambda functions', 'FLX_LAMBDA_STATE');
  }

  save(functions: StoredFunction[]): void {
    writeStateList(this.file, 'functions', functions);
  }

  putCode(zip: Uint8Array): { sha256: string; dir: string } {
    const sha256 = createHash('sha256').update(zip).digest('hex');
    const dir = this.codeDir(sha256);
    if (existsSync(dir)) return { sha256, dir };
    let files: Record<string, Uint8Array>;
    try {
      // fflate is loaded by the first upload, not by every supervisor.
      files = (createRequire(import.meta.url)('fflate') as typeof import('fflate')).unzipSync(zip);
    } catch (err) {
      throw new ZipError(`Code.ZipFile is not a valid zip archive: ${(err as Error).message}`);
    }
    const tmp = `${dir}.${process.pid}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    for (const [name, bytes] of Object.entries(files)) {
      const target = path.resolve(tmp, name);
      // Zip-slip: every entry stays inside the package's folder.
      if (!target.startsWith(tmp + path.sep)) {
        rmSync(tmp, { recursive: true, force: true });
        throw new ZipError(`Code.ZipFile entry "${name}" points outside the package`);
      }
      if (name.endsWith('/')) {
        mkdirSync(target, { recursive: true });
        continue;
      }
      mkdirSync(path.dirname(target), { recursive: true });
      writeFileSync(target, bytes);
      // fflate keeps no Unix modes: a custom runtime's bootstrap must be executable, as Lambda requires.
      if (path.basename(name) === 'bootstrap' || name.endsWith('.sh')) chmodSync(target, 0o755);
    }
    renameSync(tmp, dir);
    return { sha256, dir };
  }

  codeDir(sha256: string): string {
    return path.join(this.codeRoot, sha256);
  }

  hasCode(sha256: string): boolean {
    return existsSync(this.codeDir(sha256));
  }

  prune(functions: StoredFunction[]): void {
    const keep = new Set(functions.map((f) => f.sha256));
    let names: string[];
    try {
      names = readdirSync(this.codeRoot);
    } catch {
      return;
    }
    for (const name of names) if (!keep.has(name)) rmSync(path.join(this.codeRoot, name), { recursive: true, force: true });
  }
}
