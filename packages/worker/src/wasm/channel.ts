/**
 * The channel between the worker's event loop (main) and one instance thread:
 * a ring of call slots in SharedArrayBuffers. Main writes a request into the
 * next free slot and adds one to AVAIL; the thread takes calls off AVAIL (a
 * compare-and-swap), serves their slots in order and bumps DONE after each.
 * Calls not yet taken can be taken back (AVAIL exchanged with 0): main does
 * so when the thread is stuck in a slow call, for another instance to serve
 * them. Under load, calls queue in the ring while the thread works: neither
 * side sleeps or is woken per call (a futex wake and a context switch each way
 * was most of what a call cost), but once per burst, and nothing is posted,
 * allocated or cloned per call beyond the response body copy.
 *
 *   control: Int32 blocks of 16
 *     block 0 (HDR): AVAIL main <-> thread: calls submitted, not yet taken (thread waits on it)
 *                    DONE  thread -> main: calls finished    (main waits on it, asynchronously)
 *                    EXIT  main -> thread: end when idle
 *     block 1+s (CTL, one per slot): request length, response fields, data-buffer swap flags
 *   data, one buffer per slot (slot 0's made up front, the others when first used):
 *     request  (main writes, thread copies it whole into linear memory and adds
 *              the address it landed at to every pointer):
 *       [flexi_request][flexi_header x n][method target names values remote][pad][body]
 *     response (thread writes after the call, main reads):
 *       [reason][(u32 name_len, u32 value_len, name, value, pad) x n][body]   or an error message
 *
 * A slot's data buffer is fixed-size (typed arrays over growable SharedArrayBuffers
 * are several times slower in this V8). When a request or response does not
 * fit, the side writing it makes a larger one, posts it with the slot's number
 * over the channel's MessagePort and raises the slot's swap flag; the other
 * side takes it with receiveMessageOnPort before reading. It never exceeds the
 * module's memory cap: nothing a module returns can be larger than the memory it lives in.
 */
import type { RequestLike } from '../executor.js';
import { Latin1Cache } from '../http/latin1-cache.js';
import { peerOf } from '../http/peer.js';
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
// The layouts alone: the index brings the toolchain helpers (node:fs, node:path, ...) into every instance thread.
import { WASM32 } from '@flexilib/plugin-abi/layout';

/** The ring's own words (block 0). */
export const HDR = {
  /** Calls submitted that the thread has not taken yet (main adds, the thread takes one at a time). */
  AVAIL: 0,
  /** Calls the thread has finished (a running count; call n is in slot n % RING_SLOTS). */
  DONE: 1,
  /** 1: the thread ends once it has served every submitted call. */
  EXIT: 2,
} as const;

/** A slot's words (its block; 0 and 1 unused). */
export const CTL = {
  /** Bytes of the request image. */
  REQ_LEN: 2,
  /** Outcome: one of KIND. */
  KIND: 3,
  /** handle_request's return value. */
  RC: 4,
  STATUS: 5,
  /** Reason phrase length, -1 when none. */
  REASON_LEN: 6,
  HDR_COUNT: 7,
  BODY_OFF: 8,
  BODY_LEN: 9,
  /** Bytes the plugin took beyond the arena. */
  HEAP_BYTES: 10,
  /** Duration of handle_request, µs. */
  CALL_US: 11,
  /** Length of the error message (at offset 0) when KIND is not OK. */
  MSG_LEN: 12,
  /** Linear memory size after the call, in 64 KiB pages. */
  MEM_PAGES: 13,
  /** Main replaced the data buffer: the thread takes the new one from the port. */
  SWAP_TO_THREAD: 14,
  /** The thread replaced the data buffer: main takes the new one from the port. */
  SWAP_TO_MAIN: 15,
} as const;

export const KIND = { OK: 0, TRAP: 1, EXIT: 2, BAD_RESPONSE: 3, MEMORY: 4 } as const;

/** Calls that can be in flight on one instance (slots get a data buffer when first used). */
export const RING_SLOTS = 32;
const BLOCK_WORDS = 16;
const CTL_BYTES = (1 + RING_SLOTS) * BLOCK_WORDS * 4;
/** Where the request image and the response start in the data buffer. */
export const DATA = 0;
const MIN_DATA = 64 * 1024;

