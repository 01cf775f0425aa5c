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
import type { RequestLike } from '../executor.js';
import { CACHED_LEN, Latin1Cache, type Latin1Buffer } from '../http/latin1-cache.js';
import { peerOf } from '../http/peer.js';
import { newPluginResponse, type PluginResponse } from '../http/response-rules.js';
import { sameLower } from '../http/raw-headers.js';
import { allocBlock, copyFromNative, freeAt, freeBlock, type NativeBlock } from './ffi.js';
import { NativeBody } from './held-body.js';

/** node:http's default maxHeadersCount; the header array holds that many. */
export const MAX_HEADERS = 2000;
const TWO32 = 4294967296;
/** Bodies up to this size are handed to node:http as latin1 strings (see PluginResponse.body). */
const SMALL_BODY = 16 * 1024;

const RQ = REQUEST.offsets;
const RS = RESPONSE.offsets;
const RH = RESP_HEADER.offsets;
const HD = HEADER.offsets;

export type { RequestLike };

/** What a plugin call produced, copied out of native memory (http/response-rules.ts). The object
 * belongs to the slot and is overwritten by its next call. */
export type { PluginResponse };

export class Slot {
  readonly req: NativeBlock;
  readonly resp: NativeBlock;
  private readonly reqU32: Uint32Array;
  private readonly reqU8: Uint8Array;
  /** Decoded header strings and small bodies, reused while the plugin sends the same bytes. */
  private readonly strings = new Latin1Cache();
  private readonly reqLo: number;
  private readonly reqHi: number;
  private readonly reqStraddles: boolean;
  private readonly respU32: Uint32Array;
  private readonly respI32: Int32Array;
  private readonly headersAddr: number;
  private readonly stringsStart: number;
  private readonly arenaAddr: number;
  private readonly arenaOff: number;
  readonly arenaBytes: number;
  private body: NativeBlock | null = null;
  /** A large answer body kept in native memory for the fast lane (readResponse(true)). */
  private readonly held = new NativeBody();
  /** The result of readResponse, reused: valid until the slot's next call. */
  private readonly out: PluginResponse = newPluginResponse();
  /** The response struct, and the template it is reset to before each call. */
  private readonly respHead: Uint32Array;
  private readonly respInit: Uint32Array;

  constructor(arenaBytes: number, maxHeaderBytes: number) {
    const headersOff = REQUEST.size;
    this.stringsStart = headersOff + MAX_HEADERS * HEADER.size;
    this.req = allocBlock(this.stringsStart + maxHeaderBytes + 256);
    this.resp = allocBlock(RESPONSE.size + arenaBytes);
    this.reqU32 = new Uint32Array(this.req.buf.buffer, this.req.buf.byteOffset, this.req.size >>> 2);
    this.respU32 = new Uint32Array(this.resp.buf.buffer, this.resp.buf.byteOffset, this.resp.size >>> 2);
    this.respI32 = new Int32Array(this.resp.buf.buffer, this.resp.buf.byteOffset, RESPONSE.size >>> 2);
    this.reqU8 = new Uint8Array(this.req.buf.buffer, this.req.buf.byteOffset, this.req.size);
    this.headersAddr = this.req.addr + headersOff;
    this.arenaOff = RESPONSE.size;
    this.arenaAddr = this.resp.addr + RESPONSE.size;
    this.arenaBytes = arenaBytes;
    // Addresses inside the request block are written as (low + offset, high)
    // with integer arithmetic, valid while the block does not straddle a 4 GiB
    // boundary; otherwise fall back to the general split.
    this.reqLo = this.req.addr % TWO32;
    this.reqHi = Math.floor(this.req.addr / TWO32);
    this.reqStraddles = this.reqLo + this.req.size >= TWO32;

    this.setPtr(this.reqU32, RQ.headers, this.headersAddr);
    this.reqU32[RQ.host_abi_version >>> 2] = ABI_VERSION;

    // Response template: body in the arena, the whole arena free.
    this.setPtr(this.respU32, RS.body, this.arenaAddr);
    this.setPtr(this.respU32, RS.body_cap, arenaBytes);
    this.setPtr(this.respU32, RS.arena, this.arenaAddr);
    this.setPtr(this.respU32, RS.arena_size, arenaBytes);
    this.setPtr(this.respU32, RS.arena_top, arenaBytes);
    this.respHead = new Uint32Array(this.resp.buf.buffer, this.resp.buf.byteOffset, RESPONSE.size >>> 2);
    this.respInit = this.respHead.slice();
  }

