/**
 * The server's rules for turning what a plugin produced into an HTTP answer,
 * in one place so the native executor and `flexilib invoke` answer alike:
 *
 *   status 0                   -> 200
 *   handle_request returned ≠0 -> 500, unless the plugin set a status >= 400;
 *                                 the body written so far is kept, or
 *                                 "Internal Server Error" when there is none
 *   no content-type header     -> content-type: text/plain
 *   always                     -> content-length of the body (the host frames it)
 *
 * Applied in place on the hot path: nothing is allocated but the
 * content-length string.
 */
import type { PluginResponse } from './slot.js';

/** Rewrite `out` (status, body, headers) by the rules above; `rc` is handle_request's return. */
export function applyResponseRules(out: PluginResponse, rc: number): void {
  if (out.status === 0) out.status = 200;
  if (rc !== 0) {
    if (out.status < 400) out.status = 500;
    if (out.body.length === 0) out.body = 'Internal Server Error';
  }
  if (!out.hasContentType) {
    out.headers.push('content-type', 'text/plain');
    out.hasContentType = true;
  }
  out.headers.push('content-length', String(out.body.length));
}
