/**
 * A call slot: the native memory one plugin call uses, allocated once and
 * reused for every request the slot serves. An inline route has one slot; a
 * threaded route one per concurrent call, so each executing thread owns its
 * arena. Nothing here allocates native memory per request unless a request
 * body outgrows the slot's body area or the plugin overflows its arena.
 *
 *   request block:  [flexi_request][flexi_header x MAX_HEADERS][strings ...]
 *   response block: [flexi_response][arena (RESPONSE_PREALLOCATION_KB) .........]
 */
import { ABI_VERSION, HEADER, REQUEST, RESPONSE, RESP_HEADER, HEAP_BLOCK } from '@flexilib/plugin-abi';
import { allocBlock, copyFromNative, freeAt, freeBlock, type NativeBlock } from './ffi.js';

/** node:http's default maxHeadersCount; the header array holds that many. */
export const MAX_HEADERS = 2000;
const TWO32 = 4294967296;
/** Bodies up to this size are handed to node:http as latin1 strings (see PluginResponse.body). */
const SMALL_BODY = 16 * 1024;

const RQ = REQUEST.offsets;
const RS = RESPONSE.offsets;
const RH = RESP_HEADER.offsets;
const HD = HEADER.offsets;

/** The request fields a slot reads; node's IncomingMessage satisfies it, and so
 * can a plain object (`flexilib invoke` calls plugins without a server). */
export interface RequestLike {
  method?: string;
  url?: string;
  /** [name, value, name, value, ...], received order, names as sent. */
  rawHeaders: string[];
  httpVersionMajor: number;
  httpVersionMinor: number;
  socket: { remoteAddress?: string; remotePort?: number };
}

/** What a plugin call produced, copied out of native memory. */
export interface PluginResponse {
  status: number;
  reason: string | undefined;
  /** Flat [name, value, name, value, ...] as node:http's writeHead takes them. */
  headers: string[];
  hasContentType: boolean;
  /** Small bodies come as a latin1 string: node:http then sends head and body
   * in one write instead of a writev of two buffers, and no Buffer is made. */
  body: Buffer | string;
  /** Bytes the plugin took beyond the arena (malloc). */
  heapBytes: number;
  /** Bytes of the arena the call used. */
  arenaUsed: number;
}

export class Slot {
  readonly req: NativeBlock;
  readonly resp: NativeBlock;
  private readonly reqU32: Uint32Array;
  private readonly respU32: Uint32Array;
  private readonly respI32: Int32Array;
  private readonly headersAddr: number;
  private readonly stringsStart: number;
  private readonly arenaAddr: number;
  private readonly arenaOff: number;
  readonly arenaSize: number;
  private body: NativeBlock | null = null;
  /** The template the response struct is reset to before each call. */
  private readonly respInit: Buffer;

  constructor(arenaBytes: number, maxHeaderBytes: number) {
    const headersOff = REQUEST.size;
    this.stringsStart = headersOff + MAX_HEADERS * HEADER.size;
    this.req = allocBlock(this.stringsStart + maxHeaderBytes + 256);
    this.resp = allocBlock(RESPONSE.size + arenaBytes);
    this.reqU32 = new Uint32Array(this.req.buf.buffer, this.req.buf.byteOffset, this.req.size >>> 2);
    this.respU32 = new Uint32Array(this.resp.buf.buffer, this.resp.buf.byteOffset, RESPONSE.size >>> 2);
    this.respI32 = new Int32Array(this.resp.buf.buffer, this.resp.buf.byteOffset, RESPONSE.size >>> 2);
    this.headersAddr = this.req.addr + headersOff;
    this.arenaOff = RESPONSE.size;
    this.arenaAddr = this.resp.addr + RESPONSE.size;
    this.arenaSize = arenaBytes;

    this.setPtr(this.reqU32, RQ.headers, this.headersAddr);
    this.reqU32[RQ.host_abi_version >>> 2] = ABI_VERSION;

    // Response template: body in the arena, the whole arena free.
    this.setPtr(this.respU32, RS.body, this.arenaAddr);
    this.setPtr(this.respU32, RS.body_cap, arenaBytes);
    this.setPtr(this.respU32, RS.arena, this.arenaAddr);
    this.setPtr(this.respU32, RS.arena_size, arenaBytes);
    this.setPtr(this.respU32, RS.arena_top, arenaBytes);
    this.respInit = Buffer.from(this.resp.buf.subarray(0, RESPONSE.size));
  }

