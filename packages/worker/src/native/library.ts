/**
 * One plugin library file and its loaded versions.
 *
 *   configured path ──copy──> private file ──dlopen──> Loaded version ──unlink private file
 *
 * The watched path itself is never dlopen'ed: a mapped file overwritten in
 * place (`cp new.so lib.so`) would crash every process that maps it. Each
 * version is dlopen'ed from its own private copy, which is unlinked at once
 * (the mapping keeps it alive), so a reload never touches the running code,
 * and a crash leaves no temp files behind.
 *
 * A version is retired on reload and unloaded once its calls in flight end.
 * Under a supervisor the bytes come from its verified copy (verified-copy.ts).
 *
 * A failed load is not retried on every request: requests answer the same
 * error until the file changes (fileChanged()) or a backoff passes.
 */
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FlexiError, type ErrorCode } from '@flexilib/contract';
import { elfArchProblem, elfProblem } from './elf-check.js';
import { openPlugin, type HandleFn } from './ffi.js';
import { chooseInterface, flexiLibCall, type PluginAbi } from './flexilib-interface.js';
import { MAX_LIBRARY_BYTES, PluginFileError, readPluginFile } from '../plugin-file.js';
import { librarySource } from './verified-copy.js';

/** Retry a failed load after 1 s, 2 s, 4 s ... at most this long, unless the file changes first. */
const MAX_RETRY_MS = 30_000;

let privateDir: string | undefined;

/**
 * Put the private copies in `dir` (created on first use) instead of a temp
 * folder of this process. Workers use a folder in the supervisor's run folder:
 * a worker that crashes cannot remove its own folder, the supervisor can.
 */
export function setPrivateCopyDir(dir: string): void {
  privateDir = undefined;
  configuredDir = dir;
}
let configuredDir: string | undefined;
let copyCounter = 0;

/** Write `data` (the library's bytes, already checked) to a private file for dlopen. */
function privateCopy(file: string, data: Buffer): string {
  // Without a run folder (flexilib invoke, tests), each copy gets a temp folder
  // of its own, removed with the copy right after dlopen: nothing is left behind
  // even when the process is killed.
  const dir = configuredDir ?? mkdtempSync(path.join(os.tmpdir(), `flexilib-${process.pid}-`));
  if (configuredDir && !privateDir) {
    mkdirSync(configuredDir, { recursive: true });
    privateDir = configuredDir;
    const made = configuredDir;
    process.once('exit', () => rmSync(made, { recursive: true, force: true }));
  }
  const dest = path.join(dir, `${copyCounter++}-${path.basename(file)}`);
  writeFileSync(dest, data);
  return dest;
}

/** A dlopen'ed version of a library. */
export class LoadedVersion {
  inflight = 0;
  retired = false;
  private unloaded = false;
  constructor(
    readonly handleRequest: HandleFn,
    readonly requestDeinit: (() => void) | undefined,
    private readonly deinit: (() => void) | undefined,
    private readonly unloadFn: () => void,
    readonly mtimeMs: number,
    /** The interface it is called through (flexilib-interface.ts). */
    readonly abi: PluginAbi = 'v1',
  ) {}

  /** Unload once retired and idle. */
  release(): void {
    if (!this.retired || this.inflight > 0 || this.unloaded) return;
    this.unloaded = true;
    try {
      this.deinit?.();
    } finally {
      this.unloadFn();
    }
  }
}

export class Library {
  current: LoadedVersion | null = null;
  /** The last load failure, kept to answer requests until a retry succeeds. */
  lastError: FlexiError | null = null;
  loads = 0;
  /** Load attempts, failed or not (a caller compares it to know whether a failure is news). */
  attempts = 0;
  private failures = 0;
  private retryAt = 0;

  /** `abi`: the interface forced by the route's `abi =`; undefined detects it per load. */
  constructor(readonly file: string, private readonly observer?: LibraryObserver, readonly abi?: PluginAbi) {}

  /** Load the library now. Throws FlexiError naming the cause; the current version stays. */
  load(): LoadedVersion {
    const reload = this.current !== null;
    try {
      const version = this.loadVersion();
      this.observer?.(this.file, reload ? 'reloaded' : 'loaded', version.abi);
      return version;
    } catch (err) {
      this.observer?.(this.file, reload ? 'reload-failed' : 'load-failed');
      throw err;
    }
  }

