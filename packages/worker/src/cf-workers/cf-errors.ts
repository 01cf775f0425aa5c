/**
 * Answers in Cloudflare's shape for what its edge reports itself: a Worker
 * past its CPU or memory limit is error 1102, "Worker exceeded resource
 * limits", a 503 whose body for non-browser clients is `error code: 1102`.
 * flexilib's own code rides along in X-Flexilib-Error (and is counted in
 * flexilib_errors_total like every error answer); the status is the code's.
 */
import { ERROR_HEADER, statusOf, type HttpErrorCode } from '@flexilib/contract';
import type { ResponseSink } from '../executor.js';
import { countErrorAnswer } from '../http/respond.js';

export function sendCloudflareError(res: ResponseSink, cfCode: number, code: HttpErrorCode, ray: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `error code: ${cfCode}`;
  const headers = [
    'content-type', 'text/plain; charset=UTF-8',
    'content-length', String(Buffer.byteLength(body)),
    'cache-control', 'private, max-age=0, no-store, no-cache, must-revalidate, post-check=0, pre-check=0',
    'cf-ray', ray,
    ERROR_HEADER, code,
  ];
  countErrorAnswer(res.meter, res.executor, headers);
  res.writeHead(statusOf(code), headers);
  res.end(body);
}
