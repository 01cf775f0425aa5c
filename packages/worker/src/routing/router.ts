/**
 * The router: proxy.ini's routes in file order, first match wins. A route
 * matches when the target starts with its path prefix and, for header routes,
 * the named header's value starts with its value prefix (FlexiLib semantics).
 * Registered WASM services come first, matched on whole path segments.
 * The target is matched with its dot segments removed (target.ts), and the
 * request carries that form on: node:http's path and the fast lane's alike.
 */
import type { Executor } from '../executor.js';
import { rawHeader } from '../http/raw-headers.js';
import { normalizeTarget } from './target.js';

export class Router {
  constructor(readonly executors: readonly Executor[]) {}

  /** `req`: node's IncomingMessage or the fast lane's request; its url is normalised in place. */
  match(req: { url?: string; rawHeaders: string[] }): Executor | undefined {
    const raw = req.url!;
    const url = normalizeTarget(raw);
    if (url !== raw) req.url = url;
    const list = this.executors;
    for (let i = 0; i < list.length; i++) {
      const ex = list[i];
      const r = ex.route;
      if (!url.startsWith(r.pathPrefix)) continue;
      if (r.segmentPrefix === true && url.length > r.pathPrefix.length) {
        const c = url.charCodeAt(r.pathPrefix.length);
        if (c !== 47 /* / */ && c !== 63 /* ? */) continue;
      }
      if (r.header !== undefined) {
        const value = rawHeader(req.rawHeaders, r.header.name);
        if (value === undefined || !value.startsWith(r.header.valuePrefix)) continue;
      }
      return ex;
    }
    return undefined;
  }

  close(): void {
    for (const ex of this.executors) ex.close();
  }
}