const RQ = WASM32.REQUEST.offsets;
const HD = WASM32.HEADER.offsets;
const HEADER_SIZE = WASM32.HEADER.size;
export const REQUEST_SIZE = WASM32.REQUEST.size;

/** Node's fast latin1 codecs (present on every Buffer, absent from @types/node). */
export type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string; latin1Write(s: string, off: number): number };

/** Response header strings, reused while modules send the same bytes (read on the event loop only). */
export const decoded = new Latin1Cache();

/** Where writeRequest puts a request image: a channel slot, or linear memory (a call on the event loop). */
export interface RequestArea {
  buf: Latin1Buffer;
  u8: Uint8Array;
  u32: Uint32Array;
  /** Make room for an image of `bytes` and return where it starts in `buf` (4-aligned), or -1 when it cannot fit. */
  place(bytes: number): number;
}

/** What a thread needs to open its end of a channel. */
export interface ChannelInit {
  ctl: SharedArrayBuffer;
  /** Slot 0's data buffer. */
  data: SharedArrayBuffer;
  /** Largest data buffer either side may make. */
  maxBytes: number;
  port: MessagePort;
}

type Buffers = { ctl: SharedArrayBuffer; data: SharedArrayBuffer; maxBytes: number };

/** A slot's data buffer before its first use. */
const NO_DATA = new SharedArrayBuffer(0);

/** One side of a channel: its slots, and the port their replaced buffers travel on. */
export class Ring {
  /** AVAIL, DONE, EXIT. */
  readonly hdr: Int32Array;
  readonly slots: Channel[] = [];

  /** `swapOut`: the flag this side raises when it replaces a slot's buffer. */
  constructor(init: Buffers, private readonly port: MessagePort, swapOut: number) {
    this.hdr = new Int32Array(init.ctl, 0, BLOCK_WORDS);
    for (let s = 0; s < RING_SLOTS; s++) this.slots.push(new Channel(init, port, swapOut, s, this));
  }

  /** Take every buffer the other side replaced, in order (the last one for a slot is current). */
  takeSwaps(): void {
    let msg;
    while ((msg = receiveMessageOnPort(this.port)) !== undefined) {
      const [slot, data] = msg.message as [number, SharedArrayBuffer];
      this.slots[slot].use(data);
    }
  }

  close(): void {
    this.port.close();
  }
}

/** One slot of a channel, as one side sees it. */
export class Channel implements RequestArea {
  /** The slot's words (CTL). */
  readonly ctl: Int32Array;
  data!: SharedArrayBuffer;
  buf!: Latin1Buffer;
  u8!: Uint8Array;
  u32!: Uint32Array;

  constructor(
    readonly init: Buffers,
    private readonly port: MessagePort,
    /** The flag this side raises when it replaces the buffer (the other side's flag is the other one). */
    private readonly swapOut: number,
    readonly slot = 0,
    /** The ring this slot belongs to (null: a lone slot). */
    private readonly ring: Ring | null = null,
  ) {
    this.ctl = new Int32Array(init.ctl, (1 + slot) * BLOCK_WORDS * 4, BLOCK_WORDS);
    this.use(slot === 0 ? init.data : NO_DATA);
  }

  /** A new channel's shared buffers (the main side creates them). */
  static buffers(maxBytes: number): Buffers {
    return { ctl: new SharedArrayBuffer(CTL_BYTES), data: new SharedArrayBuffer(MIN_DATA), maxBytes: Math.max(MIN_DATA, maxBytes) };
  }

  use(data: SharedArrayBuffer): void {
    this.data = data;
    this.buf = Buffer.from(data) as Latin1Buffer;
    this.u8 = new Uint8Array(data);
    this.u32 = new Uint32Array(data);
  }

  /** Make room for `bytes`, replacing the buffer when it is too small. False beyond the maximum. */
  reserve(bytes: number): boolean {
    if (bytes <= this.data.byteLength) return true;
    if (bytes > this.init.maxBytes) return false;
    let size = Math.max(MIN_DATA, this.data.byteLength);
    while (size < bytes) size *= 2;
    const next = new SharedArrayBuffer(Math.min(size, Math.max(bytes, this.init.maxBytes)));
    this.use(next);
    this.port.postMessage([this.slot, next]);
    this.ctl[this.swapOut] = 1;
    return true;
  }