  private loadVersion(): LoadedVersion {
    this.attempts++;
    const { data, mtimeMs } = readLibraryFile(librarySource(this.file), this.file);
    // The bytes checked are the bytes loaded: the file may change again meanwhile.
    const problem = elfProblem(data);
    if (problem) throw new FlexiError('FLX_LIB_INCOMPLETE', `library ${this.file} cannot be loaded: ${problem}`);
    const arch = elfArchProblem(data);
    if (arch) throw new FlexiError('FLX_LIB_WRONG_ARCH', `library ${this.file} cannot be loaded: ${arch}`);
    let copy: string;
    try {
      copy = privateCopy(this.file, data);
    } catch (err) {
      throw new FlexiError('FLX_LIB_LOAD', `cannot copy library ${this.file}: ${(err as Error).message}`);
    }
    let syms: ReturnType<typeof openPlugin>;
    try {
      syms = openPlugin(copy);
    } catch (err) {
      throw new FlexiError('FLX_LIB_LOAD', `cannot load library ${this.file}: ${oneLine((err as Error).message)}`);
    } finally {
      try { unlinkSync(copy); } catch { /* already gone */ }
      if (!configuredDir) rmSync(path.dirname(copy), { recursive: true, force: true });
    }
    let unload = syms.unload;
    const fail = (code: ErrorCode, msg: string): never => {
      unload();
      throw new FlexiError(code, msg);
    };
    const chosen = chooseInterface(syms, this.file, this.abi);
    if ('code' in chosen) fail(chosen.code, chosen.message);
    const abi = (chosen as { abi: PluginAbi }).abi;
    if (!syms.handleRequest) fail('FLX_LIB_NO_HANDLER', `library ${this.file} does not export handle_request`);
    let handleRequest = syms.handleRequest!;
    if (abi === 'flexilib') {
      try {
        ({ handleRequest, unload } = flexiLibCall(syms, this.file, syms.unload));
      } catch (err) {
        fail((err as FlexiError).code, (err as FlexiError).message);
      }
    }
    if (syms.init) {
      const rc = syms.init();
      if (rc !== 0) fail('FLX_LIB_INIT', `library ${this.file}: flexi_init returned ${rc}`);
    }
    const requestDeinit = abi === 'flexilib' ? undefined : syms.requestDeinit;
    const version = new LoadedVersion(handleRequest, requestDeinit, syms.deinit, unload, mtimeMs, abi);
    this.swap(version);
    this.loads++;
    this.lastError = null;
    this.failures = 0;
    return version;
  }

  /** The version to call now, loading on first use. Throws when it cannot load:
   * the last failure again, without trying, until the file changes or the backoff passes. */
  acquire(): LoadedVersion {
    if (this.current) return this.current;
    if (this.lastError && Date.now() < this.retryAt) throw this.lastError;
    try {
      return this.load();
    } catch (err) {
      this.lastError = err as FlexiError;
      this.retryAt = Date.now() + Math.min(MAX_RETRY_MS, 1000 * 2 ** this.failures++);
      throw err;
    }
  }

  /** The file changed (a new complete version): the next request tries it again. */
  fileChanged(): void {
    this.retryAt = 0;
    this.failures = 0;
  }

  private swap(next: LoadedVersion | null): void {
    const old = this.current;
    this.current = next;
    if (old) {
      old.retired = true;
      old.release();
    }
  }

  /** Retire every version (shutdown or the library left the config). */
  close(): void {
    this.swap(null);
  }
}

/** The library's bytes: a regular file within MAX_LIBRARY_BYTES (never /dev/zero, a FIFO, ...). */
/** Read `source` (the verified copy, or the configured file); errors name the configured `file`. */
function readLibraryFile(source: string, file: string): { data: Buffer; mtimeMs: number } {
  try {
    return readPluginFile(source, MAX_LIBRARY_BYTES);
  } catch (err) {
    if (err instanceof PluginFileError && err.problem === 'missing') throw new FlexiError('FLX_LIB_NOT_FOUND', `library not found: ${file}`);
    throw new FlexiError('FLX_LIB_LOAD', `cannot read library ${(err as Error).message}`);
  }
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

export type LibraryEvent = 'loaded' | 'reloaded' | 'load-failed' | 'reload-failed';
/** Told of every load attempt (metrics count them), with the interface of a successful one. */
export type LibraryObserver = (file: string, event: LibraryEvent, abi?: PluginAbi) => void;

/** Libraries shared by every route that names the same file. */
export class LibraryRegistry {
  private readonly libs = new Map<string, Library>();
  constructor(private readonly observer?: LibraryObserver) {}
  /** The library of this file if some route uses it, without creating it. */
  peek(file: string): Library | undefined {
    return this.libs.get(file);
  }
  /** The library of `file`, made anew when the interface its routes force changed. */
  get(file: string, abi?: PluginAbi): Library {
    let lib = this.libs.get(file);
    if (lib && lib.abi !== abi) {
      lib.close();
      lib = undefined;
    }
    if (!lib) {
      lib = new Library(file, this.observer, abi);
      this.libs.set(file, lib);
    }
    return lib;
  }
  all(): IterableIterator<Library> {
    return this.libs.values();
  }
  /** Drop libraries no route uses any more. */
  retain(files: Set<string>): void {
    for (const [file, lib] of this.libs) {
      if (!files.has(file)) {
        lib.close();
        this.libs.delete(file);
      }
    }
  }
}
