import { STATUS_CODES } from 'node:http';
import type { ResponseSink } from './executor.js';

/** Answer with a one-line plain-text reason (errors the server itself produces). */
export function sendError(res: ResponseSink, status: number, message: string, extra?: Record<string, string>): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `${message}\n`;
  // The reason given, not left to node: a writeHead that threw (a plugin's bad
  // header) has already set statusMessage for the status it was given.
  res.writeHead(status, STATUS_CODES[status] ?? 'unknown', {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...extra,
  });
  res.end(body);
}
