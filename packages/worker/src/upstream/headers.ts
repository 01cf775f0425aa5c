/**
 * Header rewriting between client and origin (RFC 9110 §7.6.1): hop-by-hop
 * headers stay on their hop, and the origin learns who asked through
 * X-Forwarded-For/-Proto/-Host and Forwarded (RFC 7239): the client's own
 * elements are kept and flexilib's appended last, so an origin that trusts
 * the last hop reads the real peer, never a for= the client wrote.
 *
 * Both directions produce a flat [name, value, name, value, ...] array, the
 * form undici's dispatch and node's writeHead take without building objects;
 * names keep the case they arrived in.
 */
import { Latin1Cache } from '../http/latin1-cache.js';
import { sameLower } from '../http/raw-headers.js';

/** Hop-by-hop headers, plus Expect (node:http already answered 100-continue to the client). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect']);
const FORWARDED = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']);

function isHopByHop(lower: string): boolean {
  return HOP_BY_HOP.has(lower) || lower.startsWith('proxy-');
}

/** What a header name means to the proxy (case-insensitive). */
const enum Kind {
  Pass,
  Connection,
  HopByHop,
  XForwardedFor,
  XForwardedOther,
  Forwarded,
  Host,
  TransferEncoding,
  ContentLength,
}

function kindOf(lower: string): Kind {
  if (lower === 'connection') return Kind.Connection;
  if (lower === 'transfer-encoding') return Kind.TransferEncoding;
  if (lower === 'content-length') return Kind.ContentLength;
  if (isHopByHop(lower)) return Kind.HopByHop;
  if (lower === 'x-forwarded-for') return Kind.XForwardedFor;
  if (FORWARDED.has(lower)) return Kind.XForwardedOther;
  if (lower === 'forwarded') return Kind.Forwarded;
  if (lower === 'host') return Kind.Host;
  return Kind.Pass;
}

/**
 * Header names as sent -> their Kind. The same few names arrive on every
 * request and response; a Map lookup (the string's hash is cached in it)
 * costs a fraction of the lower-cased copy and Set lookups it replaces.
 * Bounded: a peer sending endless new names only empties it now and then.
 */
const kinds = new Map<string, Kind>();
const MAX_KINDS = 512;

function kindOfName(name: string): Kind {
  let k = kinds.get(name);
  if (k === undefined) {
    k = kindOf(name.toLowerCase());
    if (kinds.size >= MAX_KINDS) kinds.clear();
    kinds.set(name, k);
  }
  return k;
}

/**
 * Header names a Connection header value lists, lower-cased ("close, X-Foo" -> ["x-foo"]),
 * or undefined for the common values that list none (keep-alive, close), without allocating.
 */
function connectionTokens(value: string): string[] | undefined {
  if (value === 'keep-alive' || value === 'close') return undefined;
  if (value.length <= 10) {
    const v = value.toLowerCase();
    if (v === 'keep-alive' || v === 'close') return undefined;
  }
  const out = value.toLowerCase().split(',').map((t) => t.trim()).filter((t) => t !== '' && t !== 'keep-alive' && t !== 'close');
  return out.length > 0 ? out : undefined;
}

/** Filled by requestHeaders: whether the request announces a body (read from the same pass). */
export interface RequestFacts {
  hasBody: boolean;
  /** The client sent a Host header. */
  hasHost?: boolean;
}

/**
 * Request headers for the origin, from node's rawHeaders (names as sent, in order).
 * `remote` is the client's address; `proto` is the scheme the client used.
 * Reading rawHeaders rather than req.headers spares node building a headers object.
 */
export function requestHeaders(raw: string[], remote: string | undefined, proto: string, facts: RequestFacts): string[] {
  const out: string[] = [];
  facts.hasBody = false;
  let listed: string[] | undefined;
  let xff: string | undefined;
  let fwd: string | undefined;
  let host: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    // Every name handled below starts with c, e, f, h, k, p, t, u or x: the
    // rest pass on their first letter, without a lookup.
    const first = name.charCodeAt(0) | 0x20;
    if (first !== 0x63 && first !== 0x65 && first !== 0x66 && first !== 0x68 && first !== 0x6b && first !== 0x70 && first !== 0x74 && first !== 0x75 && first !== 0x78) {
      out.push(name, raw[i + 1]);
      continue;
    }
    switch (kindOfName(name)) {
      case Kind.Connection: {
        const tokens = connectionTokens(raw[i + 1]);
        if (tokens !== undefined) (listed ??= []).push(...tokens);
        continue;
      }
      case Kind.TransferEncoding:
        facts.hasBody = true;
        continue;
      case Kind.HopByHop:
      case Kind.XForwardedOther:
        continue;
      case Kind.XForwardedFor:
        xff = xff === undefined ? raw[i + 1] : `${xff}, ${raw[i + 1]}`;
        continue;
      case Kind.Forwarded:
        fwd = fwd === undefined ? raw[i + 1] : `${fwd}, ${raw[i + 1]}`;
        continue;
      case Kind.ContentLength:
        if (raw[i + 1] !== '0') facts.hasBody = true;
        break;
      case Kind.Host:
        host = raw[i + 1];
        break;
      default:
        break;
    }
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
  facts.hasHost = host !== undefined;
  const own = forwardedElement(client, host, proto);
  out.push('forwarded', fwd === undefined ? own : `${fwd}, ${own}`);
  return out;
}