  place(bytes: number): number {
    return this.reserve(DATA + bytes) ? DATA : -1;
  }

  close(): void {
    this.port.close();
  }

  /** Take the buffer the other side replaced, if it did (before reading what it wrote). */
  accept(): void {
    const flag = this.swapOut === CTL.SWAP_TO_MAIN ? CTL.SWAP_TO_THREAD : CTL.SWAP_TO_MAIN;
    if (this.ctl[flag] === 0) return;
    this.ctl[flag] = 0;
    if (this.ring !== null) {
      this.ring.takeSwaps();
      return;
    }
    let msg;
    while ((msg = receiveMessageOnPort(this.port)) !== undefined) this.use((msg.message as [number, SharedArrayBuffer])[1]);
  }
}

/**
 * Write a latin1 string. Short strings (methods, most header names and values)
 * go byte by byte: 5-7x faster than Buffer#latin1Write's native call for them.
 */
function putLatin1(v: RequestArea, s: string, off: number): number {
  const n = s.length;
  if (n > 48) return v.buf.latin1Write(s, off);
  const u8 = v.u8;
  for (let i = 0; i < n; i++) u8[off + i] = s.charCodeAt(i);
  return n;
}

/**
 * Main side: write the request image into the area, pointers relative to its
 * start (relocateRequest makes them addresses). Returns its length, or -1
 * when it cannot fit.
 */
export function writeRequest(v: RequestArea, req: RequestLike, body: Buffer | null): number {
  const method = req.method!;
  const target = req.url!;
  const raw = req.rawHeaders;
  const n = raw.length >>> 1;
  const peer = peerOf(req.socket);
  const remote = peer.address;
  // Upper bound of the image: latin1 strings take one byte per character.
  let strBytes = method.length + target.length + remote.length;
  for (let i = 0; i < raw.length; i++) strBytes += raw[i].length;
  const bodyLen = body === null ? 0 : body.length;
  const stringsAt = REQUEST_SIZE + n * HEADER_SIZE;
  const bodyAt = (stringsAt + strBytes + 7) & ~7;
  const total = bodyAt + bodyLen;
  const at = v.place(total);
  if (at < 0) return -1;

  const u32 = v.u32;
  const R = at >>> 2;
  let off = stringsAt;
  u32[R + (RQ.method >>> 2)] = off;
  u32[R + (RQ.method_len >>> 2)] = method.length;
  off += putLatin1(v, method, at + off);
  u32[R + (RQ.target >>> 2)] = off;
  u32[R + (RQ.target_len >>> 2)] = target.length;
  off += putLatin1(v, target, at + off);
  u32[R + (RQ.headers >>> 2)] = REQUEST_SIZE;
  u32[R + (RQ.headers_len >>> 2)] = n;
  let h = R + (REQUEST_SIZE >>> 2);
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    u32[h + (HD.name >>> 2)] = off;
    u32[h + (HD.name_len >>> 2)] = name.length;
    off += putLatin1(v, name, at + off);
    u32[h + (HD.value >>> 2)] = off;
    u32[h + (HD.value_len >>> 2)] = value.length;
    off += putLatin1(v, value, at + off);
    h += HEADER_SIZE >>> 2;
  }
  u32[R + (RQ.remote_addr >>> 2)] = off;
  u32[R + (RQ.remote_addr_len >>> 2)] = remote.length;
  off += putLatin1(v, remote, at + off);
  // remote_port (u16), http_major, http_minor share one word; host_abi_version is set by the thread.
  u32[R + (RQ.remote_port >>> 2)] = peer.port | (req.httpVersionMajor << 16) | (req.httpVersionMinor << 24);
  u32[R + (RQ.body >>> 2)] = bodyLen ? bodyAt : 0;
  u32[R + (RQ.body_len >>> 2)] = bodyLen;
  if (bodyLen) body!.copy(v.buf, at + bodyAt);
  return total;
}

