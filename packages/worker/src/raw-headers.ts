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
    if (name.length === n && (name === lowerName || name.toLowerCase() === lowerName)) return raw[i + 1];
  }
  return undefined;
}
