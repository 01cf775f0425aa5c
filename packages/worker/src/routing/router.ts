/**
 * The router: proxy.ini's routes in file order, first match wins. A route
 * matches when the target starts with its path prefix and, for header routes,
 * the named header's value starts with its value prefix (FlexiLib semantics).
 * Registered WASM services come first, matched on whole path segments.
 */
import type { Executor } from '../executor.js';
import { rawHeader } from '../http/raw-headers.js';

export class Router {
  constructor(readonly executors: readonly Executor[]) {}

  /** `req`: node's IncomingMessage or the fast lane's request. */
  match(req: { url?: string; rawHeaders: string[] }): Executor | undefined {
    const url = req.url!;
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
