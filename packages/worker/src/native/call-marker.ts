/**
 * The worker's side of the call marker (layout in @flexilib/contract's marker-layout.ts): a few
 * typed-array writes around each plugin call, into a file mapped shared, so the
 * supervisor can tell which route and library a dead worker was inside.
 *
 *   enter(slot, word)   word and seq+1 into the slot   (before handle_request)
 *   exit(slot)          0 into the slot                (after it returns)
 *
 * Only the event loop writes (threaded calls enter before the hop to the pool
 * thread and exit in the completion callback), so there is no race to guard.
 */
import { MARKER, MARKER_BYTES } from '@flexilib/contract';
import { mapSharedFile } from './ffi.js';

const SCRATCH = MARKER.MAX_SLOTS;

export class CallMarker {
  private readonly w: Uint32Array;
  private readonly freeSlots: number[] = [];
  private nextSlot = 1;
  /** True when the marker is a real shared mapping (false: private memory, nothing is attributed). */
  readonly shared: boolean;
  /** Why the shared mapping failed, when it did. */
  readonly error: string | undefined;

  /** Map `file` shared; without a file (or when mapping fails, see `error`) the marker lives in private memory. */
  constructor(file?: string) {
    let buf: Buffer;
    let shared = false;
    try {
      buf = file ? mapSharedFile(file, MARKER_BYTES) : Buffer.alloc(MARKER_BYTES);
      shared = file !== undefined;
    } catch (err) {
      this.error = (err as Error).message;
      buf = Buffer.alloc(MARKER_BYTES);
    }
    this.shared = shared;
    this.w = new Uint32Array(buf.buffer, buf.byteOffset, MARKER_BYTES >>> 2);
    this.w.fill(0);
    this.w[2] = process.pid;
    this.w[1] = MARKER.VERSION;
    this.w[0] = MARKER.MAGIC;
  }

  enter(slot: number, word: number): void {
    const i = MARKER.HEADER_WORDS + slot * MARKER.WORDS_PER_SLOT;
    this.w[i] = word;
    this.w[i + 1]++;
  }

  exit(slot: number): void {
    this.w[MARKER.HEADER_WORDS + slot * MARKER.WORDS_PER_SLOT] = 0;
  }

  /** A slot for one threaded call slot; the scratch slot when all are taken. */
  allocSlot(): number {
    const s = this.freeSlots.pop();
    if (s !== undefined) return s;
    return this.nextSlot < MARKER.MAX_SLOTS ? this.nextSlot++ : SCRATCH;
  }

  releaseSlot(slot: number): void {
    if (slot === SCRATCH || slot === MARKER.INLINE_SLOT) return;
    this.exit(slot);
    this.freeSlots.push(slot);
  }
}
