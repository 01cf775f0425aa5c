/**
 * Reading accepted sockets into one reused buffer, for the fast lane.
 *
 * Why: a socket read the ordinary way ('data') costs node a fresh 64 KiB
 * malloc per read (realloc'd to the bytes read), an ArrayBuffer and a Buffer
 * object, and Readable's push and emit machinery: about 2k instructions per
 * request before the lane sees a byte. net.Socket's public `onread: { buffer,
 * callback }` avoids all that, but only for sockets node creates, not for
 * the ones a server accepts.
 *
 * How (node 20's lib/net.js and lib/internal/stream_base_commons.js): every
 * net.Socket has own symbol properties kBuffer and kBufferCb (null unless
 * onread was given); onStreamRead, the handle's read callback, calls
 * `socket[kBufferCb](nread, socket[kBuffer])` instead of pushing a Buffer when
 * kBuffer is set, while socket timeouts, EOF ('end', 'close') and errors take
 * their usual path, and pause()/resume() stop and start the handle's reads.
 * The handle's useUserBuffer(buf) makes libuv read into buf. These are node's
 * internals, so they are probed once at start-up: without them the lane reads
 * with 'data' events as before.
 *
 * The buffer is overwritten by the next read of any connection: a reader
 * keeps no view of it past its callback (fast-lane.ts copies what it keeps).
 */
import { Socket } from 'node:net';

/** A read: `nread` bytes at the start of `buf`; false stops reading (as a full stream would). */
export type ReadCallback = (nread: number, buf: Buffer) => boolean | void;

/**
 * One buffer per process, so it can be large: a request with a body up to
 * about the lane's cap (256 KiB) that the kernel already holds whole arrives
 * in one read, which the lane serves without copying it (a request left
 * incomplete by a read is copied out of the buffer). node offers libuv 64 KiB.
 */
const BUFFER_BYTES = 256 * 1024;

type Internals = Record<symbol, unknown>;
interface UserBufferHandle {
  useUserBuffer(buf: Uint8Array): void;
}

export class SharedReads {
  /** The one buffer every attached socket reads into. */
  readonly buffer: Buffer = Buffer.allocUnsafe(BUFFER_BYTES);
  private viewLength = -1;
  private viewOf: Buffer = this.buffer;

  private constructor(
    private readonly kBuffer: symbol,
    private readonly kBufferCb: symbol,
  ) {}

  /**
   * The process's one instance (probed on first use), shared by the fast
   * lane's client connections and the lean origin client's connections
   * (upstream/origin-connection.ts): reads run one at a time, each callback
   * done with the buffer before the next read.
   */
  static shared(): SharedReads | null {
    if (shared === undefined) shared = SharedReads.probe();
    return shared;
  }

  /** The user-buffer reads, or null when this node lacks what they rely on. */
  static probe(): SharedReads | null {
    const s = new Socket();
    const own = Object.getOwnPropertySymbols(s);
    s.destroy();
    const find = (name: string) => own.find((sym) => sym.description === name);
    const kBuffer = find('kBuffer');
    const kBufferCb = find('kBufferCb');
    if (kBuffer === undefined || kBufferCb === undefined) return null;
    const props = s as unknown as Internals;
    if (props[kBuffer] !== null || props[kBufferCb] !== null) return null;
    return new SharedReads(kBuffer, kBufferCb);
  }

  /** Read `socket` into the shared buffer, each read given to `cb`; false if its handle cannot (read it with 'data'). */
  attach(socket: Socket, cb: ReadCallback): boolean {
    const handle = (socket as unknown as { _handle: Partial<UserBufferHandle> | null })._handle;
    if (typeof handle?.useUserBuffer !== 'function') return false;
    const props = socket as unknown as Internals;
    props[this.kBuffer] = this.buffer;
    props[this.kBufferCb] = cb;
    handle.useUserBuffer(this.buffer);
    return true;
  }

  /**
   * From now on `socket`'s reads are ordinary stream data, each a private
   * copy pushed ('data' events): for node:http, after a hand-off. Its parser
   * reads the handle itself (consume()), but a socket it gives back (an
   * upgrade, a 'data' listener added) reads through the user buffer again.
   */
  toStream(socket: Socket): void {
    (socket as unknown as Internals)[this.kBufferCb] = pushCopy;
  }

  /** The first `n` bytes of the shared buffer; the view is reused while reads keep the same length. */
  view(n: number): Buffer {
    if (n !== this.viewLength) {
      this.viewOf = this.buffer.subarray(0, n);
      this.viewLength = n;
    }
    return this.viewOf;
  }
}

let shared: SharedReads | null | undefined;

/** onStreamRead calls kBufferCb as the socket's method. */
function pushCopy(this: Socket, nread: number, buf: Buffer): boolean {
  return this.push(Buffer.from(buf.subarray(0, nread)));
}
