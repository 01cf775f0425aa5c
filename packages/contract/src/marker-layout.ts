/**
 * The call marker: which plugin calls a worker is inside, in a file the worker
 * maps shared (`${runDir}/worker-<cluster id>.marker`) and the supervisor reads
 * after the worker died — crash attribution with no IPC per request. Defined
 * once here (no koffi: the supervisor imports it); the worker's writer is
 * native/call-marker.ts.
 *
 *   uint32 words, native endianness
 *   [0] MAGIC  [1] VERSION  [2] pid  [3] reserved
 *   [4 + 2*s]     slot s: word = (config generation & 0xffff) << 16 | (route index + 1), 0 when idle
 *   [4 + 2*s + 1] slot s: sequence number, +1 on every call entered in the slot
 *
 * Slot 0 is the worker's inline slot (calls on the event loop: at most one at a
 * time). Slots 1.. belong to threaded routes' call slots, several of which can be
 * in a call at once. The slot after MAX_SLOTS is scratch for slots beyond the
 * limit (written, never read), so the writer needs no branch.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';

export const MARKER = {
  MAGIC: 0x4d584c46, // "FLXM"
  VERSION: 1,
  HEADER_WORDS: 4,
  WORDS_PER_SLOT: 2,
  /** Slot 0 (inline) plus threaded slots. */
  MAX_SLOTS: 1024,
  INLINE_SLOT: 0,
} as const;

/** File size: header, MAX_SLOTS slots and the scratch slot. */
export const MARKER_BYTES = (MARKER.HEADER_WORDS + (MARKER.MAX_SLOTS + 1) * MARKER.WORDS_PER_SLOT) * 4;

/** Route indexes this large (65535 routes and more) are recorded as unknown. */
export const UNKNOWN_ROUTE = 0xffff;

/** The marker file of a worker. */
export function markerFile(runDir: string, workerId: number): string {
  return path.join(runDir, `worker-${workerId}.marker`);
}

/** The folder of a worker's private library copies (see native/library.ts). */
export function libraryCopyDir(runDir: string, workerId: number): string {
  return path.join(runDir, `worker-${workerId}.libs`);
}

/**
 * The supervisor's verified copy of a configured library (supervisor's
 * library-store.ts writes it, native/verified-copy.ts reads it): named by the
 * configured path, replaced whole (rename) with each complete new version.
 */
export function verifiedLibraryFile(runDir: string, library: string): string {
  const key = createHash('sha256').update(library).digest('hex').slice(0, 16);
  return path.join(runDir, 'verified', `${key}-${path.basename(library)}`);
}

/** The word a route writes when it enters a call: constant per route and config. */
export function markWord(generation: number, routeIndex: number): number {
  const r = routeIndex + 1 >= UNKNOWN_ROUTE ? UNKNOWN_ROUTE : routeIndex + 1;
  return (((generation & 0xffff) << 16) | r) >>> 0;
}

/** A call that was in progress, decoded from a marker. */
export interface CallInProgress {
  slot: number;
  /** Config generation modulo 65536. */
  generation16: number;
  /** Index in that config's routes; undefined when it was beyond UNKNOWN_ROUTE. */
  routeIndex: number | undefined;
  seq: number;
}

function words(buf: Uint8Array): Uint32Array | undefined {
  if (buf.byteLength < MARKER.HEADER_WORDS * 4) return undefined;
  const copy = new Uint8Array(buf); // aligned copy
  const w = new Uint32Array(copy.buffer, 0, copy.byteLength >>> 2);
  return w[0] === MARKER.MAGIC && w[1] === MARKER.VERSION ? w : undefined;
}

function decode(w: Uint32Array, slot: number): CallInProgress | undefined {
  const i = MARKER.HEADER_WORDS + slot * MARKER.WORDS_PER_SLOT;
  const word = w[i];
  if (!word) return undefined;
  const r = word & 0xffff;
  return { slot, generation16: word >>> 16, routeIndex: r === UNKNOWN_ROUTE ? undefined : r - 1, seq: w[i + 1] };
}

/** Every call in progress recorded in a marker file's bytes (empty for a blank or foreign file). */
export function readCalls(buf: Uint8Array): CallInProgress[] {
  const w = words(buf);
  if (!w) return [];
  const calls: CallInProgress[] = [];
  const slots = Math.min(MARKER.MAX_SLOTS, (w.length - MARKER.HEADER_WORDS) / MARKER.WORDS_PER_SLOT);
  for (let s = 0; s < slots; s++) {
    const c = decode(w, s);
    if (c) calls.push(c);
  }
  return calls;
}

/** The inline slot's call in progress, if any (the supervisor samples it to find hung calls). */
export function readInlineCall(buf: Uint8Array): CallInProgress | undefined {
  const w = words(buf);
  return w ? decode(w, MARKER.INLINE_SLOT) : undefined;
}
