/**
 * Header rewriting between client and origin (RFC 9110 §7.6.1): hop-by-hop
 * headers stay on their hop, and the origin learns who asked through
 * X-Forwarded-For/-Proto/-Host.
 *
 * Both directions produce a flat [name, value, name, value, ...] array, the
 * form undici's dispatch and node's writeHead take without building objects.
 */

/** Hop-by-hop headers, plus Expect (node:http already answered 100-continue to the client). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect']);
const FORWARDED = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']);

function isHopByHop(lower: string): boolean {
  return HOP_BY_HOP.has(lower) || lower.startsWith('proxy-');
}

/** The tokens of a Connection header value, lower-cased ("close, X-Foo" -> ["close", "x-foo"]). */
function connectionTokens(value: string): string[] {
  return value.toLowerCase().split(',').map((t) => t.trim()).filter(Boolean);
}

/**
 * Request headers for the origin, from node's rawHeaders (names as sent, in order).
 * `remote` is the client's address; `proto` is the scheme the client used.
 */
export function requestHeaders(raw: string[], remote: string | undefined, proto: string): string[] {
  const out: string[] = [];
  let listed: string[] | undefined;
  let xff: string | undefined;
  let host: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const lower = name.toLowerCase();
    if (lower === 'connection') {
      (listed ??= []).push(...connectionTokens(raw[i + 1]));
      continue;
    }
    if (isHopByHop(lower)) continue;
    if (FORWARDED.has(lower)) {
      if (lower === 'x-forwarded-for') xff = xff === undefined ? raw[i + 1] : `${xff}, ${raw[i + 1]}`;
      continue;
    }
    if (lower === 'host') host = raw[i + 1];
    out.push(name, raw[i + 1]);
  }
  if (listed !== undefined) {
    for (let i = out.length - 2; i >= 0; i -= 2) {
      if (listed.includes(out[i].toLowerCase())) out.splice(i, 2);
    }
  }
  const client = remote?.startsWith('::ffff:') ? remote.slice(7) : remote;
  if (client !== undefined) out.push('x-forwarded-for', xff === undefined ? client : `${xff}, ${client}`);
  else if (xff !== undefined) out.push('x-forwarded-for', xff);
  out.push('x-forwarded-proto', proto);
  if (host !== undefined) out.push('x-forwarded-host', host);
  return out;
}

/** Response headers for the client, from undici's parsed headers (lower-case names). */
export function responseHeaders(headers: Record<string, string | string[] | undefined>): string[] {
  const out: string[] = [];
  const conn = headers.connection;
  const listed = conn === undefined ? undefined : connectionTokens(Array.isArray(conn) ? conn.join(',') : conn);
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || isHopByHop(name)) continue;
    if (listed !== undefined && listed.includes(name)) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const v of value) out.push(name, v);
  }
  return out;
}
