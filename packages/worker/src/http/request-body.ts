/**
 * Buffering a request body up to a limit, for executors that need it whole
 * (native and WASM plugins get the body as one pointer and length).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { rawHeader } from './raw-headers.js';
import { sendError } from './respond.js';

/** True when the request carries no body, so it can be served without waiting for one. */
export function hasNoBody(req: IncomingMessage): boolean {
  const raw = req.rawHeaders;
  if (rawHeader(raw, 'transfer-encoding') !== undefined) return false;
  const len = rawHeader(raw, 'content-length');
  return len === undefined || len === '0';
}

/**
 * Collect the body, or answer 413 (and close the connection, since the rest of
 * the body is not read) once it exceeds `limit` bytes.
 */
export function readBody(req: IncomingMessage, res: ServerResponse, limit: number, done: (body: Buffer) => void): void {
  const declared = req.headers['content-length'];
  const tooLarge = () => {
    res.shouldKeepAlive = false;
    sendError(res, 'FLX_BODY_TOO_LARGE', `request body exceeds the limit of ${limit} bytes`, { connection: 'close' });
    req.resume();
  };
  if (declared !== undefined && Number(declared) > limit) {
    tooLarge();
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let failed = false;
  req.on('data', (chunk: Buffer) => {
    if (failed) return;
    size += chunk.length;
    if (size > limit) {
      failed = true;
      chunks.length = 0;
      tooLarge();
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    if (!failed) done(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
  });
  req.on('error', () => {
    failed = true;
  });
}
