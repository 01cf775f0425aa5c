/**
 * Short latin1 strings decoded from bytes, reused while the bytes repeat.
 *
 * A plugin's header names and values, an origin's response headers, small
 * bodies: the same few strings on every request. Making a JS string from
 * bytes is a native call (Buffer#latin1Slice) that costs several hundred
 * instructions; comparing a few bytes with the ones decoded last time, in
 * JavaScript, costs a fraction of it.
 */

/** Node's latin1 decoder, called directly (Buffer#toString first normalises its encoding argument in JS). */
export type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string };

const ENTRIES = 64;
/** Longest string kept; longer ones are decoded every time. */
export const CACHED_LEN = 64;

export class Latin1Cache {
  private readonly strings: string[] = new Array<string>(ENTRIES).fill('');
  /** Each entry's bytes, CACHED_LEN apart: compared as bytes, cheaper than charCodeAt on the string. */
  private readonly bytes = new Uint8Array(ENTRIES * CACHED_LEN);

  /** buf[at, at + len) as a latin1 string. */
  decode(buf: Buffer, at: number, len: number): string {
    if (len === 0) return '';
    if (len > CACHED_LEN) return (buf as Latin1Buffer).latin1Slice(at, at + len);
    const key = (len * 31 + buf[at] * 7 + buf[at + len - 1]) & (ENTRIES - 1);
    const hit = this.strings[key];
    const bytes = this.bytes;
    const base = key * CACHED_LEN;
    if (hit.length === len) {
      let i = 0;
      while (i < len && bytes[base + i] === buf[at + i]) i++;
      if (i === len) return hit;
    }
    const fresh = (buf as Latin1Buffer).latin1Slice(at, at + len);
    this.strings[key] = fresh;
    for (let i = 0; i < len; i++) bytes[base + i] = buf[at + i];
    return fresh;
  }
}
