/**
 * The request target routes are matched on: its path with dot segments
 * removed (RFC 3986 §5.2.4), `%2e` (any case) read as a dot, as nginx does.
 * Matching the raw target would let `/api/../admin` (or `/api/%2e%2e/admin`)
 * take the `/api` route to an origin that normalises it into `/admin`.
 *
 * The normalised target is also what the executor gets (the plugin's path,
 * the origin's request line): what a route was chosen for is what is served.
 * The query is kept as sent; an encoded slash (%2F) is data, not a separator.
 */

/** `url` with its path's dot segments removed; `url` itself (no copy) when it has none. */
export function normalizeTarget(url: string): string {
  // Most targets have neither a "/." nor a "%": two native scans and done.
  if (url.charCodeAt(0) !== 47 /* / */ || (url.indexOf('/.') === -1 && url.indexOf('%') === -1)) return url;
  let end = url.indexOf('?');
  if (end === -1) end = url.length;
  let found = false;
  for (let i = 0; i < end && !found; i = segmentEnd(url, i + 1, end)) found = dots(url, i + 1, segmentEnd(url, i + 1, end)) !== 0;
  if (!found) return url;
  const out: string[] = [];
  for (let i = 0; i < end; ) {
    const next = segmentEnd(url, i + 1, end);
    const last = next >= end;
    const d = dots(url, i + 1, next);
    if (d === 0) out.push(url.slice(i + 1, next));
    else {
      if (d === 2) out.pop();
      // "/a/b/.." is "/a/": a dot segment last leaves the slash before it.
      if (last) out.push('');
    }
    i = next;
  }
  return `/${out.join('/')}${url.slice(end)}`;
}

/** Index of the '/' ending the segment that starts at `from`, or `end`. */
function segmentEnd(url: string, from: number, end: number): number {
  const i = url.indexOf('/', from);
  return i === -1 || i > end ? end : i;
}

/** 1 for a "." segment, 2 for "..", 0 otherwise; each dot may be written %2e or %2E. */
function dots(url: string, from: number, to: number): number {
  let n = 0;
  let i = from;
  while (i < to) {
    const c = url.charCodeAt(i);
    if (c === 46 /* . */) i++;
    else if (c === 37 /* % */ && i + 2 < to && url.charCodeAt(i + 1) === 50 /* 2 */ && (url.charCodeAt(i + 2) | 0x20) === 101 /* e */) i += 3;
    else return 0;
    if (++n > 2) return 0;
  }
  return n;
}
