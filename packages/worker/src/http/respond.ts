import { STATUS_CODES } from 'node:http';
import { ERROR_HEADER, statusOf, type HttpErrorCode } from '@flexilib/contract';
import type { DirectAnswer, ResponseSink } from '../executor.js';

/** The answer to an error the server itself produces: the code's status, a one-line plain-text reason, x-flexilib-error: code. */
export function errorAnswer(code: HttpErrorCode, message: string): DirectAnswer {
  const body = Buffer.from(`${message}\n`, 'utf8');
  return { status: statusOf(code), reason: undefined, headers: ['content-type', 'text/plain; charset=utf-8', 'content-length', String(body.length), ERROR_HEADER, code], body };
}

/** Send errorAnswer(code, message), with `extra` headers after its own. */
export function sendError(res: ResponseSink, code: HttpErrorCode, message: string, extra?: Record<string, string>): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const answer = errorAnswer(code, message);
  if (extra) for (const name of Object.keys(extra)) answer.headers.push(name, extra[name]);
  // The reason given, not left to node: a writeHead that threw (a plugin's bad
  // header) has already set statusMessage for the status it was given.
  res.writeHead(answer.status, STATUS_CODES[answer.status] ?? 'unknown', answer.headers);
  res.end(answer.body);
}