  private setPtr(u32: Uint32Array, off: number, value: number): void {
    u32[off >>> 2] = value % TWO32;
    u32[(off >>> 2) + 1] = (value / TWO32) >>> 0;
  }

  private getPtr(u32: Uint32Array, off: number): number {
    return u32[off >>> 2] + u32[(off >>> 2) + 1] * TWO32;
  }

  /** Store the address of request-block offset `at` into the field at byte offset `field`. */
  private setReqAddr(field: number, at: number): void {
    if (this.reqStraddles) {
      this.setPtr(this.reqU32, field, this.req.addr + at);
      return;
    }
    const u32 = this.reqU32;
    u32[field >>> 2] = this.reqLo + at;
    u32[(field >>> 2) + 1] = this.reqHi;
  }

  /** Store a length (a small integer) into a size_t field. */
  private setLen(field: number, len: number): void {
    const u32 = this.reqU32;
    u32[field >>> 2] = len;
    u32[(field >>> 2) + 1] = 0;
  }

  /** Write a latin1 string at offset; short strings in JS (a native call costs more than the copy). */
  private writeStr(s: string, off: number): number {
    const n = s.length;
    if (n > 32) return (this.req.buf as Latin1WriteBuffer).latin1Write(s, off);
    const u8 = this.reqU8;
    for (let i = 0; i < n; i++) u8[off + i] = s.charCodeAt(i);
    return n;
  }

