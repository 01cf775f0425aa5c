/**
 * An answer body sent from native memory (src/native/held-body.ts), over real
 * loopback sockets: the client gets the head and the body byte for byte
 * whether the kernel takes them at once or not, and what it did not take was
 * copied, so the memory can be reused (the slot's next call) before the
 * client has read it. Behind bytes already queued it goes by node's write.
 */
import assert from 'node:assert/strict';
import net, { type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { allocBlock, freeBlock, type NativeBlock } from '../src/native/ffi.js';
import { NativeBody } from '../src/native/held-body.js';

/** `n` bytes, every byte value in turn from `seed` (so a byte moved or lost shows). */
const pattern = (n: number, seed: number) => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
};

describe('a body sent from native memory', () => {
  let server: net.Server;
  let accepted: Array<(s: Socket) => void> = [];
  const blocks: NativeBlock[] = [];

  before(async () => {
    server = net.createServer((s) => accepted.shift()?.(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    for (const b of blocks) freeBlock(b);
    await new Promise<void>((r) => server.close(() => r()));
  });

  /** A connected pair: the server's socket (the one written) and the client's, paused (not reading). */
  async function pair(): Promise<{ out: Socket; client: Socket }> {
    const got = new Promise<Socket>((r) => accepted.push(r));
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    client.pause();
    const out = await got;
    return { out, client };
  }

  /** Read `n` bytes from the client, resuming it. */
  function read(client: Socket, n: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const parts: Buffer[] = [];
      let have = 0;
      const t = setTimeout(() => reject(new Error(`read ${have} of ${n} bytes in 20 s`)), 20_000);
      client.on('data', (c: Buffer) => {
        parts.push(c);
        have += c.length;
        if (have >= n) {
          clearTimeout(t);
          resolve(Buffer.concat(parts));
        }
      });
      client.resume();
    });
  }

  /** Native memory holding `bytes`. */
  function native(bytes: Buffer): NativeBlock {
    const b = allocBlock(bytes.length);
    blocks.push(b);
    bytes.copy(b.buf);
    return b;
  }

  it('writes head and body in one go to a reading client', async () => {
    const { out, client } = await pair();
    const head = 'HTTP/1.1 200 OK\r\ncontent-length: 65547\r\n\r\n';
    const body = pattern(65547, 3);
    const block = native(body);
    const held = new NativeBody().hold(block.addr, body.length, false);
    held.sendAfter(out, head);
    assert.equal(held.live, false, 'released once sent');
    const got = await read(client, head.length + body.length);
    assert.ok(got.equals(Buffer.concat([Buffer.from(head, 'latin1'), body])));
    out.destroy();
    client.destroy();
  });

  it('copies what the kernel does not take: the memory is reused at once, the client still reads the original', async () => {
    const { out, client } = await pair();
    const head = 'HTTP/1.1 200 OK\r\nx: y\r\n\r\n';
    // Far more than loopback's socket buffers hold while the client reads nothing.
    const body = pattern(16 * 1024 * 1024, 9);
    const block = native(body);
    const held = new NativeBody().hold(block.addr, body.length, false);
    held.sendAfter(out, head);
    assert.ok(out.writableLength > 0, 'the kernel took only part: the rest waits in node');
    assert.ok(out.writableLength < body.length, 'the kernel took some of it directly');
    // The slot's next call writes over the memory before the client has read anything.
    block.buf.fill(0xee);
    const got = await read(client, head.length + body.length);
    assert.equal(got.length, head.length + body.length);
    assert.ok(got.equals(Buffer.concat([Buffer.from(head, 'latin1'), body])), 'the answer arrived intact');
    out.destroy();
    client.destroy();
  });

  it('goes behind bytes already queued on the socket, in order, from a copy', async () => {
    const { out, client } = await pair();
    const first = pattern(16 * 1024 * 1024, 1);
    out.write(first);
    assert.ok(out.writableLength > 0, 'the first write is still queued');
    const head = 'HTTP/1.1 200 OK\r\n\r\n';
    const body = pattern(100_000, 5);
    const block = native(body);
    const held = new NativeBody().hold(block.addr, body.length, false);
    held.sendAfter(out, head);
    block.buf.fill(0);
    const got = await read(client, first.length + head.length + body.length);
    assert.ok(got.equals(Buffer.concat([first, Buffer.from(head, 'latin1'), body])));
    out.destroy();
    client.destroy();
  });

  it('hands its bytes over as a Buffer (take) or lets them go unsent (release), once', () => {
    const body = pattern(40_000, 2);
    const block = native(body);
    const held = new NativeBody().hold(block.addr, body.length, false);
    const copy = held.take();
    assert.ok(copy.equals(body));
    assert.equal(held.live, false);
    held.hold(block.addr, 10, false);
    held.release();
    held.release();
    assert.equal(held.live, false);
  });
});
