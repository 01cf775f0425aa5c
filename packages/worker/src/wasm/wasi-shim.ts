/**
 * The sandbox's WASI: a minimal preview1 of our own rather than node:wasi.
 * Why our own: node:wasi is experimental in Node 20 (it warns on stderr), its
 * docs disclaim being a security sandbox, and it writes a module's stdout and
 * stderr to the process's own fds, where they would corrupt the shared JSON
 * log stream. A plugin needs very little WASI, so each function below is one
 * a C plugin's libc actually calls, with no capability behind it:
 *
 *   args, environ          empty
 *   clock_*                real clocks (realtime, monotonic)
 *   random_get             the kernel's random bytes (/dev/urandom)
 *   fd_write 1, 2          lines captured into the worker's log, tagged with the route
 *   fd_read 0              end of file
 *   fd_fdstat_get 0-2      character devices; any other fd: EBADF
 *   fd_prestat_get         EBADF: no preopened directories, so no filesystem
 *   poll_oneoff            clock subscriptions sleep (nanosleep, usleep): the
 *                          instance thread sleeps; a call on the event loop moves
 *                          to a thread instead (loop-instance.ts)
 *   proc_exit              ends the call: answered 500, the instance is replaced
 *   path_*, sock_*         ENOTCAPABLE; every other function: ENOSYS
 */
import { closeSync, openSync, readSync } from 'node:fs';

/**
 * random_get reads the kernel's CSPRNG (/dev/urandom) rather than node:crypto:
 * wasi-libc asks for a few bytes in every module's _initialize, and node:crypto
 * would put ~30 of node's modules (~0.5 MiB) in every instance thread's
 * isolate. Opened per call (calls are rare), so a terminated thread leaves no
 * descriptor behind; WebCrypto's (lazily loaded) only where /dev/urandom cannot be read.
 */
function randomFill(buf: Uint8Array, offset: number, size: number): void {
  let fd: number;
  try {
    fd = openSync('/dev/urandom', 'r');
  } catch {
    // getRandomValues fills at most 64 KiB a call.
    for (let at = offset; at < offset + size; at += 65536) crypto.getRandomValues(buf.subarray(at, Math.min(at + 65536, offset + size)));
    return;
  }
  try {
    for (let done = 0; done < size; ) done += readSync(fd, buf, offset + done, size - done, null);
  } finally {
    closeSync(fd);
  }
}

const ERRNO = { SUCCESS: 0, BADF: 8, INVAL: 28, NOSYS: 52, SPIPE: 70, NOTCAPABLE: 76 } as const;

/** Thrown by proc_exit to unwind out of the module. */
export class ProcExit extends Error {
  constructor(readonly exitCode: number) {
    super(`the module called proc_exit(${exitCode})`);
    this.name = 'ProcExit';
  }
}

export interface WasiHost {
  /** The instance's memory (set once instantiated; may be replaced by growth). */
  memory(): WebAssembly.Memory;
  /** A complete line the module wrote to stdout (1) or stderr (2). */
  output(fd: 1 | 2, line: string): void;
  /** Sleep `ms` for poll_oneoff (> 0): throw to leave the event loop (default: block this thread, for an instance thread). */
  sleep?(ms: number): void;
}

