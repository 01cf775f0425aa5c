/**
 * Header lookups over req.rawHeaders. Reading req.headers makes node:http
 * build a headers object for the request, which the hot path otherwise never
 * needs; a scan of the (short) raw list allocates nothing.
 */

/** The first value of header `lowerName` (given lower-case), or undefined. */
export function rawHeader(raw: string[], lowerName: string): string | undefined {
  const n = lowerName.length;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.length === n && (name === lowerName || sameLower(name, lowerName))) return raw[i + 1];
  }
  return undefined;
}

/** How many times header `lowerName` (given lower-case) occurs. */
export function rawHeaderCount(raw: string[], lowerName: string): number {
  const n = lowerName.length;
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.length === n && (name === lowerName || sameLower(name, lowerName))) count++;
  }
  return count;
}

/** s equals lower (already lower-case, same length) ignoring ASCII case; no allocation. */
export function sameLower(s: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    const c = s.charCodeAt(i);
    if ((c >= 65 && c <= 90 ? c + 32 : c) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** Two header lists with the same strings in the same order (the same objects compare at once). */
export function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The Content-Length among flat [name, value, ...] headers (the last one, as the lane always read it), or -1. */
export function contentLengthOf(headers: readonly string[]): number {
  let length = -1;
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i].length === 14 && sameLower(headers[i], 'content-length')) length = decimal(headers[i + 1]);
  }
  return length;
}

/**
 * Number(s) for a header value. A short run of digits (a Content-Length) is
 * read here: Number() of a string fresh from a parser goes to V8's runtime.
 */
export function decimal(s: string): number {
  const n = s.length;
  if (n === 0 || n > 15) return Number(s);
  let v = 0;
  for (let i = 0; i < n; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return Number(s);
    v = v * 10 + d;
  }
  return v;
}
