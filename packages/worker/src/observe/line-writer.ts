/**
 * A log destination for processes sharing one stdout (every worker and the
 * supervisor write to the same pipe or file). Lines are batched and flushed
 * with one write(2) holding whole lines only, so lines from different
 * processes never interleave mid-line, and a busy worker makes one system
 * call per batch rather than one per line. A batch is at most PIPE_BUF bytes
 * on anything but a regular file (a pipe, a socket, a terminal: the most the
 * kernel writes whole), and up to 32 KiB on a regular file, where the
 * processes share the file's offset and Linux writes each write(2) whole at
 * it: fewer, larger writes cost less per line.
 *
 * Lines are encoded straight into one reused buffer: no string concatenation
 * of the batch, no separate byte count per line, no Buffer per flush.
 *
 * When a batch is written: once the next line would not fit it, and else at
 * the end of the event-loop turn that added a line, except for lines that
 * may wait (`soon` false: access lines), which are written at most
 * FLUSH_DELAY_MS after the first of them. Why: under load a turn holds a
 * dozen access lines or so, and a write(2) per turn cost busy workers 0.3-0.7
 * µs of CPU a request (two workers sharing one log file, runs side by side).
 * Other lines (warnings, errors, events)
 * are rare and go out with their turn, as before (with any access lines
 * batched before them). What waiting costs: a worker
 * killed outright (SIGKILL, a plugin's segfault) loses the access lines of its
 * last few milliseconds, at most one batch; every ordinary exit writes them
 * (the 'exit' handler). The metrics count those requests regardless.
 */
import { fstatSync, writeSync } from 'node:fs';

const PIPE_BUF = 4096;
/** The longest batch on a regular file. */
const FILE_BATCH = 32 * 1024;
/** Bytes always free after the batch: a line encoded in place (see `room`) may take this many. */
export const LINE_ROOM = 60 * 1024;
/** The batch buffer: the longest batch and the room for one more line. */
const CAPACITY = FILE_BATCH + LINE_ROOM;
/** Longest line (in UTF-16 units) sure to fit in the free space: UTF-8 takes at most 3 bytes per unit. */
const MAX_BATCHED_LINE = Math.floor(LINE_ROOM / 3);
/** How long a line that may wait (an access line) waits for more before its batch is written. */
export const FLUSH_DELAY_MS = 5;

type Utf8Buffer = Buffer & { utf8Write(s: string, offset: number): number };

export class LineWriter {
  private readonly buf = Buffer.allocUnsafe(CAPACITY) as Utf8Buffer;
  private used = 0;
  /** A write at the end of this turn is scheduled (setImmediate). */
  private soon = false;
  /** A write FLUSH_DELAY_MS after the batch's first waiting line is scheduled. */
  private timed = false;
  /** One timer, made for the first batch and re-armed for each one after (refresh()); it never keeps the process alive. */
  private timer: NodeJS.Timeout | null = null;
  /** The longest batch written at once: PIPE_BUF, or FILE_BATCH on a regular file. */
  private readonly batch: number;

  constructor(private readonly fd: number = 1) {
    this.batch = isRegularFile(fd) ? FILE_BATCH : PIPE_BUF;
    process.once('exit', () => this.flush());
  }

  /**
   * Append one line (it must end with '\n'); `soon` false: it may wait up to
   * FLUSH_DELAY_MS for others (an access line), else it goes out with this turn.
   */
  write(line: string, soon = true): boolean {
    if (line.length > MAX_BATCHED_LINE) {
      this.flush();
      writeAll(this.fd, Buffer.from(line));
      return true;
    }
    this.commit(this.used + this.buf.utf8Write(line, this.used), soon);
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

  /** Add the line encoded in room[end, lineEnd) (ending with '\n') to the batch; `soon` as for write(). */
  commit(lineEnd: number, soon = true): void {
    const at = this.used;
    const end = lineEnd;
    if (end <= this.batch) {
      this.used = end;
    } else {
      // The batch would grow too long: send the lines before this one, keep this one.
      if (at > 0) {
        writeAll(this.fd, this.buf.subarray(0, at));
        this.buf.copyWithin(0, at, end);
      }
      this.used = end - at;
      if (this.used > this.batch) {
        // One line longer than a batch: alone in its write.
        this.flush();
        return;
      }
    }
    if (soon) {
      if (!this.soon) {
        this.soon = true;
        setImmediate(this.flushNow);
      }
    } else if (!this.timed) {
      this.timed = true;
      if (this.timer === null) this.timer = setTimeout(this.flushNow, FLUSH_DELAY_MS).unref();
      else this.timer.refresh();
    }
  }

  private readonly flushNow = (): void => this.flush();

  /** Write the batch now. A write scheduled for later then finds nothing, or the lines added since. */
  flush(): void {
    this.soon = false;
    this.timed = false;
    if (this.used === 0) return;
    const n = this.used;
    this.used = 0;
    writeAll(this.fd, this.buf.subarray(0, n));
  }
}

function isRegularFile(fd: number): boolean {
  try {
    // bigint: node's realpathSync reads the shared (non-bigint) stat array
    // left by the last stat call, and with a pipe's mode there it stops
    // resolving symlinks early (node 20): modules required later through a
    // symlink (pnpm's layout) then fail to load their own dependencies.
    return fstatSync(fd, { bigint: true }).isFile();
  } catch {
    return false;
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
