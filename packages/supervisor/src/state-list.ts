/**
 * A list persisted as `{"version":1,"<key>":[...]}` in a state folder beside the
 * config (registered WASM services, created Lambda functions). Writes are
 * atomic: a temp file, flushed, renamed over the old one, so a crash leaves
 * the old or the new state, never half of one.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import { FlexiError, type ErrorCode } from '@flexilib/contract';

/** The list under `key` ([] when the file does not exist). Throws `code` naming the file when it is unreadable or corrupt. */
export function readStateList<T>(file: string, key: string, what: string, code: ErrorCode): T[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new FlexiError(code, `cannot read the ${what} state ${file}: ${(err as Error).message}`);
  }
  let state: Record<string, unknown>;
  try {
    state = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new FlexiError(code, `the ${what} state ${file} is not valid JSON (${(err as Error).message}): fix or remove it`);
  }
  if (state?.version !== 1 || !Array.isArray(state[key])) {
    throw new FlexiError(code, `the ${what} state ${file} has an unknown format (expected {"version":1,"${key}":[...]})`);
  }
  return state[key] as T[];
}

export function writeStateList(file: string, key: string, list: unknown[]): void {
  writeAtomic(file, JSON.stringify({ version: 1, [key]: list }, null, 2) + '\n');
}

/** Write a temp file, flush it to disk, rename it over `file`. */
export function writeAtomic(file: string, data: string | Uint8Array): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  const fd = openSync(tmp, 'w');
  try {
    for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}
