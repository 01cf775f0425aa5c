import { STATUS_CODES } from 'node:http';
import type { DirectAnswer, ResponseSink } from '../executor.js';

/** The answer to an error the server itself produces: a one-line plain-text reason. */
export function errorAnswer(status: number, message: string): DirectAnswer {
  const body = Buffer.from(`${message}\n`, 'utf8');
  return { status, reason: undefined, headers: ['content-type', 'text/plain; charset=utf-8', 'content-length', String(body.length)], body };
}

/** Send errorAnswer(status, message), with `extra` headers after its own. */
export function sendError(res: ResponseSink, status: number, message: string, extra?: Record<string, string>): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const answer = errorAnswer(status, message);
  if (extra) for (const name of Object.keys(extra)) answer.headers.push(name, extra[name]);
  // The reason given, not left to node: a writeHead that threw (a plugin's bad
  // header) has already set statusMessage for the status it was given.
  res.writeHead(status, STATUS_CODES[status] ?? 'unknown', answer.headers);
  res.end(answer.body);
}
