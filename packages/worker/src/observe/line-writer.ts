/**
 * A log destination for processes sharing one stdout (every worker and the
 * supervisor write to the same pipe). Lines are batched and flushed with one
 * write(2) of at most PIPE_BUF bytes holding whole lines only, so lines from
 * different processes never interleave mid-line, and a busy worker makes one
 * system call per batch rather than one per line.
 *
 * Lines are encoded straight into one reused buffer: no string concatenation
 * of the batch, no separate byte count per line, no Buffer per flush.
 */
import { writeSync } from 'node:fs';

const PIPE_BUF = 4096;
/** The batch buffer; while it holds at most PIPE_BUF bytes, 60 KiB are always free. */
const CAPACITY = 64 * 1024;
/** Bytes always free after the batch: a line encoded in place (see `room`) may take this many. */
export const LINE_ROOM = CAPACITY - PIPE_BUF;
/** Longest line (in UTF-16 units) sure to fit in the free space: UTF-8 takes at most 3 bytes per unit. */
const MAX_BATCHED_LINE = Math.floor(LINE_ROOM / 3);

type Utf8Buffer = Buffer & { utf8Write(s: string, offset: number): number };

export class LineWriter {
  private readonly buf = Buffer.allocUnsafe(CAPACITY) as Utf8Buffer;
  private used = 0;
  private scheduled = false;

  constructor(private readonly fd: number = 1) {
    process.once('exit', () => this.flush());
  }

  /** Append one line (it must end with '\n'). */
  write(line: string): boolean {
    if (line.length > MAX_BATCHED_LINE) {
      this.flush();
      writeAll(this.fd, Buffer.from(line));
      return true;
    }
    this.commit(this.used + this.buf.utf8Write(line, this.used));
    return true;
  }

  /**
   * For a line encoded in place, with no string made: the batch buffer. The
   * line goes at `end`, may take up to LINE_ROOM bytes, and is added with
   * commit(). Valid until the next write, commit or flush.
   */
  get room(): Uint8Array {
    return this.buf;
  }

  /** Where the next line starts in `room`. */
  get end(): number {
    return this.used;
  }

  /** Add the line encoded in room[end, lineEnd) (ending with '\n') to the batch. */
  commit(lineEnd: number): void {
    const at = this.used;
    const end = lineEnd;
    if (end <= PIPE_BUF) {
      this.used = end;
    } else {
      // The batch would pass PIPE_BUF: send the lines before this one, keep this one.
      if (at > 0) {
        writeAll(this.fd, this.buf.subarray(0, at));
        this.buf.copyWithin(0, at, end);
      }
      this.used = end - at;
      if (this.used > PIPE_BUF) {
        // One line longer than PIPE_BUF: alone in its write.
        this.flush();
        return;
      }
    }
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushSoon);
    }
  }

  private readonly flushSoon = (): void => this.flush();

  flush(): void {
    this.scheduled = false;
    if (this.used === 0) return;
    const n = this.used;
    this.used = 0;
    writeAll(this.fd, this.buf.subarray(0, n));
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

function writeAll(fd: number, data: Buffer): void {
  let buf = data;
  for (let tries = 0; buf.length > 0; ) {
    try {
      const n = writeSync(fd, buf);
      buf = buf.subarray(n);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A non-blocking pipe that is full: wait briefly for the reader.
      if (code === 'EAGAIN' && tries++ < 1000) {
        Atomics.wait(sleeper, 0, 0, 1);
        continue;
      }
      if (code === 'EPIPE' || code === 'EAGAIN') return;
      throw err;
    }
  }
}
