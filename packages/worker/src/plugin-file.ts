/**
 * Reading a plugin file (a .so library or a .wasm module) safely: only a
 * regular file, never more than a size limit. A path may name anything —
 * /dev/zero (endless: the process grows until it dies), a FIFO (open blocks
 * forever waiting for a writer), a huge sparse file — so the file is opened
 * first with O_NONBLOCK (a FIFO opens at once instead of hanging) and the
 * checks run on the opened descriptor (fstat, not stat-then-open: the path
 * cannot be swapped between check and read). The read stops at the limit even
 * when the file grows meanwhile.
 */
import { closeSync, constants, fstatSync, openSync, readSync, readlinkSync, type Stats } from 'node:fs';

/** Largest shared library loaded (bytes). */
export const MAX_LIBRARY_BYTES = 256 * 1024 * 1024;
/** Largest WebAssembly module compiled (bytes). */
export const MAX_MODULE_BYTES = 128 * 1024 * 1024;

export type PluginFileProblem = 'missing' | 'not-regular' | 'too-large' | 'unreadable';

/** Why a plugin file was not read; the message names the file and the cause, never its contents. */
export class PluginFileError extends Error {
  constructor(readonly problem: PluginFileProblem, message: string) {
    super(message);
    this.name = 'PluginFileError';
  }
}

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

export interface PluginFile {
  data: Buffer;
  mtimeMs: number;
  /** The descriptor's own path (/proc/self/fd): where the bytes really came from, symlinks resolved. */
  realPath?: string;
}

/** Open `file` for reading a plugin from it; the caller closes the descriptor. */
function openPluginFile(file: string): { fd: number; st: Stats } {
  let fd: number;
  try {
    fd = openSync(file, OPEN_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new PluginFileError('missing', `${file}: no such file`);
    throw new PluginFileError('unreadable', `${file}: cannot open (${code ?? (err as Error).message})`);
  }
  try {
    return { fd, st: fstatSync(fd) };
  } catch (err) {
    closeSync(fd);
    throw new PluginFileError('unreadable', `${file}: cannot stat (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** Throw when what `st` describes is not a regular file of at most `maxBytes`. */
function checkStat(file: string, st: Stats, maxBytes: number): void {
  if (!st.isFile()) throw new PluginFileError('not-regular', `${file} is not a regular file (${kindOf(st)})`);
  if (st.size > maxBytes) throw new PluginFileError('too-large', `${file} is ${st.size} bytes, over the limit of ${maxBytes} bytes`);
}

/**
 * The bytes of the regular file `file`, at most `maxBytes` of them. Throws
 * PluginFileError; never blocks on a FIFO or a device.
 */
export function readPluginFile(file: string, maxBytes: number): PluginFile {
  const { fd, st } = openPluginFile(file);
  try {
    checkStat(file, st, maxBytes);
    // One byte more than fstat said tells a file that grew since: read on, up to the limit.
    let buf = Buffer.allocUnsafe(st.size + 1);
    let len = 0;
    for (;;) {
      if (len === buf.length) {
        if (len > maxBytes) throw new PluginFileError('too-large', `${file} grew past the limit of ${maxBytes} bytes while being read`);
        const bigger = Buffer.allocUnsafe(Math.min(maxBytes + 1, buf.length * 2));
        buf.copy(bigger, 0, 0, len);
        buf = bigger;
      }
      let n: number;
      try {
        n = readSync(fd, buf, len, buf.length - len, null);
      } catch (err) {
        throw new PluginFileError('unreadable', `${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
      if (n === 0) break;
      len += n;
    }
    return { data: buf.subarray(0, len), mtimeMs: st.mtimeMs, realPath: fdPath(fd) };
  } finally {
    closeSync(fd);
  }
}

/** The path the kernel opened for `fd` (symlinks resolved); undefined without /proc. */
function fdPath(fd: number): string | undefined {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a file';
}