  /**
   * Write the request into the slot. Returns false when it does not fit (only
   * possible when node:http's header limits were raised above the slot's).
   */
  fillRequest(req: RequestLike, body: Buffer | null): boolean {
    const u32 = this.reqU32;
    const limit = this.req.size;
    let off = this.stringsStart;

    const method = req.method!;
    if (off + method.length > limit) return false;
    this.setReqAddr(RQ.method, off);
    this.setLen(RQ.method_len, method.length);
    off += this.writeStr(method, off);

    const target = req.url!;
    if (off + target.length > limit) return false;
    this.setReqAddr(RQ.target, off);
    this.setLen(RQ.target_len, target.length);
    off += this.writeStr(target, off);

    const raw = req.rawHeaders;
    const n = raw.length >>> 1;
    if (n > MAX_HEADERS) return false;
    let h = REQUEST.size;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i];
      const value = raw[i + 1];
      if (off + name.length + value.length > limit) return false;
      this.setReqAddr(h + HD.name, off);
      this.setLen(h + HD.name_len, name.length);
      off += this.writeStr(name, off);
      this.setReqAddr(h + HD.value, off);
      this.setLen(h + HD.value_len, value.length);
      off += this.writeStr(value, off);
      h += HEADER.size;
    }
    this.setLen(RQ.headers_len, n);

    const peer = peerOf(req.socket);
    const remote = peer.address;
    if (off + remote.length > limit) return false;
    this.setReqAddr(RQ.remote_addr, off);
    this.setLen(RQ.remote_addr_len, remote.length);
    off += this.writeStr(remote, off);
    u32[RQ.remote_port >>> 2] = peer.port | (req.httpVersionMajor << 16) | (req.httpVersionMinor << 24);

    const length = body === null ? 0 : body.length;
    if (length === 0) {
      this.setLen(RQ.body, 0);
      this.setLen(RQ.body_len, 0);
    } else {
      if (this.body === null || this.body.size < length) {
        if (this.body) freeBlock(this.body);
        this.body = allocBlock(Math.max(length, 64 * 1024));
      }
      this.body.buf.set(body!, 0);
      this.setPtr(u32, RQ.body, this.body.addr);
      this.setLen(RQ.body_len, length);
    }
    return true;
  }

  /** Reset the response struct before a call. */
  resetResponse(): void {
    // A held body not sent (its answer threw on the way): the arena is about to be reused.
    if (this.held.live) this.held.release();
    // A typed-array set is a plain memcpy; Buffer#copy adds a JS layer of argument checks.
    this.respHead.set(this.respInit);
  }

  /**
   * Copy the plugin's response out of native memory, then free what it took
   * from malloc. `hold`: a body larger than SMALL_BODY (or any in a malloc'd
   * block) stays where it is, as a HeldBody the caller sends or releases before
   * the slot's next call (the fast lane's inline answers).
   */
  readResponse(hold?: false): PluginResponse & { body: Buffer | string };
  readResponse(hold: boolean): PluginResponse;
  readResponse(hold = false): PluginResponse {
    const u32 = this.respU32;
    const rbuf = this.resp.buf;
    const out = this.out;
    out.status = this.respI32[RS.status >>> 2];

    const reasonAddr = this.getPtr(u32, RS.reason);
    out.reason = reasonAddr === 0 ? undefined : this.str(reasonAddr, this.getPtr(u32, RS.reason_len));

    const headers: string[] = [];
    out.headers = headers;
    out.hasContentType = false;
    let guard = this.getPtr(u32, RS.headers_len);
    // Walk the header list by block offsets (integer arithmetic) while nodes
    // live in the arena, as flexi_add_header puts them; anything else is copied out.
    let nodeAddr = this.getPtr(u32, RS.headers);
    while (nodeAddr !== 0 && guard-- > 0) {
      let nu32 = u32;
      let at = this.respOffset(nodeAddr, RESP_HEADER.size);
      if (at < 0 || (at & 3) !== 0) {
        const copy = this.copyOut(nodeAddr, RESP_HEADER.size);
        nu32 = new Uint32Array(copy.buffer, copy.byteOffset, RESP_HEADER.size >>> 2);
        at = 0;
      }
      at >>>= 2;
      const nameLen = nu32[at + (RH.name_len >>> 2)];
      const valueLen = nu32[at + (RH.value_len >>> 2)];
      const name = this.str(nu32[at + (RH.name >>> 2)] + nu32[at + (RH.name >>> 2) + 1] * TWO32, nameLen);
      const valueAddr = nu32[at + (RH.value >>> 2)] + nu32[at + (RH.value >>> 2) + 1] * TWO32;
      nodeAddr = nu32[at + (RH.next >>> 2)] + nu32[at + (RH.next >>> 2) + 1] * TWO32;
      if (nameLen === 12 && sameLower(name, 'content-type')) out.hasContentType = true;
      // The host frames the body itself; a plugin's own framing headers would contradict it.
      else if ((nameLen === 14 && sameLower(name, 'content-length')) || (nameLen === 17 && sameLower(name, 'transfer-encoding'))) continue;
      headers.push(name, this.str(valueAddr, valueLen));
    }

    const bodyAddr = this.getPtr(u32, RS.body);
    const bodyLen = this.getPtr(u32, RS.body_len);
    if (bodyAddr === this.arenaAddr) {
      if (bodyLen <= CACHED_LEN) {
        out.body = this.strings.decode(rbuf, this.arenaOff, bodyLen);
      } else if (bodyLen <= SMALL_BODY) {
        out.body = (rbuf as Latin1Buffer).latin1Slice(this.arenaOff, this.arenaOff + bodyLen);
      } else if (hold) {
        out.body = this.held.hold(this.arenaAddr, bodyLen, false);
      } else {
        out.body = Buffer.allocUnsafe(bodyLen);
        rbuf.copy(out.body, 0, this.arenaOff, this.arenaOff + bodyLen);
      }
    } else if (hold && bodyLen > 0) {
      out.body = this.held.hold(bodyAddr, bodyLen, true);
    } else {
      const body = Buffer.allocUnsafeSlow(bodyLen);
      if (bodyLen > 0) copyFromNative(bodyAddr, body, bodyLen);
      freeAt(bodyAddr);
      out.body = body;
    }

    const arenaTop = this.getPtr(u32, RS.arena_top);
    out.arenaUsed = this.arenaBytes - arenaTop + (bodyAddr === this.arenaAddr ? bodyLen : 0);
    out.heapBytes = this.getPtr(u32, RS.heap_bytes);
    let block = this.getPtr(u32, RS.heap);
    while (block !== 0) {
      const next = readPtr(this.copyOut(block, HEAP_BLOCK.size), HEAP_BLOCK.offsets.next);
      freeAt(block);
      block = next;
    }
    return out;
  }

  /** Offset within the response block of [addr, addr+len) when it lies in the arena, else -1. */
  private respOffset(addr: number, len: number): number {
    const off = addr - this.resp.addr;
    return off >= this.arenaOff && off + len <= this.resp.size ? off : -1;
  }

  private str(addr: number, len: number): string {
    if (len === 0) return '';
    const at = this.respOffset(addr, len);
    if (at >= 0) {
      return this.strings.decode(this.resp.buf, at, len);
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
    this.held.close();
    freeBlock(this.req);
    freeBlock(this.resp);
    if (this.body) freeBlock(this.body);
    this.body = null;
  }
}

/** Node's fast latin1 encoder (present on every Buffer, absent from @types/node). */
type Latin1WriteBuffer = Buffer & { latin1Write(s: string, off: number): number };

function readPtr(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * TWO32;
}