/** Thread side: the pointer fields to relocate once the image sits at `base`. */
export function relocateRequest(m32: Uint32Array, base: number, abiVersion: number): void {
  const r = base >>> 2;
  m32[r + (RQ.method >>> 2)] += base;
  m32[r + (RQ.target >>> 2)] += base;
  m32[r + (RQ.remote_addr >>> 2)] += base;
  if (m32[r + (RQ.body_len >>> 2)] !== 0) m32[r + (RQ.body >>> 2)] += base;
  const n = m32[r + (RQ.headers_len >>> 2)];
  m32[r + (RQ.headers >>> 2)] += base;
  let h = r + (REQUEST_SIZE >>> 2);
  for (let i = 0; i < n; i++) {
    m32[h + (HD.name >>> 2)] += base;
    m32[h + (HD.value >>> 2)] += base;
    h += HEADER_SIZE >>> 2;
  }
  m32[r + (RQ.host_abi_version >>> 2)] = abiVersion;
}

/** What one call produced, as main reads it off the channel. */
export interface CallResult {
  kind: number;
  rc: number;
  status: number;
  reason: string | undefined;
  /** Flat [name, value, ...] for writeHead; framing headers dropped (the host frames the body). */
  headers: string[];
  hasContentType: boolean;
  body: Buffer;
  heapBytes: number;
  callUs: number;
  memPages: number;
  /** The error message when kind is not OK. */
  message: string;
}

export const EMPTY = Buffer.alloc(0);

/**
 * Add a plugin's response header to `headers` unless it frames the body (the
 * host does). True when it is the content-type.
 */
export function addHeader(headers: string[], name: string, value: string): boolean {
  const nl = name.length;
  if ((nl === 14 && name.toLowerCase() === 'content-length') || (nl === 17 && name.toLowerCase() === 'transfer-encoding')) return false;
  headers.push(name, value);
  return nl === 12 && name.toLowerCase() === 'content-type';
}

/** Main side: copy the response (or the error) out of the channel. */
export function readResponse(v: Channel): CallResult {
  v.accept();
  const ctl = v.ctl;
  const buf = v.buf;
  const kind = ctl[CTL.KIND];
  if (kind !== KIND.OK) {
    return {
      kind,
      rc: ctl[CTL.RC],
      status: 0,
      reason: undefined,
      headers: [],
      hasContentType: false,
      body: EMPTY,
      heapBytes: ctl[CTL.HEAP_BYTES],
      callUs: ctl[CTL.CALL_US],
      memPages: ctl[CTL.MEM_PAGES],
      message: buf.toString('utf8', DATA, DATA + ctl[CTL.MSG_LEN]),
    };
  }
  let off = DATA;
  const reasonLen = ctl[CTL.REASON_LEN];
  let reason: string | undefined;
  if (reasonLen >= 0) {
    reason = buf.latin1Slice(off, off + reasonLen);
    off += reasonLen;
  }
  off = (off + 3) & ~3;
  const headers: string[] = [];
  let hasContentType = false;
  const u32 = v.u32;
  for (let i = ctl[CTL.HDR_COUNT]; i > 0; i--) {
    const nl = u32[off >>> 2];
    const vl = u32[(off >>> 2) + 1];
    off += 8;
    const name = decoded.decode(buf, off, nl);
    off += nl;
    const value = decoded.decode(buf, off, vl);
    off = (off + vl + 3) & ~3;
    if (addHeader(headers, name, value)) hasContentType = true;
  }
  const bodyOff = ctl[CTL.BODY_OFF];
  const bodyLen = ctl[CTL.BODY_LEN];
  const body = Buffer.allocUnsafe(bodyLen);
  buf.copy(body, 0, bodyOff, bodyOff + bodyLen);
  return {
    kind,
    rc: ctl[CTL.RC],
    status: ctl[CTL.STATUS],
    reason,
    headers,
    hasContentType,
    body,
    heapBytes: ctl[CTL.HEAP_BYTES],
    callUs: ctl[CTL.CALL_US],
    memPages: ctl[CTL.MEM_PAGES],
    message: '',
  };
}

/**
 * Copy `len` bytes between the channel and linear memory. Short runs go byte
 * by byte: `set(subarray(...))` and Buffer#copy make a typed array per copy,
 * garbage that grew the instance thread's young generation from 1 to 4 MiB under load.
 */
export function copyBytes(dst: Uint8Array, at: number, src: Uint8Array, from: number, len: number): void {
  if (len > 256) {
    dst.set(src.subarray(from, from + len), at);
    return;
  }
  for (let i = 0; i < len; i++) dst[at + i] = src[from + i];
}

