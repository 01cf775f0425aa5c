/**
 * The fast lane reads every connection into one shared buffer
 * (src/http/socket-reads.ts), which the next read of any connection
 * overwrites: nothing may keep a view of it. These tests would fail if
 * anything did. Many connections at once send different bytes (each its own
 * seed) as pipelined requests, bodies split across reads, requests arriving
 * while an upstream answer is in progress, and requests after a hand-off to
 * node:http, to an inline native route echoing its body and an upstream
 * route whose origin echoes it; every answer must be node:http's
 * (--no-fast-lane) byte for byte, Date aside.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compilePlugin, eventually, exampleSource, RawConnection, responseBody, scrape, sleep, startFlexilib, tempDir, writeConfig, type Flexilib } from '@flexilib/test-support';

/** Bytes that differ by connection and request (a byte from another shows). */
const bytes = (n: number, seed: number) => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed * 13) & 0xff;
  return b;
};
const get = (target: string) => Buffer.from(`GET ${target} HTTP/1.1\r\nHost: test\r\n\r\n`, 'latin1');
const post = (target: string, body: Buffer) => Buffer.concat([Buffer.from(`POST ${target} HTTP/1.1\r\nHost: test\r\nContent-Length: ${body.length}\r\n\r\n`, 'latin1'), body]);
/** Node's own: a chunked body (the lane hands it to node:http). */
const chunked = (target: string, body: Buffer) =>
  Buffer.concat([Buffer.from(`POST ${target} HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n`, 'latin1'), body, Buffer.from('\r\n0\r\n\r\n')]);
/** Dates differ by the second (the origin's and the server's own). */
const undated = (b: Buffer) => b.toString('latin1').replace(/\r\ndate: [^\r]*/gi, '\r\nDate: -');

/** One connection's script: writes, each after a pause (ms) so they arrive as separate reads; the answers it expects. */
interface Script {
  writes: Array<[pauseMs: number, data: Buffer]>;
  answers: number;
}

/** Split `buf` at the given offsets into writes `pauseMs` apart. */
function pieces(buf: Buffer, at: number[], pauseMs = 8): Array<[number, Buffer]> {
  const out: Array<[number, Buffer]> = [];
  let from = 0;
  for (const to of [...at, buf.length]) {
    out.push([from === 0 ? 0 : pauseMs, buf.subarray(from, to)]);
    from = to;
  }
  return out;
}

