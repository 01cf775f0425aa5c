/**
 * An answer relayed from another HTTP server (an upstream origin, a workerd
 * process) as undici delivers it: its head, then its body with backpressure.
 */
import { STATUS_CODES } from 'node:http';
import type { ResponseSink } from '../executor.js';

/**
 * node's standard reason phrases by status, in a plain array: STATUS_CODES is
 * an object with integer keys, held in dictionary mode, whose lookup hashes
 * the key on every answer.
 */
const REASONS: Array<string | undefined> = [];
for (const [code, reason] of Object.entries(STATUS_CODES)) REASONS[Number(code)] = reason;

/** U+FFFD or anything past Latin-1: a reason phrase undici decoded from bytes that were not UTF-8. */
const UNDECODED = /[^\u0000-\u00ff]/;

/**
 * A reason phrase of its own (not node's standard one for the status) is
 * passed on as sent, unless undici could not decode it (obs-text read as
 * UTF-8): then the standard one, rather than no answer at all. Throws what
 * writeHead throws for a head node:http refuses. `parsed`: the headers are
 * as node's own HTTP parser read them (ResponseSink.writeParsedHead), and
 * `length` is their Content-Length (-1: none).
 */
export function writeRelayedHead(res: ResponseSink, statusCode: number, statusText: string, headers: string[], parsed = false, length = -1): void {
  const own = !!statusText && statusText !== REASONS[statusCode] && !UNDECODED.test(statusText);
  if (parsed && res.writeParsedHead !== undefined) res.writeParsedHead(statusCode, own ? statusText : undefined, headers, length);
  else if (own) res.writeHead(statusCode, statusText, headers);
  else res.writeHead(statusCode, headers);
}

/**
 * Write one body chunk. False: the client reads slower than the server sends;
 * stop reading the server until the client drains, when `resume` runs.
 */
export function relayChunk(res: ResponseSink, chunk: Buffer, resume: () => void): boolean {
  if (res.write(chunk)) return true;
  res.once('drain', resume);
  return false;
}