/** Thread side: write an error outcome. */
export function writeError(v: Channel, kind: number, message: string): void {
  const bytes = Buffer.from(message.slice(0, 2000), 'utf8');
  v.reserve(DATA + bytes.length);
  bytes.copy(v.buf, DATA);
  v.ctl[CTL.KIND] = kind;
  v.ctl[CTL.MSG_LEN] = bytes.length;
}

const RS = WASM32.RESPONSE.offsets;
const RH = WASM32.RESP_HEADER.offsets;
const RESP_HEADER_SIZE = WASM32.RESP_HEADER.size;

/** What measureResponse found: the headers to copy, and the bytes the response takes (reused: no allocation per call). */
export const shape = { count: 0, need: 0 };

/**
 * Check a plugin's response in linear memory: every pointer against the
 * memory's size (a module can return anything), and size it: header count
 * and bytes into `shape`. Returns null, or what was wrong.
 */
export function measureResponse(m8: Uint8Array, m32: Uint32Array, resp: number): string | null {
  const memLen = m8.length;
  const R = resp >>> 2;
  const reasonAddr = m32[R + (RS.reason >>> 2)];
  const reasonLen = m32[R + (RS.reason_len >>> 2)];
  if (reasonAddr !== 0 && reasonAddr + reasonLen > memLen) return `the reason phrase (${reasonLen} bytes at ${reasonAddr}) lies outside the module's memory`;
  let need = (reasonAddr !== 0 ? reasonLen : 0) + 3;
  const first = m32[R + (RS.headers >>> 2)];
  const maxHeaders = m32[R + (RS.headers_len >>> 2)];
  let count = 0;
  for (let node = first; node !== 0 && count < maxHeaders; count++) {
    if (node + RESP_HEADER_SIZE > memLen || (node & 3) !== 0) return `a response header node (at ${node}) lies outside the module's memory`;
    const h = node >>> 2;
    const nameLen = m32[h + (RH.name_len >>> 2)];
    const valueLen = m32[h + (RH.value_len >>> 2)];
    if (m32[h + (RH.name >>> 2)] + nameLen > memLen || m32[h + (RH.value >>> 2)] + valueLen > memLen) return `response header #${count + 1} points outside the module's memory`;
    need += 8 + nameLen + valueLen + 3;
    node = m32[h + (RH.next >>> 2)];
  }
  const bodyAddr = m32[R + (RS.body >>> 2)];
  const bodyLen = m32[R + (RS.body_len >>> 2)];
  if (bodyLen !== 0 && bodyAddr + bodyLen > memLen) return `the body (${bodyLen} bytes at ${bodyAddr}) lies outside the module's memory`;
  shape.need = need + bodyLen;
  shape.count = count;
  return null;
}

/**
 * Thread side: copy the plugin's response out of linear memory into the
 * channel. Every pointer is checked against the memory's size first (a module
 * can return anything), which also sizes the copy. Returns null, or what was wrong.
 */
export function writeResponse(v: Channel, m8: Uint8Array, m32: Uint32Array, resp: number): string | null {
  const bad = measureResponse(m8, m32, resp);
  if (bad !== null) return bad;
  const need = DATA + shape.need;
  if (!v.reserve(need)) return `the response (${need} bytes) is larger than the module's memory cap`;
  const R = resp >>> 2;
  const reasonAddr = m32[R + (RS.reason >>> 2)];
  const reasonLen = m32[R + (RS.reason_len >>> 2)];
  const first = m32[R + (RS.headers >>> 2)];
  const count = shape.count;
  const bodyAddr = m32[R + (RS.body >>> 2)];
  const bodyLen = m32[R + (RS.body_len >>> 2)];

  // Pass 2: copy.
  const ctl = v.ctl;
  const buf = v.buf;
  const u32 = v.u32;
  ctl[CTL.KIND] = KIND.OK;
  ctl[CTL.STATUS] = m32[R + (RS.status >>> 2)] | 0;
  let off = DATA;
  if (reasonAddr !== 0) {
    copyBytes(buf, off, m8, reasonAddr, reasonLen);
    off += reasonLen;
    ctl[CTL.REASON_LEN] = reasonLen;
  } else {
    ctl[CTL.REASON_LEN] = -1;
  }
  off = (off + 3) & ~3;
  let node = first;
  for (let i = 0; i < count; i++) {
    const h = node >>> 2;
    const nameAddr = m32[h + (RH.name >>> 2)];
    const nameLen = m32[h + (RH.name_len >>> 2)];
    const valueAddr = m32[h + (RH.value >>> 2)];
    const valueLen = m32[h + (RH.value_len >>> 2)];
    u32[off >>> 2] = nameLen;
    u32[(off >>> 2) + 1] = valueLen;
    off += 8;
    copyBytes(buf, off, m8, nameAddr, nameLen);
    off += nameLen;
    copyBytes(buf, off, m8, valueAddr, valueLen);
    off = (off + valueLen + 3) & ~3;
    node = m32[h + (RH.next >>> 2)];
  }
  ctl[CTL.HDR_COUNT] = count;
  copyBytes(buf, off, m8, bodyAddr, bodyLen);
  ctl[CTL.BODY_OFF] = off;
  ctl[CTL.BODY_LEN] = bodyLen;
  ctl[CTL.HEAP_BYTES] = m32[R + (RS.heap_bytes >>> 2)];
  return null;
}

