/**
 * Byte classes of HTTP/1.1 heads (RFC 9110, 9112), for the lean parsers that
 * read heads straight from bytes: the fast lane's requests (lane-request.ts)
 * and origins' answers (upstream/answer-head-parser.ts). Both accept a strict
 * subset and leave anything else to llhttp.
 */

/** Bytes allowed in a header name (RFC 9110 tchar). */
export const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TOKEN[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TOKEN[c] = 1;
for (let c = 65; c <= 90; c++) TOKEN[c] = TOKEN[c + 32] = 1;

/** Bytes allowed in a field value (and a reason phrase): HTAB, visible ASCII, SP, obs-text. */
export const VALUE = new Uint8Array(256);
VALUE[9] = 1;
for (let c = 32; c <= 255; c++) if (c !== 127) VALUE[c] = 1;

/** The end of a head: CRLF CRLF. */
export const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');

export function hasTab(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] === 9) return true;
  return false;
}

/** buf[at, at + lower.length) equals `lower` (lower-case ASCII letters and '-') ignoring case. */
export function lowerIs(buf: Buffer, at: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) if ((buf[at + i] | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

/** The decimal digits buf[from, to) as a number, or -1 if empty, longer than `maxDigits`, or not all digits. */
export function digits(buf: Buffer, from: number, to: number, maxDigits: number): number {
  if (to === from || to - from > maxDigits) return -1;
  let n = 0;
  for (let d = from; d < to; d++) {
    const c = buf[d] - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}
