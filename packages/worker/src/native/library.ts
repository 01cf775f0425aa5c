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
 */
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ABI_VERSION_MAJOR } from '@flexilib/plugin-abi';
import { FlexiError } from '../errors.js';
import { elfArchProblem, elfProblem } from './elf-check.js';
import { openPlugin, type HandleFn } from './ffi.js';
import { MAX_LIBRARY_BYTES, PluginFileError, readPluginFile } from '../plugin-file.js';

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

  constructor(readonly file: string, private readonly observer?: LibraryObserver) {}

  /** Load the library now. Throws FlexiError naming the cause; the current version stays. */
  load(): LoadedVersion {
    const reload = this.current !== null;
    try {
      const version = this.loadVersion();
      this.observer?.(this.file, reload ? 'reloaded' : 'loaded');
      return version;
    } catch (err) {
      this.observer?.(this.file, reload ? 'reload-failed' : 'load-failed');
      throw err;
    }
  }

  private loadVersion(): LoadedVersion {
    const { data, mtimeMs } = readLibraryFile(this.file);
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
    const fail = (code: 'FLX_LIB_NO_HANDLER' | 'FLX_LIB_ABI' | 'FLX_LIB_INIT', msg: string): never => {
      syms.unload();
      throw new FlexiError(code, msg);
    };
    if (syms.abiVersion === undefined) {
      fail('FLX_LIB_ABI', `library ${this.file} does not export flexi_abi_version: build it against flexilib.h (ABI ${ABI_VERSION_MAJOR}.x)`);
    }
    const major = syms.abiVersion! >>> 16;
    if (major !== ABI_VERSION_MAJOR) {
      fail('FLX_LIB_ABI', `library ${this.file} was built for plugin ABI ${major}.${syms.abiVersion! & 0xffff}; this host speaks ABI ${ABI_VERSION_MAJOR}.x: rebuild it against this flexilib.h`);
    }
    if (!syms.handleRequest) fail('FLX_LIB_NO_HANDLER', `library ${this.file} does not export handle_request`);
    if (syms.init) {
      const rc = syms.init();
      if (rc !== 0) fail('FLX_LIB_INIT', `library ${this.file}: flexi_init returned ${rc}`);
    }
    const version = new LoadedVersion(syms.handleRequest!, syms.requestDeinit, syms.deinit, syms.unload, mtimeMs);
    this.swap(version);
    this.loads++;
    this.lastError = null;
    return version;
  }

  /** The version to call now, loading on first use. Throws when it cannot load. */
  acquire(): LoadedVersion {
    if (this.current) return this.current;
    try {
      return this.load();
    } catch (err) {
      this.lastError = err as FlexiError;
      throw err;
    }
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
function readLibraryFile(file: string): { data: Buffer; mtimeMs: number } {
  try {
    return readPluginFile(file, MAX_LIBRARY_BYTES);
  } catch (err) {
    if (err instanceof PluginFileError && err.problem === 'missing') throw new FlexiError('FLX_LIB_NOT_FOUND', `library not found: ${file}`);
    throw new FlexiError('FLX_LIB_LOAD', `cannot read library ${(err as Error).message}`);
  }
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

export type LibraryEvent = 'loaded' | 'reloaded' | 'load-failed' | 'reload-failed';
/** Told of every load attempt (metrics count them). */
export type LibraryObserver = (file: string, event: LibraryEvent) => void;

/** Libraries shared by every route that names the same file. */
export class LibraryRegistry {
  private readonly libs = new Map<string, Library>();
  constructor(private readonly observer?: LibraryObserver) {}
  /** The library of this file if some route uses it, without creating it. */
  peek(file: string): Library | undefined {
    return this.libs.get(file);
  }
  get(file: string): Library {
    let lib = this.libs.get(file);
    if (!lib) {
      lib = new Library(file, this.observer);
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
