/**
 * A plugin's answer body left where the plugin wrote it — the slot's arena,
 * or the block it took from malloc — for the fast lane to send from there:
 * one writev(2) of the answer's head and the body, with no copy into a JS
 * Buffer (a 64 KiB echo otherwise costs a copy and a 64 KiB allocation per
 * request, and the garbage collector's time to free it).
 *
 * Only while nothing is queued on the socket (node's stream buffer and
 * libuv's write queue both empty, so the bytes cannot overtake earlier ones):
 * otherwise the body is copied and written behind them, as node would. What
 * the kernel does not take at once is copied too and left to node's socket,
 * since the memory is the slot's again at its next call. A socket that
 * failed (-1) gets everything through node's write, which meets the same
 * error and reports it as it always does.
 */
import type { Socket } from 'node:net';
import type { HeldBody } from '../executor.js';
import { allocBlock, copyFromNative, freeAt, freeBlock, writevNative, type NativeBlock } from './ffi.js';

const TWO32 = 4294967296;
/** Two struct iovec (base, length: 8 bytes each), then the head's bytes. */
const HEAD_AT = 32;
/** Heads longer than this go through node's write, with a copy of the body. */
const HEAD_ROOM = 16 * 1024;

/** Node's fast latin1 encoder (present on every Buffer, absent from @types/node). */
type Latin1WriteBuffer = Buffer & { latin1Write(s: string, off: number): number };

/** The descriptor of a connected plain TCP socket, or -1 (no handle: closed; not a libuv stream; TLS, whose bytes are not the socket's). */
function fdOf(socket: Socket): number {
  if ((socket as { encrypted?: boolean }).encrypted) return -1;
  const handle = (socket as unknown as { _handle: { fd?: number } | null })._handle;
  const fd = handle === null ? undefined : handle.fd;
  return typeof fd === 'number' ? fd : -1;
}

/** One slot's held body: reused call after call (a slot holds at most one answer at a time). */
export class NativeBody implements HeldBody {
  length = 0;
  /** Held: not yet sent or released. */
  live = false;
  private addr = 0;
  /** A block the plugin took from malloc, freed once sent; else the slot's arena. */
  private owned = false;
  /** The iovecs and the head, made on first use. */
  private block: NativeBlock | null = null;
  private iov: Uint32Array | null = null;

  /** Hold `length` bytes at `addr` (owned: free(3) them when done). */
  hold(addr: number, length: number, owned: boolean): this {
    if (this.live) this.release();
    this.addr = addr;
    this.length = length;
    this.owned = owned;
    this.live = true;
    return this;
  }

  sendAfter(socket: Socket, head: string): void {
    try {
      const fd = fdOf(socket);
      if (fd >= 0 && socket.writableLength === 0 && !socket.destroyed && head.length <= HEAD_ROOM) this.writev(socket, fd, head);
      else {
        // Behind what is queued: node writes both, from a copy.
        socket.cork();
        socket.write(head, 'latin1');
        socket.write(this.copy(0));
        socket.uncork();
      }
    } finally {
      this.release();
    }
  }

  private writev(socket: Socket, fd: number, head: string): void {
    const block = this.block ?? this.makeBlock();
    const iov = this.iov!;
    const n = (block.buf as Latin1WriteBuffer).latin1Write(head, HEAD_AT);
    const headAddr = block.addr + HEAD_AT;
    iov[0] = headAddr % TWO32;
    iov[1] = (headAddr / TWO32) >>> 0;
    iov[2] = n;
    iov[3] = 0;
    iov[4] = this.addr % TWO32;
    iov[5] = (this.addr / TWO32) >>> 0;
    iov[6] = this.length % TWO32;
    iov[7] = (this.length / TWO32) >>> 0;
    const sent = writevNative(fd, block.ptr, 2);
    if (sent === n + this.length) return;
    // The kernel took part (or nothing): the rest, copied, is node's to write as the client reads.
    const done = sent > 0 ? sent : 0;
    if (done >= n) {
      socket.write(this.copy(done - n));
      return;
    }
    const rest = Buffer.allocUnsafe(n - done + this.length);
    block.buf.copy(rest, 0, HEAD_AT + done, HEAD_AT + n);
    copyFromNative(this.addr, rest.subarray(n - done), this.length);
    socket.write(rest);
  }

  /** The body from byte `from` on, copied into a Buffer. */
  private copy(from: number): Buffer {
    const out = Buffer.allocUnsafe(this.length - from);
    if (out.length > 0) copyFromNative(this.addr + from, out, out.length);
    return out;
  }

  release(): void {
    if (!this.live) return;
    this.live = false;
    if (this.owned) freeAt(this.addr);
  }

  take(): Buffer {
    try {
      return this.copy(0);
    } finally {
      this.release();
    }
  }

  private makeBlock(): NativeBlock {
    const block = allocBlock(HEAD_AT + HEAD_ROOM);
    this.block = block;
    this.iov = new Uint32Array(block.buf.buffer, block.buf.byteOffset, HEAD_AT >>> 2);
    return block;
  }

  /** The slot closes: let go of a body still held, and of the iovec block. */
  close(): void {
    this.release();
    if (this.block !== null) freeBlock(this.block);
    this.block = null;
    this.iov = null;
  }
}
