/**
 * What a failed attempt to an origin means: the status the client gets, the
 * one-line reason, whether the origin is to blame for the connection
 * (a passive health failure), and whether an idempotent request may be tried
 * on another origin.
 *
 *   refused / reset / unreachable      502  passive  retryable
 *   connect timeout                    504  passive  retryable
 *   no response headers in time        504  -        -
 *   silent mid-body beyond idle time   504  -        -   (cut if headers went out)
 *   origin removed while queued        502  -        retryable
 *   a status or head not to pass on    502  -        -
 */
import { statusOf, type HttpErrorCode, type UpstreamSettings } from '@flexilib/contract';

export interface Failure {
  /** The status of `code` in the catalogue. */
  status: number;
  /** Our stable code (@flexilib/contract's errors.ts). */
  code: HttpErrorCode;
  /** undici's or the system's code for what happened (ECONNREFUSED, UND_ERR_HEADERS_TIMEOUT, ...). */
  cause: string;
  reason: string;
  /** The connection failed: counts against the origin's health. */
  passive: boolean;
  /** The attempt failed on the origin's side (counted in its `failed`); not when it was removed or the client erred. */
  originFault: boolean;
  /** Nothing reached the origin's application, or it is safe to ask again: another origin may be tried. */
  retryable: boolean;
}

const UNREACHABLE = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'ETIMEDOUT']);
const RESET = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

export function classify(err: Error & { code?: string }, origin: string, s: UpstreamSettings): Failure {
  const f = what(err, origin, s);
  return { status: statusOf(f.code), ...f };
}

function what(err: Error & { code?: string }, origin: string, s: UpstreamSettings): Omit<Failure, 'status'> {
  const cause = err.code ?? 'UNKNOWN';
  if (cause === 'ECONNREFUSED') return { code: 'FLX_UPSTREAM_CONNECT', cause, reason: `origin ${origin} refused the connection`, passive: true, originFault: true, retryable: true };
  if (cause === 'UND_ERR_CONNECT_TIMEOUT') return { code: 'FLX_UPSTREAM_TIMEOUT', cause, reason: `origin ${origin} did not accept a connection within ${s.connectTimeoutMs} ms (connect_timeout)`, passive: true, originFault: true, retryable: true };
  if (RESET.has(cause)) return { code: 'FLX_UPSTREAM_CONNECT', cause, reason: `origin ${origin} closed the connection before answering (${cause}: ${err.message})`, passive: true, originFault: true, retryable: true };
  if (UNREACHABLE.has(cause)) return { code: 'FLX_UPSTREAM_CONNECT', cause, reason: `origin ${origin} is unreachable (${cause})`, passive: true, originFault: true, retryable: true };
  if (cause === 'UND_ERR_HEADERS_TIMEOUT') return { code: 'FLX_UPSTREAM_TIMEOUT', cause, reason: `origin ${origin} sent no response headers within ${s.headerTimeoutMs} ms (header_timeout)`, passive: false, originFault: true, retryable: false };
  if (cause === 'UND_ERR_BODY_TIMEOUT') return { code: 'FLX_UPSTREAM_TIMEOUT', cause, reason: `origin ${origin} went silent for ${s.idleTimeoutMs} ms in the response body (idle_timeout)`, passive: false, originFault: true, retryable: false };
  if (cause === 'UND_ERR_CLOSED' || cause === 'UND_ERR_DESTROYED') return { code: 'FLX_UPSTREAM_CONNECT', cause, reason: `origin ${origin} was removed from the pool`, passive: false, originFault: false, retryable: true };
  if (cause === 'FLX_UPSTREAM_BAD_RESPONSE') return { code: 'FLX_UPSTREAM_BAD_RESPONSE', cause, reason: `origin ${origin} ${err.message}`, passive: false, originFault: true, retryable: false };
  if (cause === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH') return { code: 'FLX_UPSTREAM_BAD_REQUEST', cause, reason: 'the request body does not match its Content-Length', passive: false, originFault: false, retryable: false };
  return { code: 'FLX_UPSTREAM_CONNECT', cause, reason: `origin ${origin}: ${err.message} (${cause})`, passive: false, originFault: true, retryable: false };
}
