import { STATUS_CODES } from 'node:http';
import type { DirectAnswer, ErrorCounter, Executor, ResponseSink } from '../executor.js';
import { sameLower } from './raw-headers.js';

/** The header naming an error answer's catalogue code (FLX_...). */
export const ERROR_HEADER = 'x-flexilib-error';

/** The answer to an error the server itself produces: a one-line plain-text reason. */
export function errorAnswer(status: number, message: string): DirectAnswer {
  const body = Buffer.from(`${message}\n`, 'utf8');
  return { status, reason: undefined, headers: ['content-type', 'text/plain; charset=utf-8', 'content-length', String(body.length)], body };
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

/** Send errorAnswer(status, message), with `extra` headers after its own. */
export function sendError(res: ResponseSink, status: number, message: string, extra?: Record<string, string>): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const answer = errorAnswer(status, message);
  if (extra) for (const name of Object.keys(extra)) answer.headers.push(name, extra[name]);
  countErrorAnswer(res.meter, res.executor, answer.headers);
  // The reason given, not left to node: a writeHead that threw (a plugin's bad
  // header) has already set statusMessage for the status it was given.
  res.writeHead(status, STATUS_CODES[status] ?? 'unknown', answer.headers);
  res.end(answer.body);
}
