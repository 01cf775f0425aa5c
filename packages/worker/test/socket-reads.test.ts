/**
 * Reading accepted sockets into one shared buffer (src/http/socket-reads.ts),
 * on real loopback sockets: reads arrive through the callback with no 'data'
 * event, 'end', 'close' and timeouts still fire, pause() stops reads; after
 * toStream() a socket is an ordinary stream again, its reads private copies,
 * including one node:http takes over and gives back (an upgrade unconsumes
 * its parser, so its reads come back through the user buffer).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { SharedReads } from '../src/http/socket-reads.js';

/** A loopback server whose accepted sockets go to `onSocket`; its port. */
async function listen(onSocket: (s: Socket) => void): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer(onSocket);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

async function connect(port: number): Promise<Socket> {
  const c = net.connect(port, '127.0.0.1');
  await once(c, 'connect');
  return c;
}

/** Resolves when `cond()` holds, checked on every call of the returned poke(). */
function waiter(cond: () => boolean): { done: Promise<void>; poke: () => void } {
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  return { done, poke: () => cond() && resolve() };
}

describe('shared-buffer socket reads', () => {
  const reads = SharedReads.probe();

  it('are available on this node (else the fast lane falls back to data events)', () => {
    assert.ok(reads, `node ${process.version} lacks kBuffer/kBufferCb on net.Socket`);
  });

  it('read every accepted socket into the one buffer, without data events; end, close and timeouts still fire', { timeout: 10_000 }, async () => {
    const got = new Map<Socket, string>();
    const events: string[] = [];
    let dataEvents = 0;
    let accepted = 0;
    const w = waiter(() => events.filter((e) => e === 'close').length === 3);
    const { server, port } = await listen((s) => {
      accepted++;
      got.set(s, '');
      assert.ok(
        reads!.attach(s, (n, buf) => {
          assert.equal(buf, reads!.buffer);
          got.set(s, got.get(s)! + buf.toString('latin1', 0, n));
        }),
      );
      s.on('data', () => dataEvents++);
      s.setTimeout(150, () => {
        events.push('timeout');
        s.end();
      });
      s.on('end', () => events.push('end'));
      s.on('close', () => {
        events.push('close');
        w.poke();
      });
    });
    const clients = await Promise.all([connect(port), connect(port), connect(port)]);
    for (let round = 0; round < 5; round++) {
      clients.forEach((c, i) => c.write(`c${i}r${round};`));
      await new Promise((r) => setTimeout(r, 20));
    }
    clients[0].end();
    clients[1].end();
    // The third says nothing more: its timeout ends it.
    for (const c of clients) c.resume();
    await w.done;
    server.close();
    assert.equal(accepted, 3);
    const texts = [...got.values()].sort();
    assert.deepEqual(texts, [0, 1, 2].map((i) => [0, 1, 2, 3, 4].map((r) => `c${i}r${r};`).join('')));
    // 'data' listeners get nothing: reads go to the callback alone.
    assert.equal(dataEvents, 0);
    assert.ok(events.includes('timeout'), `a socket idle past its timeout times out (events: ${events.join(',')})`);
    assert.equal(events.filter((e) => e === 'end').length, 3, 'every client FIN is an end');
  });

  it('stop reading while paused and go on after resume', { timeout: 10_000 }, async () => {
    let total = '';
    let sock!: Socket;
    const w = waiter(() => total.length >= 6);
    const { server, port } = await listen((s) => {
      sock = s;
      reads!.attach(s, (n, buf) => {
        total += buf.toString('latin1', 0, n);
        w.poke();
      });
    });
    const c = await connect(port);
    await new Promise((r) => setTimeout(r, 30));
    sock.pause();
    c.write('abc');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(total, '', 'nothing read while paused');
    sock.resume();
    c.write('def');
    await w.done;
    assert.equal(total, 'abcdef');
    c.destroy();
    sock.destroy();
    server.close();
  });

  it('after toStream(), read as ordinary data: private copies kept while other sockets overwrite the buffer', { timeout: 10_000 }, async () => {
    const kept: Buffer[] = [];
    const w = waiter(() => Buffer.concat(kept).length === 3 * 1000);
    const others: Socket[] = [];
    let n = 0;
    const { server, port } = await listen((s) => {
      reads!.attach(s, () => {});
      if (n++ === 0) {
        reads!.toStream(s);
        s.on('data', (chunk: Buffer) => {
          kept.push(chunk);
          w.poke();
        });
      } else others.push(s);
    });
    const streamed = await connect(port);
    const noisy = await Promise.all([connect(port), connect(port)]);
    for (let i = 0; i < 3; i++) {
      streamed.write(Buffer.alloc(1000, 0x61 + i));
      for (const c of noisy) c.write(Buffer.alloc(4000, 0x7a));
      await new Promise((r) => setTimeout(r, 20));
    }
    await w.done;
    const all = Buffer.concat(kept);
    assert.equal(all.toString('latin1'), 'a'.repeat(1000) + 'b'.repeat(1000) + 'c'.repeat(1000));
    for (const c of [streamed, ...noisy, ...others]) c.destroy();
    server.close();
  });

  it('a socket node:http takes over (consumed by its parser) and gives back on an upgrade reads intact bytes after', { timeout: 10_000 }, async () => {
    const web = http.createServer((_req, res) => res.end('plain'));
    const upgraded = new Promise<string>((resolve) => {
      web.on('upgrade', (_req, socket: Socket, head: Buffer) => {
        let text = head.toString('latin1');
        socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n');
        socket.on('data', (chunk: Buffer) => {
          text += chunk.toString('latin1');
          if (text.endsWith('.')) resolve(text);
        });
      });
    });
    const noise: Socket[] = [];
    let first = true;
    const { server, port } = await listen((s) => {
      if (first) {
        first = false;
        reads!.attach(s, () => {});
        // As the fast lane hands off: reads as stream data, then node:http's own listener.
        reads!.toStream(s);
        web.emit('connection', s);
      } else {
        noise.push(s);
        reads!.attach(s, () => {});
      }
    });
    const c = await connect(port);
    let answer = '';
    c.on('data', (b: Buffer) => (answer += b.toString('latin1')));
    c.write('GET / HTTP/1.1\r\nHost: t\r\n\r\n');
    while (!answer.includes('plain')) await new Promise((r) => setTimeout(r, 10));
    c.write('GET /up HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n');
    while (!answer.includes('101')) await new Promise((r) => setTimeout(r, 10));
    const noisy = await connect(port);
    for (let i = 0; i < 5; i++) {
      c.write(`part${i}-`);
      noisy.write('z'.repeat(2000));
      await new Promise((r) => setTimeout(r, 15));
    }
    c.write('.');
    assert.equal(await upgraded, 'part0-part1-part2-part3-part4-.');
    for (const s of [c, noisy, ...noise]) s.destroy();
    server.close();
    web.close();
  });
});