  private setPtr(u32: Uint32Array, off: number, value: number): void {
    u32[off >>> 2] = value % TWO32;
    u32[(off >>> 2) + 1] = (value / TWO32) >>> 0;
  }

  private getPtr(u32: Uint32Array, off: number): number {
    return u32[off >>> 2] + u32[(off >>> 2) + 1] * TWO32;
  }

  /**
   * Write the request into the slot. Returns false when it does not fit (only
   * possible when node:http's header limits were raised above the slot's).
   */
  fillRequest(req: RequestLike, body: Buffer | null): boolean {
    const buf = this.req.buf as Latin1Buffer;
    const u32 = this.reqU32;
    const base = this.req.addr;
    const limit = this.req.size;
    let off = this.stringsStart;

    const method = req.method!;
    if (off + method.length > limit) return false;
    this.setPtr(u32, RQ.method, base + off);
    this.setPtr(u32, RQ.method_len, method.length);
    off += buf.latin1Write(method, off);

    const target = req.url!;
    if (off + target.length > limit) return false;
    this.setPtr(u32, RQ.target, base + off);
    this.setPtr(u32, RQ.target_len, target.length);
    off += buf.latin1Write(target, off);

    const raw = req.rawHeaders;
    const n = raw.length >>> 1;
    if (n > MAX_HEADERS) return false;
    let h = (this.headersAddr - base) >>> 2;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i];
      const value = raw[i + 1];
      if (off + name.length + value.length > limit) return false;
      this.setPtr(u32, (h << 2) + HD.name, base + off);
      this.setPtr(u32, (h << 2) + HD.name_len, name.length);
      off += buf.latin1Write(name, off);
      this.setPtr(u32, (h << 2) + HD.value, base + off);
      this.setPtr(u32, (h << 2) + HD.value_len, value.length);
      off += value.length === 0 ? 0 : buf.latin1Write(value, off);
      h += HEADER.size >>> 2;
    }
    this.setPtr(u32, RQ.headers_len, n);

    const remote = req.socket.remoteAddress ?? '';
    if (off + remote.length > limit) return false;
    this.setPtr(u32, RQ.remote_addr, base + off);
    this.setPtr(u32, RQ.remote_addr_len, remote.length);
    off += remote.length === 0 ? 0 : buf.latin1Write(remote, off);
    const port = req.socket.remotePort ?? 0;
    u32[RQ.remote_port >>> 2] = port | (req.httpVersionMajor << 16) | (req.httpVersionMinor << 24);

    if (body === null || body.length === 0) {
      this.setPtr(u32, RQ.body, 0);
      this.setPtr(u32, RQ.body_len, 0);
    } else {
      if (this.body === null || this.body.size < body.length) {
        if (this.body) freeBlock(this.body);
        this.body = allocBlock(Math.max(body.length, 64 * 1024));
      }
      body.copy(this.body.buf, 0);
      this.setPtr(u32, RQ.body, this.body.addr);
      this.setPtr(u32, RQ.body_len, body.length);
    }
    return true;
  }

  /** Reset the response struct before a call. */
  resetResponse(): void {
    this.respInit.copy(this.resp.buf, 0);
  }

  /** Copy the plugin's response out of native memory, then free what it took from malloc. */
  readResponse(): PluginResponse {
    const u32 = this.respU32;
    const rbuf = this.resp.buf;
    const status = this.respI32[RS.status >>> 2];

    const reasonAddr = this.getPtr(u32, RS.reason);
    const reason = reasonAddr === 0 ? undefined : this.str(reasonAddr, this.getPtr(u32, RS.reason_len));

    const headers: string[] = [];
    let hasContentType = false;
    let node = this.getPtr(u32, RS.headers);
    let guard = this.getPtr(u32, RS.headers_len);
    while (node !== 0 && guard-- > 0) {
      const nodeBuf = this.inArena(node, RESP_HEADER.size) ? null : this.copyOut(node, RESP_HEADER.size);
      const nb = nodeBuf ?? rbuf;
      const at = nodeBuf ? 0 : node - this.resp.addr;
      const nameAddr = readPtr(nb, at + RH.name);
      const nameLen = readPtr(nb, at + RH.name_len);
      const valueAddr = readPtr(nb, at + RH.value);
      const valueLen = readPtr(nb, at + RH.value_len);
      const name = this.str(nameAddr, nameLen);
      if (nameLen === 12 && name.toLowerCase() === 'content-type') hasContentType = true;
      // The host frames the body itself; a plugin's own framing headers would contradict it.
      if (!((nameLen === 14 && name.toLowerCase() === 'content-length') || (nameLen === 17 && name.toLowerCase() === 'transfer-encoding'))) {
        headers.push(name, this.str(valueAddr, valueLen));
      }
      node = readPtr(nb, at + RH.next);
    }

    const bodyAddr = this.getPtr(u32, RS.body);
    const bodyLen = this.getPtr(u32, RS.body_len);
    let body: Buffer | string;
    if (bodyAddr === this.arenaAddr) {
      if (bodyLen <= SMALL_BODY) {
        body = (rbuf as Latin1Buffer).latin1Slice(this.arenaOff, this.arenaOff + bodyLen);
      } else {
        body = Buffer.allocUnsafe(bodyLen);
        rbuf.copy(body, 0, this.arenaOff, this.arenaOff + bodyLen);
      }
    } else {
      body = Buffer.allocUnsafeSlow(bodyLen);
      if (bodyLen > 0) copyFromNative(bodyAddr, body, bodyLen);
      freeAt(bodyAddr);
    }

    const arenaTop = this.getPtr(u32, RS.arena_top);
    const arenaUsed = this.arenaSize - arenaTop + (bodyAddr === this.arenaAddr ? bodyLen : 0);
    const heapBytes = this.getPtr(u32, RS.heap_bytes);
    let block = this.getPtr(u32, RS.heap);
    while (block !== 0) {
      const next = readPtr(this.copyOut(block, HEAP_BLOCK.size), HEAP_BLOCK.offsets.next);
      freeAt(block);
      block = next;
    }
    return { status, reason, headers, hasContentType, body, heapBytes, arenaUsed };
  }

  private inArena(addr: number, len: number): boolean {
    return addr >= this.arenaAddr && addr + len <= this.arenaAddr + this.arenaSize;
  }

  private str(addr: number, len: number): string {
    if (len === 0) return '';
    if (this.inArena(addr, len)) {
      const at = addr - this.resp.addr;
      return (this.resp.buf as Latin1Buffer).latin1Slice(at, at + len);
    }
    return (this.copyOut(addr, len) as Latin1Buffer).latin1Slice(0, len);
  }

  /** Copy native memory outside the arena (plugin heap blocks) into a fresh Buffer. */
  private copyOut(addr: number, len: number): Buffer {
    const b = Buffer.allocUnsafe(len);
    copyFromNative(addr, b, len);
    return b;
  }

  close(): void {
    freeBlock(this.req);
    freeBlock(this.resp);
    if (this.body) freeBlock(this.body);
    this.body = null;
  }
}

/** Node's fast latin1 codecs (present on every Buffer, absent from @types/node). */
type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string; latin1Write(s: string, off: number): number };

function readPtr(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * TWO32;
}