const MAX_LINE = 8192;
const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/** Block this thread for `ms` (an instance thread; the event loop only for a run = loop route, which asked for it). */
export function blockFor(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

function now(clockId: number): bigint | undefined {
  if (clockId === 0) return BigInt(Date.now()) * 1_000_000n;
  if (clockId === 1 || clockId === 2 || clockId === 3) return process.hrtime.bigint();
  return undefined;
}

export type WasiFunction = (...args: never[]) => number | void;

/**
 * The import object for `wasi_snapshot_preview1`, with a function for each
 * name the module imports, and `flush` to emit a partial last line after a call.
 */
export function createWasi(names: readonly string[], host: WasiHost): { imports: Record<string, WasiFunction>; flush(): void } {
  const sleep = host.sleep ?? blockFor;
  const pending: Record<1 | 2, string> = { 1: '', 2: '' };
  const view = () => new DataView(host.memory().buffer);
  const bytes = () => new Uint8Array(host.memory().buffer);
  const decoder = new TextDecoder();

  const emit = (fd: 1 | 2, text: string) => {
    let s = pending[fd] + text;
    let nl: number;
    while ((nl = s.indexOf('\n')) >= 0) {
      host.output(fd, s.slice(0, nl));
      s = s.slice(nl + 1);
    }
    if (s.length > MAX_LINE) {
      host.output(fd, s);
      s = '';
    }
    pending[fd] = s;
  };

  const impl: Record<string, WasiFunction> = {
    args_sizes_get: (argc: number, bufSize: number) => {
      const dv = view();
      dv.setUint32(argc, 0, true);
      dv.setUint32(bufSize, 0, true);
      return ERRNO.SUCCESS;
    },
    args_get: () => ERRNO.SUCCESS,
    environ_sizes_get: (count: number, bufSize: number) => {
      const dv = view();
      dv.setUint32(count, 0, true);
      dv.setUint32(bufSize, 0, true);
      return ERRNO.SUCCESS;
    },
    environ_get: () => ERRNO.SUCCESS,
    clock_res_get: (id: number, out: number) => {
      if (now(id) === undefined) return ERRNO.INVAL;
      view().setBigUint64(out, 1000n, true);
      return ERRNO.SUCCESS;
    },
    clock_time_get: (id: number, _precision: bigint, out: number) => {
      const t = now(id);
      if (t === undefined) return ERRNO.INVAL;
      view().setBigUint64(out, t, true);
      return ERRNO.SUCCESS;
    },
    random_get: (ptr: number, len: number) => {
      randomFill(bytes(), ptr, len);
      return ERRNO.SUCCESS;
    },
    fd_write: (fd: number, iovs: number, iovsLen: number, nwritten: number) => {
      if (fd !== 1 && fd !== 2) return ERRNO.BADF;
      const dv = view();
      const mem = bytes();
      let total = 0;
      let text = '';
      for (let i = 0; i < iovsLen; i++) {
        const ptr = dv.getUint32(iovs + i * 8, true);
        const len = dv.getUint32(iovs + i * 8 + 4, true);
        text += decoder.decode(mem.subarray(ptr, ptr + len));
        total += len;
      }
      emit(fd, text);
      dv.setUint32(nwritten, total, true);
      return ERRNO.SUCCESS;
    },
    fd_read: (fd: number, _iovs: number, _iovsLen: number, nread: number) => {
      if (fd !== 0) return ERRNO.BADF;
      view().setUint32(nread, 0, true);
      return ERRNO.SUCCESS;
    },
    fd_fdstat_get: (fd: number, out: number) => {
      if (fd > 2) return ERRNO.BADF;
      const dv = view();
      dv.setUint8(out, 2); // character device
      dv.setUint16(out + 2, 0, true);
      dv.setBigUint64(out + 8, fd === 0 ? 2n : 64n, true); // fd_read | fd_write
      dv.setBigUint64(out + 16, 0n, true);
      return ERRNO.SUCCESS;
    },
    fd_prestat_get: () => ERRNO.BADF,
    fd_prestat_dir_name: () => ERRNO.BADF,
    fd_close: (fd: number) => (fd <= 2 ? ERRNO.SUCCESS : ERRNO.BADF),
    fd_seek: (fd: number) => (fd <= 2 ? ERRNO.SPIPE : ERRNO.BADF),
    sched_yield: () => ERRNO.SUCCESS,
    proc_exit: (code: number) => {
      throw new ProcExit(code);
    },
    poll_oneoff: (inPtr: number, outPtr: number, nsubs: number, neventsPtr: number) => {
      // subscription: userdata u64 @0, tag u8 @8, clock: id u32 @16, timeout u64 @24, flags u16 @40 (48 bytes)
      // event: userdata u64 @0, error u16 @8, type u8 @10 (32 bytes)
      let dv = view();
      let wait = Infinity;
      let fdSubs = 0;
      for (let i = 0; i < nsubs; i++) {
        const s = inPtr + i * 48;
        if (dv.getUint8(s + 8) !== 0) {
          fdSubs++;
          continue;
        }
        const id = dv.getUint32(s + 16, true);
        let ns = dv.getBigUint64(s + 24, true);
        if (dv.getUint16(s + 40, true) & 1) {
          const t = now(id) ?? 0n;
          ns = ns > t ? ns - t : 0n;
        }
        wait = Math.min(wait, Number(ns) / 1e6);
      }
      if (fdSubs === 0 && wait !== Infinity && wait > 0) sleep(wait);
      dv = view();
      let n = 0;
      for (let i = 0; i < nsubs; i++) {
        const s = inPtr + i * 48;
        const tag = dv.getUint8(s + 8);
        // With fd subscriptions present nothing slept: report those (as unsupported) and no clock.
        if ((tag === 0) === (fdSubs > 0)) continue;
        const e = outPtr + n * 32;
        dv.setBigUint64(e, dv.getBigUint64(s, true), true);
        dv.setUint16(e + 8, tag === 0 ? ERRNO.SUCCESS : ERRNO.BADF, true);
        dv.setUint8(e + 10, tag);
        n++;
      }
      dv.setUint32(neventsPtr, n, true);
      return ERRNO.SUCCESS;
    },
  };

  const imports: Record<string, WasiFunction> = {};
  for (const name of names) {
    imports[name] = impl[name] ?? (name.startsWith('path_') || name.startsWith('sock_') ? () => ERRNO.NOTCAPABLE : () => ERRNO.NOSYS);
  }
  const flush = () => {
    for (const fd of [1, 2] as const) {
      if (pending[fd] !== '') host.output(fd, pending[fd]);
      pending[fd] = '';
    }
  };
  return { imports, flush };
}
