/**
 * A log destination for processes sharing one stdout (every worker and the
 * supervisor write to the same pipe). Lines are batched and flushed with one
 * write(2) of at most PIPE_BUF bytes holding whole lines only, so lines from
 * different processes never interleave mid-line, and a busy worker makes one
 * system call per batch rather than one per line.
 */
import { writeSync } from 'node:fs';

const PIPE_BUF = 4096;

export class LineWriter {
  private pending = '';
  private pendingBytes = 0;
  private scheduled = false;

  constructor(private readonly fd: number = 1) {
    process.once('exit', () => this.flush());
  }

  /** Append one line (it must end with '\n'). */
  write(line: string): boolean {
    const bytes = Buffer.byteLength(line);
    if (this.pendingBytes + bytes > PIPE_BUF) this.flush();
    if (bytes > PIPE_BUF) {
      writeAll(this.fd, line);
      return true;
    }
    this.pending += line;
    this.pendingBytes += bytes;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    return true;
  }

  flush(): void {
    this.scheduled = false;
    if (this.pendingBytes === 0) return;
    const data = this.pending;
    this.pending = '';
    this.pendingBytes = 0;
    writeAll(this.fd, data);
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

function writeAll(fd: number, data: string): void {
  let buf = Buffer.from(data);
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