/** RFC 7239 §4: `for=` (IPv6 bracketed and quoted, `unknown` when not known), `host=`, `proto=`. */
function forwardedElement(client: string | undefined, host: string | undefined, proto: string): string {
  const node = client === undefined || client === '' ? 'unknown' : client.includes(':') ? `"[${client}]"` : client;
  return host === undefined ? `for=${node};proto=${proto}` : `for=${node};host=${forwardedValue(host)};proto=${proto}`;
}

/** A token as is; anything else (a host:port, say) as a quoted-string. */
function forwardedValue(v: string): string {
  return TOKEN.test(v) ? v : `"${v.replace(/["\\]/g, '\\$&')}"`;
}
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** An origin sends the same header names and mostly the same values on every response. */
const decoded = new Latin1Cache();
function latin1(b: Buffer): string {
  return decoded.decode(b, 0, b.length);
}

/** Reused by responseHeaders: the origin's raw header buffers as strings. */
const scratch: string[] = [];

/**
 * Response headers for the client, from undici's raw response headers
 * (alternating name and value buffers, as received). Latin-1 both ways, so
 * every byte of a value passes unchanged.
 */
export function responseHeaders(raw: Buffer[]): string[] {
  for (let i = 0; i < raw.length; i++) scratch[i] = latin1(raw[i]);
  scratch.length = raw.length;
  return relayedHeaders(scratch);
}

/**
 * Response headers for the client, from the origin's (names and values as
 * latin1 strings, as node's HTTP parser gives them): hop-by-hop ones dropped.
 */
export function relayedHeaders(raw: string[]): string[] {
  const out: string[] = [];
  let listed: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    const kind = responseKind(name);
    if (kind === Kind.Connection) {
      const tokens = connectionTokens(value);
      if (tokens !== undefined) (listed ??= []).push(...tokens);
      continue;
    }
    if (kind !== Kind.Pass) continue;
    out.push(name, value);
  }
  if (listed !== undefined) {
    for (let i = out.length - 2; i >= 0; i -= 2) {
      if (listed.includes(out[i].toLowerCase())) out.splice(i, 2);
    }
  }
  return out;
}

/**
 * What a response header name means to the proxy: Connection, a hop-by-hop
 * name (Transfer-Encoding among them), or Pass. By length, then compared
 * ignoring case: an origin's names are fresh strings on every answer, and a
 * Map lookup would hash each one first.
 */
function responseKind(name: string): Kind {
  switch (name.length) {
    case 2:
      return sameLower(name, 'te') ? Kind.HopByHop : Kind.Pass;
    case 6:
      return sameLower(name, 'expect') || sameLower(name, 'proxy-') ? Kind.HopByHop : Kind.Pass;
    case 7:
      return sameLower(name, 'trailer') || sameLower(name, 'upgrade') ? Kind.HopByHop : Kind.Pass;
    case 10:
      if (sameLower(name, 'connection')) return Kind.Connection;
      if (sameLower(name, 'keep-alive')) return Kind.HopByHop;
      break;
    case 17:
      if (sameLower(name, 'transfer-encoding')) return Kind.HopByHop;
      break;
  }
  return name.length > 6 && sameLower(name, 'proxy-') ? Kind.HopByHop : Kind.Pass;
}

/** Methods whose requests carry a body by their semantics: undici sends them `content-length: 0` when bodyless. */
const EXPECTS_BODY = new Set(['POST', 'PUT', 'PATCH']);

/**
 * The request head for the origin as undici writes it (origins see the same
 * either way): the request line, then headerBlock(), then Content-Length when
 * there is a body or the method expects one. One latin1 string, written in one go.
 */
export function requestHead(method: string, target: string, block: string, bodyLength: number): string {
  const length = bodyLength > 0 || EXPECTS_BODY.has(method) ? `content-length: ${bodyLength}\r\n` : '';
  return `${method} ${target} HTTP/1.1\r\n${block}${length}\r\n`;
}

/**
 * requestHeaders' output as header lines, in undici's order: Host first (the
 * client's, else the origin's), `connection: keep-alive`, the rest in order;
 * Content-Length left out (requestHead writes it).
 */
export function headerBlock(headers: string[], originHost: string): string {
  let host = originHost;
  let rest = '';
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i];
    if (name.length === 4 || name.length === 14) {
      const kind = kindOfName(name);
      if (kind === Kind.Host) {
        host = headers[i + 1];
        continue;
      }
      if (kind === Kind.ContentLength) continue;
    }
    rest += `${name}: ${headers[i + 1]}\r\n`;
  }
  return `host: ${host}\r\nconnection: keep-alive\r\n${rest}`;
}
