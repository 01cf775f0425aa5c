/**
 * The request target routes are matched on: its path with dot segments
 * removed (RFC 3986 §5.2.4), `%2e` (any case) read as a dot, as nginx does.
 * Matching the raw target would let `/api/../admin` (or `/api/%2e%2e/admin`)
 * take the `/api` route to an origin that normalises it into `/admin`.
 *
 * An encoded slash (`%2F`) or a backslash (raw or `%5C`) separates segments
 * too when it comes to dot segments: origins that decode or read them as `/`
 * (many do) would otherwise climb out the same way. A path with a dot
 * segment is rebuilt with plain slashes, as nginx's normalised URI is; any
 * other path is passed on exactly as sent.
 *
 * The normalised target is also what the executor gets (the plugin's path,
 * the origin's request line): what a route was chosen for is what is served.
 * The query is kept as sent.
 */

/** `url` with its path's dot segments removed; `url` itself (no copy) when it has none. */
export function normalizeTarget(url: string): string {
  // Most targets have no "/.", "%" or "\": three native scans and done.
  if (url.charCodeAt(0) !== 47 /* / */ || (url.indexOf('/.') === -1 && url.indexOf('%') === -1 && url.indexOf('\\') === -1)) return url;
  let end = url.indexOf('?');
  if (end === -1) end = url.length;
  let found = false;
  for (let i = 0; i < end && !found; ) {
    const from = i + sepLength(url, i);
    const next = nextSep(url, from, end);
    found = dots(url, from, next) !== 0;
    i = next;
  }
  if (!found) return url;
  const out: string[] = [];
  for (let i = 0; i < end; ) {
    const from = i + sepLength(url, i);
    const next = nextSep(url, from, end);
    const d = dots(url, from, next);
    if (d === 0) out.push(url.slice(from, next));
    else {
      if (d === 2) out.pop();
      // "/a/b/.." is "/a/": a dot segment last leaves the slash before it.
      if (next >= end) out.push('');
    }
    i = next;
  }
  return `/${out.join('/')}${url.slice(end)}`;
}

/** Index of the separator ending the segment that starts at `from`, or `end`. */
function nextSep(url: string, from: number, end: number): number {
  for (let i = from; i < end; i++) if (sepLength(url, i) !== 0) return i;
  return end;
}

/** Length of the separator at `i`: 1 for `/` or `\`, 3 for `%2F` or `%5C` (any case), else 0. */
function sepLength(url: string, i: number): number {
  const c = url.charCodeAt(i);
  if (c === 47 /* / */ || c === 92 /* \ */) return 1;
  if (c !== 37 /* % */) return 0;
  const a = url.charCodeAt(i + 1);
  const b = url.charCodeAt(i + 2) | 0x20;
  return (a === 50 /* 2 */ && b === 102) /* f */ || (a === 53 /* 5 */ && b === 99) /* c */ ? 3 : 0;
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