describe('fast lane: one shared read buffer', () => {
  const tmp = tempDir();
  let origin: http.Server;
  let lane: Flexilib;
  let plain: Flexilib;

  before(async () => {
    // The origin echoes method, target and body; a target with /slow answers after 150 ms.
    origin = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const answer = Buffer.concat([Buffer.from(`${req.method} ${req.url} ${req.headers['content-length'] ?? '-'}\n`), ...chunks]);
        if (req.url?.includes('/slow')) setTimeout(() => res.end(answer), 150);
        else res.end(answer);
      });
    });
    origin.listen(0, '127.0.0.1');
    await once(origin, 'listening');
    await compilePlugin(exampleSource, path.join(tmp.dir, 'example.so'));
    const port = (origin.address() as AddressInfo).port;
    // /one's pool has one origin connection: requests queue for it, keeping their bodies.
    const config = writeConfig(
      tmp.dir,
      ['/up = upstream:origin', '/one = upstream:one', '/ = example.so', '', '[upstream.origin]', `servers = http://127.0.0.1:${port}`, 'health_interval = 30s', '[upstream.one]', `servers = http://127.0.0.1:${port}`, 'health_interval = 30s', 'max_connections = 1'].join('\n'),
    );
    const args = ['--keep-alive-timeout', '10000'];
    [lane, plain] = await Promise.all([startFlexilib({ config, workers: 1, args: [...args, '--log-level', 'debug'] }), startFlexilib({ config, workers: 1, args: [...args, '--no-fast-lane'] })]);
    // The library loads on first use, through node:http; the lane serves it once loaded.
    for (const f of [lane, plain]) await run(f, [{ writes: [[0, get('/')]], answers: 1 }]);
  });

  after(async () => {
    const codes = await Promise.all([lane?.stop(), plain?.stop()]);
    origin?.close();
    tmp.cleanup();
    assert.deepEqual(codes, [0, 0]);
  });

  /** Run the scripts at once, each on its own connection, against `f`; each connection's answers, raw. */
  async function run(f: Flexilib, scripts: Script[]): Promise<Buffer[][]> {
    return Promise.all(
      scripts.map(async (s) => {
        const c = new RawConnection(f.port);
        c.sock.setNoDelay(true);
        const answers = c.responses(s.answers, [], 30_000);
        for (const [pause, data] of s.writes) {
          if (pause > 0) await sleep(pause);
          c.write(data);
        }
        const out = await answers;
        c.close();
        return out;
      }),
    );
  }

  /** The scripts' answers from the lane are node:http's, byte for byte; the lane's, returned. */
  async function sameAsNode(scripts: Script[]): Promise<Buffer[][]> {
    const fast = await run(lane, scripts);
    const slow = await run(plain, scripts);
    for (let i = 0; i < scripts.length; i++) {
      assert.equal(fast[i].length, scripts[i].answers);
      for (let k = 0; k < fast[i].length; k++) assert.equal(undated(fast[i][k]), undated(slow[i][k]), `connection ${i}, answer ${k}`);
    }
    return fast;
  }

  const laneCount = async (route: string) => (await scrape(lane.adminPort)).sum('flexilib_fast_lane_requests_total', { route });

  it('reads its connections into the shared buffer (not data events)', async () => {
    const line = await eventually('the debug line on how the lane reads', () => lane.logs.find((l) => l.msg === 'fast lane: how connections are read'));
    assert.equal(line.reads, 'shared-buffer');
  });

  it('many connections at once: pipelined requests and bodies split across reads, native and upstream, each its own bytes', { timeout: 120_000 }, async () => {
    const scripts: Script[] = [];
    for (let i = 0; i < 16; i++) {
      const body = bytes(3000 + i * 97, i);
      const small = bytes(40 + i, i + 100);
      const target = i % 2 === 0 ? `/echo/${i}` : `/up/echo/${i}`;
      const first = post(target, body);
      const second = Buffer.concat([get(`/echo/get${i}`), post(`/up/p${i}`, small)]);
      const one = Buffer.concat([first, second, get(`/up/get${i}`)]);
      // Split mid-body only (a head split across reads is node:http's): the
      // first body in three, its end with the pipelined requests behind it,
      // and the small body in two.
      scripts.push({ writes: pieces(one, [100, 1500, first.length - 10 - i, first.length + second.length - 20]), answers: 4 });
    }
    const before = { native: await laneCount('/'), up: await laneCount('/up') };
    const fast = await sameAsNode(scripts);
    for (let i = 0; i < scripts.length; i++) {
      const expected = Buffer.concat([Buffer.from(i % 2 === 0 ? `POST /echo/${i}\n` : `POST /up/echo/${i} ${3000 + i * 97}\n`), bytes(3000 + i * 97, i)]);
      assert.ok(responseBody(fast[i][0]).equals(expected), `connection ${i}: its own body back`);
      assert.ok(responseBody(fast[i][2]).equals(Buffer.concat([Buffer.from(`POST /up/p${i} ${40 + i}\n`), bytes(40 + i, i + 100)])), `connection ${i}: its own small body back`);
    }
    // All of it went through the lane (none of it handed to node:http).
    await eventually('the lane served all 64', async () => ((await laneCount('/')) - before.native === 24 && (await laneCount('/up')) - before.up === 40 ? true : undefined), 5000);
  });

  it('a body in many small reads beside other connections sending large ones', { timeout: 120_000 }, async () => {
    const trickled = post('/echo/trickle', bytes(2000, 7));
    const at = Array.from({ length: 40 }, (_, k) => 50 + k * 45);
    const scripts: Script[] = [{ writes: pieces(trickled, at, 3), answers: 1 }];
    const upTrickled = post('/up/trickle', bytes(1500, 8));
    scripts.push({ writes: pieces(upTrickled, Array.from({ length: 30 }, (_, k) => 60 + k * 40), 3), answers: 1 });
    for (let i = 0; i < 6; i++) {
      const big = Buffer.concat([post('/echo/big', bytes(60_000, 30 + i)), post('/up/big', bytes(50_000, 40 + i))]);
      scripts.push({ writes: pieces(big, [30_000, 60_100]), answers: 2 });
    }
    const fast = await sameAsNode(scripts);
    assert.ok(responseBody(fast[0][0]).equals(Buffer.concat([Buffer.from('POST /echo/trickle\n'), bytes(2000, 7)])));
    assert.ok(responseBody(fast[1][0]).equals(Buffer.concat([Buffer.from('POST /up/trickle 1500\n'), bytes(1500, 8)])));
  });

  it('requests that arrive while an upstream answer is in progress wait intact, split or pipelined', { timeout: 120_000 }, async () => {
    const scripts: Script[] = [];
    for (let i = 0; i < 8; i++) {
      const behind = Buffer.concat([post(`/up/behind${i}`, bytes(900 + i, 50 + i)), get(`/echo/after${i}`), post(`/echo/b${i}`, bytes(300, 60 + i))]);
      // Pipelined with the slow request in one write, or sent while its answer is awaited (in two reads).
      if (i % 2 === 0) scripts.push({ writes: [[0, Buffer.concat([get(`/up/slow/${i}`), behind])]], answers: 4 });
      else scripts.push({ writes: [[0, get(`/up/slow/${i}`)], [30, behind.subarray(0, 500)], [30, behind.subarray(500)]], answers: 4 });
    }
    // Other connections keep the shared buffer busy meanwhile.
    for (let i = 0; i < 4; i++) {
      const noise: Array<[number, Buffer]> = [];
      for (let k = 0; k < 10; k++) noise.push([15, post(`/echo/noise${i}`, bytes(4000, 200 + i * 10 + k))]);
      scripts.push({ writes: noise, answers: 10 });
    }
    const fast = await sameAsNode(scripts);
    for (let i = 0; i < 8; i++) assert.ok(responseBody(fast[i][1]).equals(Buffer.concat([Buffer.from(`POST /up/behind${i} ${900 + i}\n`), bytes(900 + i, 50 + i)])), `connection ${i}`);
  });

  it('requests queued for an origin connection keep their own bodies while others are read', { timeout: 120_000 }, async () => {
    const scripts: Script[] = [];
    for (let i = 0; i < 8; i++) scripts.push({ writes: [[i * 5, Buffer.concat([post(`/one/slow/${i}`, bytes(1000 + i, 20 + i)), post(`/echo/q${i}`, bytes(3000, 30 + i))])]], answers: 2 });
    const fast = await sameAsNode(scripts);
    for (let i = 0; i < 8; i++) assert.ok(responseBody(fast[i][0]).equals(Buffer.concat([Buffer.from(`POST /one/slow/${i} ${1000 + i}\n`), bytes(1000 + i, 20 + i)])), `connection ${i}`);
  });

  it('hands connections to node:http mid-stream with private bytes, and node:http serves on, while others are read', { timeout: 120_000 }, async () => {
    const scripts: Script[] = [];
    for (let i = 0; i < 8; i++) {
      // Lane first, then a chunked body (node's from there on) and more after it on the same connection.
      const one = Buffer.concat([get(`/echo/first${i}`), chunked(`/echo/chunked${i}`, bytes(700, 80 + i)), post(`/echo/later${i}`, bytes(2500, 90 + i)), post(`/up/later${i}`, bytes(1200, 100 + i)), get(`/up/last${i}`)]);
      scripts.push({ writes: pieces(one, [60, 400, 1700 + i]), answers: 5 });
    }
    for (let i = 0; i < 4; i++) {
      const noise: Array<[number, Buffer]> = [];
      for (let k = 0; k < 6; k++) noise.push([10, Buffer.concat([post(`/echo/n${i}`, bytes(5000, 150 + k)), post(`/up/n${i}`, bytes(3000, 170 + k))])]);
      scripts.push({ writes: noise, answers: 12 });
    }
    const fast = await sameAsNode(scripts);
    for (let i = 0; i < 8; i++) {
      assert.ok(responseBody(fast[i][1]).equals(Buffer.concat([Buffer.from(`POST /echo/chunked${i}\n`), bytes(700, 80 + i)])), `connection ${i}: chunked`);
      assert.ok(responseBody(fast[i][3]).equals(Buffer.concat([Buffer.from(`POST /up/later${i} 1200\n`), bytes(1200, 100 + i)])), `connection ${i}: after the hand-off`);
    }
  });
});
