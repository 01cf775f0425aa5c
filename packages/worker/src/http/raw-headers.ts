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
