import { STATUS_CODES, type ServerResponse } from 'node:http';

/** Answer with a one-line plain-text reason (errors the server itself produces). */
export function sendError(res: ServerResponse, status: number, message: string, extra?: Record<string, string>): void {
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
