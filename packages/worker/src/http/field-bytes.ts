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

/** Where readField() found a field line's parts (offsets into the buffer): one object, reused. */
export const field = { nameEnd: 0, valueStart: 0, valueEnd: 0, end: 0 };

/**
 * The field line starting at `p`, in the strict subset: a token name, a
 * colon, optional SP/HTAB, a value of VALUE bytes, CRLF. Fills `field` (the
 * value without its surrounding SP/HTAB; `end` at the line's CR) and returns
 * true; false for anything else (llhttp's to judge).
 */
export function readField(buf: Buffer, p: number): boolean {
  let k = p;
  while (TOKEN[buf[k]] === 1) k++;
  if (k === p || buf[k] !== 58 /* : */) return false;
  let v = k + 1;
  while (buf[v] === 32 || buf[v] === 9) v++;
  let e = v;
  while (VALUE[buf[e]] === 1) e++;
  if (buf[e] !== 13 || buf[e + 1] !== 10) return false;
  let ve = e;
  while (ve > v && (buf[ve - 1] === 32 || buf[ve - 1] === 9)) ve--;
  field.nameEnd = k;
  field.valueStart = v;
  field.valueEnd = ve;
  field.end = e;
  return true;
}

/** commonField(): a field neither parser treats specially. */
export const ANY_FIELD = -1;
/** commonField(): a field outside the strict subset. */
export const DECLINE = -2;

/**
 * The fields both lean parsers read alike, after readField() at `p`:
 * Content-Length's value (digits only, at most `maxDigits`, padded by spaces
 * only: llhttp refuses a tab or a sign), DECLINE for one that is not, for
 * Transfer-Encoding, and for Proxy-Connection (llhttp reads it as
 * Connection), else ANY_FIELD. A repeated Content-Length is the caller's to refuse.
 */
export function commonField(buf: Buffer, p: number, maxDigits: number): number {
  switch (field.nameEnd - p) {
    case 14:
      if (!lowerIs(buf, p, 'content-length')) return ANY_FIELD;
      if (hasTab(buf, field.nameEnd + 1, field.end)) return DECLINE;
      {
        const n = digits(buf, field.valueStart, field.valueEnd, maxDigits);
        return n < 0 ? DECLINE : n;
      }
    case 16:
      return lowerIs(buf, p, 'proxy-connection') ? DECLINE : ANY_FIELD;
    case 17:
      return lowerIs(buf, p, 'transfer-encoding') ? DECLINE : ANY_FIELD;
  }
  return ANY_FIELD;
}

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
