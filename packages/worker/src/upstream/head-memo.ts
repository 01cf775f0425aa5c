/**
 * A route's last request headers for the origin, reused while the next
 * request repeats them. A keep-alive client sends the same headers request
 * after request (and the fast lane decodes repeated bytes to the very same
 * strings), so when the raw headers and the client's address match the last
 * request's, the hop-by-hop filtering, X-Forwarded-*, Forwarded and the
 * serialised header block are not built again: comparing a dozen strings
 * costs a fraction of building them. Only the request line is new, and not
 * even that while the method and target repeat too.
 */
import { sameStrings } from '../http/raw-headers.js';
import { headerBlock, requestHead, requestHeaders, type RequestFacts } from './headers.js';

export class HeadMemo {
  private raw: string[] = [];
  private remote: string | undefined = undefined;
  private last: string[] | null = null;
  private facts: Required<RequestFacts> = { hasBody: false, hasHost: false };
  private block = '';
  /** The origin Host the block names (when the client sent none), or undefined before one is built. */
  private blockHost: string | undefined;
  /** The last head built from `block`, and its request line's method and target, and body length. */
  private whole = '';
  private method = '';
  private target = '';
  private bodyLength = 0;

  /** requestHeaders(raw, remote, 'http', facts), from memory when raw and remote repeat. The array is shared: never change it. */
  headers(raw: string[], remote: string | undefined, facts: RequestFacts): string[] {
    const last = this.last;
    if (last !== null && remote === this.remote && sameStrings(raw, this.raw)) {
      facts.hasBody = this.facts.hasBody;
      facts.hasHost = this.facts.hasHost;
      return last;
    }
    const headers = requestHeaders(raw, remote, 'http', facts);
    this.raw = raw.slice();
    this.remote = remote;
    this.last = headers;
    this.facts.hasBody = facts.hasBody;
    this.facts.hasHost = facts.hasHost === true;
    this.blockHost = undefined;
    this.whole = '';
    return headers;
  }

  /** The lean client's request head; `headers` as headers() returned them. */
  head(method: string, target: string, headers: string[], originHost: string, bodyLength: number): string {
    if (headers !== this.last) return requestHead(method, target, headerBlock(headers, originHost), bodyLength);
    // The client's Host makes the block the same for every origin of the pool.
    if (this.blockHost === undefined || (!this.facts.hasHost && this.blockHost !== originHost)) {
      this.block = headerBlock(headers, originHost);
      this.blockHost = originHost;
      this.whole = '';
    }
    // The same request again (a client polling one URL): the very head, flattened by its first write.
    if (this.whole !== '' && method === this.method && target === this.target && bodyLength === this.bodyLength) return this.whole;
    this.method = method;
    this.target = target;
    this.bodyLength = bodyLength;
    return (this.whole = requestHead(method, target, this.block, bodyLength));
  }
}
