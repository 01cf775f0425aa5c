import { STATUS_CODES } from 'node:http';
import { ERROR_HEADER, statusOf, type HttpErrorCode } from '@flexilib/contract';
import type { DirectAnswer, ErrorCounter, Executor, RequestStats, ResponseSink } from '../executor.js';
import { sameLower } from './raw-headers.js';

/** The answer to an error the server itself produces: the code's status, a one-line plain-text reason, x-flexilib-error: code. */
export function errorAnswer(code: HttpErrorCode, message: string): DirectAnswer & { body: Buffer } {
  const body = Buffer.from(`${message}\n`, 'utf8');
  return { status: statusOf(code), reason: undefined, headers: ['content-type', 'text/plain; charset=utf-8', 'content-length', String(body.length), ERROR_HEADER, code], body };
}

/**
 * Count an error answer about to be written by the code in its
 * x-flexilib-error header (flexilib_errors_total), in the request's metrics
 * file under its route. Every error answer of the server passes here (through
 * sendError, or the fast lane's own); an answer without the header counts
 * nothing. Error path only: the success path never scans headers.
 */
export function countErrorAnswer(meter: ErrorCounter | null | undefined, ex: Executor | undefined, headers: readonly string[]): void {
  if (!meter) return;
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i].length === ERROR_HEADER.length && sameLower(headers[i], ERROR_HEADER)) {
      meter.error(ex, headers[i + 1]);
      return;
    }
  }
}

/** Send errorAnswer(code, message), with `extra` headers after its own. */
export function sendError(res: ResponseSink, code: HttpErrorCode, message: string, extra?: Record<string, string>): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const answer = errorAnswer(code, message);
  if (extra) for (const name of Object.keys(extra)) answer.headers.push(name, extra[name]);
  // The code is known here: count it without scanning the headers for it.
  res.meter?.error(res.executor, code);
  // An observed response (node's or the lane's) is its request's RequestStats: record the
  // bytes of this answer, not those of a plugin answer it replaces (node's path would
  // otherwise find no content-length to read: writeHead's array is not kept).
  if ((res as Partial<RequestStats>).bytes !== undefined) (res as unknown as RequestStats).bytes = answer.body.length;
  // The reason given, not left to node: a writeHead that threw (a plugin's bad
  // header) has already set statusMessage for the status it was given.
  res.writeHead(answer.status, STATUS_CODES[answer.status] ?? 'unknown', answer.headers);
  res.end(answer.body);
}