/** The response struct as the host resets it before every call (wasm32 layout). */
export function responseTemplate(arenaAddr: number, arenaBytes: number): Uint8Array {
  const t = new Uint32Array(WASM32.RESPONSE.size >>> 2);
  t[RS.body >>> 2] = arenaAddr;
  t[RS.body_cap >>> 2] = arenaBytes;
  t[RS.arena >>> 2] = arenaAddr;
  t[RS.arena_size >>> 2] = arenaBytes;
  t[RS.arena_top >>> 2] = arenaBytes;
  return new Uint8Array(t.buffer);
}

/** True when the response overflowed its arena (the module must free what it took). */
export function overflowed(m32: Uint32Array, resp: number, arenaAddr: number): boolean {
  const R = resp >>> 2;
  return m32[R + (RS.heap >>> 2)] !== 0 || m32[R + (RS.body >>> 2)] !== arenaAddr;
}

/**
 * Event-loop side: the plugin's response read straight out of linear memory
 * (`mem` is a Buffer over it), after measureResponse accepted it: no channel
 * in between.
 */
export function readLinearResponse(mem: Latin1Buffer, m32: Uint32Array, resp: number, rc: number): CallResult {
  const R = resp >>> 2;
  const reasonAddr = m32[R + (RS.reason >>> 2)];
  const headers: string[] = [];
  let hasContentType = false;
  let node = m32[R + (RS.headers >>> 2)];
  for (let i = shape.count; i > 0; i--) {
    const h = node >>> 2;
    const name = decoded.decode(mem, m32[h + (RH.name >>> 2)], m32[h + (RH.name_len >>> 2)]);
    const value = decoded.decode(mem, m32[h + (RH.value >>> 2)], m32[h + (RH.value_len >>> 2)]);
    if (addHeader(headers, name, value)) hasContentType = true;
    node = m32[h + (RH.next >>> 2)];
  }
  const bodyAddr = m32[R + (RS.body >>> 2)];
  const bodyLen = m32[R + (RS.body_len >>> 2)];
  const body = Buffer.allocUnsafe(bodyLen);
  // copyBytes: Buffer#copy makes a typed array per call, costlier than a short body's bytes.
  copyBytes(body, 0, mem, bodyAddr, bodyLen);
  return {
    kind: KIND.OK,
    rc,
    status: m32[R + (RS.status >>> 2)] | 0,
    reason: reasonAddr !== 0 ? mem.latin1Slice(reasonAddr, reasonAddr + m32[R + (RS.reason_len >>> 2)]) : undefined,
    headers,
    hasContentType,
    body,
    heapBytes: m32[R + (RS.heap_bytes >>> 2)],
    callUs: 0,
    memPages: 0,
    message: '',
  };
}

/** A failed call's outcome (the event loop's own calls; a thread writes it with writeError). */
export function failedCall(kind: number, message: string): CallResult {
  return { kind, rc: 0, status: 0, reason: undefined, headers: [], hasContentType: false, body: EMPTY, heapBytes: 0, callUs: 0, memPages: 0, message };
}
