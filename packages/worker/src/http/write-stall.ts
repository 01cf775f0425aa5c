/**
 * Closes connections whose client stopped reading (nginx's send_timeout):
 * an answer the kernel cannot hand over stays buffered in the worker — a
 * 16 MiB body held for as long as the client keeps the connection open.
 *
 * One sweep per worker, not a timer per request: every `sendTimeoutMs / 4`
 * each connection with output pending is compared with the previous sweep.
 * Output still pending and no byte of it taken by the kernel (libuv's write
 * queue and the stream's buffer both unchanged) for `sendTimeoutMs` is a
 * stall: the connection is reset and its buffers freed. A slow client that
 * keeps reading is progress, never a stall.
 *
 * What a cut connection held, and what one that closed with output pending
 * at the last sweep held, is reported to MemoryReturn, which makes sure the
 * worker gives it back.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { MemoryReturn } from '../memory-return.js';

interface Seen {
  /** Pending bytes in the stream's buffer and in libuv's write queue at `since`. */
  buffered: number;
  queued: number;
  since: number;
}

/** Bytes libuv still has to write (a live count: it shrinks with each partial write). */
function queuedBytes(socket: Socket): number {
  return (socket as unknown as { _handle?: { writeQueueSize?: number } | null })._handle?.writeQueueSize ?? 0;
}

export class WriteStallWatch {
  private readonly seen = new Map<Socket, Seen>();
  private readonly sockets = new Set<Socket>();
  private timer: NodeJS.Timeout | undefined;
  /** Connections closed for a stalled write, since start. */
  closed = 0;

  constructor(private readonly sendTimeoutMs: number, private readonly memory: MemoryReturn, private readonly onStall: (socket: Socket, stalledMs: number) => void) {}

  /** Watch every connection the server accepts (node:http's and the fast lane's alike). */
  install(server: Server): void {
    if (this.sendTimeoutMs <= 0) return;
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => {
        this.sockets.delete(socket);
        const left = this.seen.get(socket);
        if (left !== undefined) {
          // The client went away with an answer still pending.
          this.seen.delete(socket);
          this.memory.drop(left.buffered);
        }
      });
    });
    const every = Math.max(50, Math.min(1000, Math.floor(this.sendTimeoutMs / 4)));
    this.timer = setInterval(() => this.sweep(Date.now()), every);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.memory.stop();
  }

  private sweep(now: number): void {
    for (const socket of this.sockets) {
      const buffered = socket.writableLength;
      if (buffered === 0 || socket.destroyed) {
        this.seen.delete(socket);
        continue;
      }
      const queued = queuedBytes(socket);
      const prev = this.seen.get(socket);
      if (!prev || prev.buffered !== buffered || prev.queued !== queued) {
        this.seen.set(socket, { buffered, queued, since: now });
        continue;
      }
      if (now - prev.since >= this.sendTimeoutMs) {
        this.seen.delete(socket);
        this.sockets.delete(socket);
        this.closed++;
        this.onStall(socket, now - prev.since);
        this.memory.drop(buffered);
        // A reset, not a FIN: a FIN would queue behind the unread bytes and the
        // kernel would hold them (and the connection) for minutes.
        socket.resetAndDestroy();
      }
    }
  }
}
