/**
 * HTTP differential tests: hostile byte sequences (CL/TE conflicts, bare LF
 * and CR, control bytes, obs-fold, odd Content-Length spellings, pipelines,
 * dot segments, Upgrade, splits at every byte) sent to four servers that must
 * frame them identically:
 *
 *   plugin lane    /echo = example.so       (fast lane in front of node:http)
 *   plugin node    /echo = example.so       --no-fast-lane
 *   upstream lane  /echo = upstream:origin  (an origin that records what it gets)
 *   upstream node  /echo = upstream:origin  --no-fast-lane
 *
 * The plugin and the origin answer alike ("METHOD TARGET\n" and the body), so
 * the four transcripts (status and body of each answer, and whether the
 * server closed) must be equal. No request marked "smuggled" may reach the
 * plugin or the origin, and every worker still answers after each case.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compilePlugin, exampleSource, request, sleep, startFlexilib, tempDir, writeConfig, type Flexilib } from '@flexilib/test-support';

interface Answer {
  status: number;
  body: string;
}
interface Transcript {
  answers: Answer[];
  /** The server closed the connection (within the deadline). */
  closed: boolean;
  /** Bytes left that are no whole answer. */
  rest: string;
}

/** Ends most cases: answered, then the server closes, so a transcript needs no idle wait. */
const SENTINEL = 'GET /echo/sentinel HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n';
const DEADLINE_MS = 2500;

interface Case {
  name: string;
  bytes: string;
  /** Answer i answers a HEAD (no body whatever its headers say). */
  heads?: boolean[];
  /** Send byte by byte. */
  split?: boolean;
  /** No sentinel after it (the case ends its connection, or waits for bytes that never come). */
  bare?: boolean;
  /** The statuses all four must answer, and close after (where all four could be wrong alike: the lane hands some requests to node:http). */
  statuses?: number[];
}

const g = (target: string, headers: string[] = [], version = 'HTTP/1.1') => `GET ${target} ${version}\r\nHost: t\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`;
const post = (target: string, headers: string[], body: string) => `POST ${target} HTTP/1.1\r\nHost: t\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n${body}`;
const SMUGGLED = g('/echo/smuggled');

const CORPUS: Case[] = [
  { name: 'plain GET', bytes: g('/echo/a') },
  { name: 'pipeline of three', bytes: g('/echo/a') + g('/echo/b?q=1') + post('/echo/c', ['Content-Length: 3'], 'abc') },
  { name: 'pipeline split at every byte', bytes: g('/echo/a') + post('/echo/c', ['Content-Length: 3'], 'abc'), split: true },
  { name: 'CL and TE together', bytes: post('/echo/a', ['Content-Length: 4', 'Transfer-Encoding: chunked'], `0\r\n\r\n${SMUGGLED}`) },
  { name: 'TE then CL', bytes: post('/echo/a', ['Transfer-Encoding: chunked', 'Content-Length: 40'], `0\r\n\r\n${SMUGGLED}`) },
  { name: 'CL and TE split at every byte', bytes: post('/echo/a', ['Content-Length: 4', 'Transfer-Encoding: chunked'], `0\r\n\r\n${SMUGGLED}`), split: true },
  { name: 'TE xchunked', bytes: post('/echo/a', ['Transfer-Encoding: xchunked'], `0\r\n\r\n${SMUGGLED}`) },
  { name: 'TE chunked, identity', bytes: post('/echo/a', ['Transfer-Encoding: chunked, identity'], `0\r\n\r\n${SMUGGLED}`) },
  { name: 'TE with a space before the colon', bytes: post('/echo/a', ['Transfer-Encoding : chunked'], `0\r\n\r\n${SMUGGLED}`) },
  { name: 'TE obs-folded', bytes: post('/echo/a', ['Transfer-Encoding:', ' chunked'], `0\r\n\r\n${SMUGGLED}`) },
  { name: 'TE twice', bytes: post('/echo/a', ['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], `3\r\nabc\r\n0\r\n\r\n`) },
  { name: 'chunked with extensions', bytes: post('/echo/a', ['Transfer-Encoding: chunked'], `3;x=y\r\nabc\r\n0\r\n\r\n`) },
  { name: 'chunk size 0x3', bytes: post('/echo/a', ['Transfer-Encoding: chunked'], `0x3\r\nabc\r\n0\r\n\r\n${SMUGGLED}`) },
  { name: 'chunk lines ended by LF', bytes: post('/echo/a', ['Transfer-Encoding: chunked'], `3\nabc\n0\n\n${SMUGGLED}`) },
  { name: 'two different Content-Lengths', bytes: post('/echo/a', ['Content-Length: 3', 'Content-Length: 40'], `abc${SMUGGLED}`) },
  { name: 'two equal Content-Lengths', bytes: post('/echo/a', ['Content-Length: 3', 'Content-Length: 3'], 'abc') },
  { name: 'Content-Length +3', bytes: post('/echo/a', ['Content-Length: +3'], `abc${SMUGGLED}`) },
  { name: 'Content-Length 0x3', bytes: post('/echo/a', ['Content-Length: 0x3'], `abc${SMUGGLED}`) },
  { name: 'Content-Length 3 3', bytes: post('/echo/a', ['Content-Length: 3 3'], `abc${SMUGGLED}`) },
  { name: 'Content-Length 3,3', bytes: post('/echo/a', ['Content-Length: 3,3'], `abc${SMUGGLED}`) },
  { name: 'Content-Length 003', bytes: post('/echo/a', ['Content-Length: 003'], 'abc') },
  { name: 'Content-Length -1', bytes: post('/echo/a', ['Content-Length: -1'], `abc${SMUGGLED}`) },
  { name: 'Content-Length past 2^64', bytes: post('/echo/a', ['Content-Length: 99999999999999999999999'], `abc${SMUGGLED}`) },
  { name: 'Content-Length with a tab', bytes: g('/echo/a', ['Content-Length:\t0']) },
  { name: 'Content-Length 0 on a GET, then a pipeline', bytes: g('/echo/a', ['Content-Length: 0']) + g('/echo/b') },
  { name: 'GET with a body', bytes: `${g('/echo/a', ['Content-Length: 5'])}hello${g('/echo/b')}` },
  { name: 'bare LF line ends', bytes: 'GET /echo/a HTTP/1.1\nHost: t\n\n' },
  { name: 'bare CR in the head', bytes: 'GET /echo/a HTTP/1.1\rHost: t\r\n\r\n' },
  { name: 'bare CR in a value', bytes: g('/echo/a', ['X-A: a\rb']) },
  { name: 'NUL in a value', bytes: g('/echo/a', ['X-A: a\x00b']) },
  { name: 'SOH in a value', bytes: g('/echo/a', ['X-A: a\x01b']) },
  { name: 'DEL in a value', bytes: g('/echo/a', ['X-A: a\x7fb']) },
  { name: 'obs-text in a value', bytes: g('/echo/a', ['X-A: caf\xe9']) },
  { name: 'control byte in the target', bytes: g('/echo/a\x01b') },
  { name: 'obs-fold', bytes: g('/echo/a', ['X-A: a', ' b']) },
  { name: 'space before a colon', bytes: g('/echo/a', ['X-A : a']) },
  { name: 'empty header name', bytes: g('/echo/a', [': a']) },
  { name: 'no Host', bytes: 'GET /echo/a HTTP/1.1\r\nX-A: 1\r\n\r\n' },
  { name: 'two Hosts', bytes: g('/echo/a', ['Host: u']) },
  { name: 'two spaces in the request line', bytes: 'GET  /echo/a HTTP/1.1\r\nHost: t\r\n\r\n' },
  { name: 'lower-case method', bytes: 'get /echo/a HTTP/1.1\r\nHost: t\r\n\r\n' },
  { name: 'HTTP/1.0', bytes: g('/echo/a', [], 'HTTP/1.0'), bare: true },
  { name: 'HTTP/1.0 keep-alive, then a pipeline', bytes: g('/echo/a', ['Connection: keep-alive'], 'HTTP/1.0') + g('/echo/b') },
  { name: 'HTTP/2.0 in an HTTP/1 request line', bytes: g('/echo/a', [], 'HTTP/2.0') },
  { name: 'HTTP/1.1 with trailing junk', bytes: 'GET /echo/a HTTP/1.1x\r\nHost: t\r\n\r\n' },
  { name: 'absolute-form target', bytes: g('http://t/echo/a') },
  { name: 'dot segments climb out of the route', bytes: g('/echo/../other') },
  { name: 'dot segments into the route', bytes: g('/other/../echo/z') },
  { name: 'percent-encoded dot segments', bytes: g('/echo/%2e%2e/other') },
  { name: 'percent-encoded dot segments, mixed case', bytes: g('/echo/%2E%2e/echo/y?p=/../q') },
  { name: 'dot segments split at every byte', bytes: g('/echo/./x/%2E/../y'), split: true },
  { name: 'Upgrade without a listener, then a pipeline', bytes: g('/echo/a', ['Upgrade: websocket', 'Connection: Upgrade']) + g('/echo/b') },
  { name: 'Upgrade h2c', bytes: g('/echo/a', ['Upgrade: h2c', 'Connection: Upgrade, HTTP2-Settings', 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA']) },
  { name: 'Expect 100-continue', bytes: post('/echo/a', ['Content-Length: 3', 'Expect: 100-continue'], 'abc') },
  // lane-fuzz's counterexample, byte for byte: node:http attaches the HTTP/1.0 answer only on the
  // first answer's 'finish'; the socket must not be ended (the follower refused) before that.
  { name: 'HTTP/1.0 behind a keep-alive request, then a follower', bytes: 'GET / HTTP/1.1\r\nHost: test\r\n\r\nGET / HTTP/1.0\r\n\r\nGET /after HTTP/1.1\r\nHost: test\r\nX-Log-This: follower\r\n\r\n', bare: true, statuses: [404, 404] },
  { name: 'HTTP/1.0 behind a keep-alive request, then a follower, routed', bytes: g('/echo/a') + g('/echo/b', [], 'HTTP/1.0') + g('/echo/after'), bare: true, statuses: [200, 200] },
  { name: 'two Hosts in a pipeline, then a follower', bytes: g('/echo/a') + g('/echo/b', ['Host: u']) + g('/echo/after'), bare: true, statuses: [200, 400] },
  { name: 'no Host in a pipeline, then a follower', bytes: g('/echo/a') + 'GET /echo/b HTTP/1.1\r\n\r\n' + g('/echo/after'), bare: true, statuses: [200, 400] },
  { name: 'Connection: close, then a pipeline', bytes: g('/echo/a', ['Connection: close']) + g('/echo/b'), bare: true },
  { name: 'Proxy-Connection: close, then a pipeline', bytes: g('/echo/a', ['Proxy-Connection: close']) + g('/echo/b'), bare: true },
  { name: 'Proxy-Connection: keep-alive', bytes: g('/echo/a', ['Proxy-Connection: keep-alive']) + g('/echo/b') },
  { name: 'HEAD, then a pipeline', bytes: `HEAD /echo/a HTTP/1.1\r\nHost: t\r\n\r\n${g('/echo/b')}`, heads: [true] },
  { name: 'a proxied answer, then a bad request', bytes: g('/echo/slow') + 'GET /bad\x01 HTTP/1.1\r\n\r\n', bare: true },
  { name: 'a body shorter than its Content-Length', bytes: post('/echo/a', ['Content-Length: 50'], 'abc'), bare: true },
  { name: 'a head over the size limit', bytes: g('/echo/a', [`X-Big: ${'b'.repeat(9000)}`]) },
  { name: 'garbage', bytes: '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' },
];

/** Send `c` on a fresh connection; collect the answers until the server closes or the deadline. */
async function exchange(port: number, c: Case): Promise<Transcript> {
  const sock = net.connect(port, '127.0.0.1');
  sock.setNoDelay(true);
  sock.on('error', () => {});
  const chunks: Buffer[] = [];
  sock.on('data', (b: Buffer) => chunks.push(b));
  let closed = false;
  const ended = new Promise<void>((resolve) => sock.on('close', () => ((closed = true), resolve())));
  await once(sock, 'connect');
  const bytes = Buffer.from(c.bytes + (c.bare ? '' : SENTINEL), 'latin1');
  if (c.split) {
    for (let i = 0; i < bytes.length && !closed; i++) {
      sock.write(bytes.subarray(i, i + 1));
      await sleep(2);
    }
  } else sock.write(bytes);
  await Promise.race([ended, sleep(DEADLINE_MS)]);
  sock.destroy();
  return parse(Buffer.concat(chunks), c.heads ?? [], closed);
}

/** Split raw answers (Content-Length, chunked, or none for 1xx/204/304/HEAD). */
function parse(buf: Buffer, heads: boolean[], closed: boolean): Transcript {
  const answers: Answer[] = [];
  let at = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const head = buf.subarray(at, end).toString('latin1');
    const status = Number(head.split(' ')[1]);
    let bodyStart = end + 4;
    let body = '';
    const interim = status < 200;
    const bodyless = interim || status === 204 || status === 304 || (heads[answers.filter((a) => a.status >= 200).length] ?? false);
    if (!bodyless) {
      if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
        let p = bodyStart;
        let ok = false;
        for (;;) {
          const eol = buf.indexOf('\r\n', p);
          if (eol < 0) break;
          const n = parseInt(buf.subarray(p, eol).toString('latin1'), 16);
          if (n === 0) {
            p = eol + 4;
            ok = true;
            break;
          }
          body += buf.subarray(eol + 2, eol + 2 + n).toString('latin1');
          p = eol + 2 + n + 2;
        }
        if (!ok || p > buf.length) break;
        bodyStart = p;
      } else {
        const m = /\r\ncontent-length: *(\d+)/i.exec(head);
        const n = m ? Number(m[1]) : 0;
        if (bodyStart + n > buf.length) break;
        body = buf.subarray(bodyStart, bodyStart + n).toString('latin1');
        bodyStart += n;
      }
    }
    answers.push({ status, body });
    at = bodyStart;
  }
  return { answers, closed, rest: buf.subarray(at).toString('latin1') };
}

describe('HTTP differential: fast lane, node:http, plugin and upstream frame hostile bytes alike', () => {
  const tmp = tempDir('differential');
  /** One origin per upstream server (lane, node), each recording what it received: "METHOD URL\n" and the body. */
  const origins: Array<{ server: http.Server; received: string[] }> = [];
  /** The Forwarded header of each request the origins got, in order. */
  const forwarded: Array<string | undefined> = [];
  const received = (): string[] => origins.flatMap((o) => o.received);
  const servers: Array<{ name: string; f: Flexilib }> = [];

  async function startOrigin(): Promise<string> {
    const received: string[] = [];
    const origin = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (b: Buffer) => parts.push(b));
      req.on('end', () => {
        const body = Buffer.concat(parts).toString('latin1');
        if (req.url === '/health') return void res.end('ok');
        received.push(`${req.method} ${req.url}\n${body}`);
        forwarded.push(req.headers.forwarded);
        const text = Buffer.from(`${req.method} ${req.url}\n${body}`, 'latin1');
        if (req.url === '/echo/slow') {
          // An answer still being written when the next (bad) request arrives.
          res.writeHead(200, { 'content-type': 'text/plain', 'content-length': text.length });
          res.write(text.subarray(0, 4));
          setTimeout(() => res.end(text.subarray(4)), 150);
          return;
        }
        if (req.url === '/echo/304') {
          res.writeHead(304, { etag: '"v1"', 'content-length': '5' });
          return void res.end();
        }
        if (req.url === '/echo/600') {
          res.writeHead(600, { 'content-length': '3' });
          return void res.end('odd');
        }
        if (req.url === '/echo/obs-reason') {
          res.writeHead(200, 'Fine caf\xe9', { 'content-type': 'text/plain', 'content-length': text.length });
          return void res.end(text);
        }
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': text.length });
        res.end(text);
      });
    });
    origin.listen(0, '127.0.0.1');
    await once(origin, 'listening');
    origins.push({ server: origin, received });
    return `http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`;
  }

  before(async () => {
    const [laneOrigin, nodeOrigin] = [await startOrigin(), await startOrigin()];
    await compilePlugin(exampleSource, path.join(tmp.dir, 'example.so'));
    const pluginConfig = writeConfig(tmp.dir, '/echo = example.so\n', 'plugin.ini');
    const upstream = (url: string, name: string) => writeConfig(tmp.dir, `/echo = upstream:origin\n\n[upstream.origin]\nservers = ${url}\nhealth_path = /health\n`, name);
    const args = ['--max-header-size', '8192'];
    const started = await Promise.all([
      startFlexilib({ config: pluginConfig, workers: 1, accessLog: false, args }),
      startFlexilib({ config: pluginConfig, workers: 1, accessLog: false, args: [...args, '--no-fast-lane'] }),
      startFlexilib({ config: upstream(laneOrigin, 'upstream-lane.ini'), workers: 1, accessLog: false, args }),
      startFlexilib({ config: upstream(nodeOrigin, 'upstream-node.ini'), workers: 1, accessLog: false, args: [...args, '--no-fast-lane'] }),
    ]);
    ['plugin lane', 'plugin node', 'upstream lane', 'upstream node'].forEach((name, i) => servers.push({ name, f: started[i] }));
    // Libraries load on first use; origins need their first health check.
    for (const { f } of servers) {
      const r = await request(f.port, '/echo/warm');
      assert.equal(r.status, 200);
    }
    for (const o of origins) o.received.length = 0;
  });

  after(async () => {
    const codes = await Promise.all(servers.map(({ f }) => f.stop()));
    for (const o of origins) {
      o.server.closeAllConnections();
      o.server.close();
    }
    tmp.cleanup();
    assert.deepEqual(codes, [0, 0, 0, 0]);
  });

  it(`frames all ${CORPUS.length} cases identically, lets no smuggled request through, and stays alive`, { timeout: 240_000 }, async () => {
    for (const c of CORPUS) {
      const transcripts = await Promise.all(servers.map(({ f }) => exchange(f.port, c)));
      const [first] = transcripts;
      for (let i = 1; i < servers.length; i++) {
        assert.deepEqual(transcripts[i], first, `${c.name}: ${servers[i].name} differs from ${servers[0].name}`);
      }
      if (c.statuses) assert.deepEqual([first.answers.map((a) => a.status), first.closed], [c.statuses, true], `${c.name}: ${JSON.stringify(first)}`);
      for (const a of first.answers) assert.ok(!a.body.includes('/echo/smuggled'), `${c.name}: a smuggled request reached the plugin: ${JSON.stringify(a)}`);
      // Every request an origin served is one whose answer its client got: none
      // run after an answer that closed the connection.
      const served = first.answers.filter((a) => a.status >= 200 && a.status < 300).length;
      for (const o of origins) assert.equal(o.received.length, served, `${c.name}: an origin got ${JSON.stringify(o.received)} for ${served} answers`);
      for (const r of received()) assert.ok(!r.includes('/echo/smuggled'), `${c.name}: a smuggled request reached the origin: ${JSON.stringify(r)}`);
      // The lane and node:http hand their origins the same requests (node:http
      // runs a pipeline's requests at once: their order at the origin may differ).
      assert.deepEqual([...origins[0].received].sort(), [...origins[1].received].sort(), `${c.name}: the origins of the lane and of node:http got different requests`);
      for (const { name, f } of servers) {
        const r = await request(f.port, '/echo/alive');
        assert.equal(r.status, 200, `${c.name}: ${name} still answers`);
      }
      for (const o of origins) o.received.length = 0;
    }
    // Alive, and never replaced: no worker stopped on any server.
    for (const { name, f } of servers) {
      const exits = f.logs.filter((l) => l.event === 'worker-exit');
      assert.deepEqual(exits, [], `${name}: a worker stopped`);
    }
  });

  it('routes on the normalised path and hands that target on (never the raw one)', async () => {
    for (const { name, f } of servers) {
      for (const [target, expected] of [
        ['/other/../echo/z', 'GET /echo/z\n'],
        ['/echo/%2E%2e/echo/y?p=/../q', 'GET /echo/y?p=/../q\n'],
        ['/echo/./x/./../y/', 'GET /echo/y/\n'],
      ]) {
        const [t] = (await exchange(f.port, { name: target, bytes: g(target) })).answers;
        assert.deepEqual(t, { status: 200, body: expected }, `${name} ${target}`);
      }
      for (const target of ['/echo/../other', '/echo/%2e%2e/other', '/echo/%2E%2E/admin', '/echo%2F..%2Fadmin', '/echo\\..\\admin']) {
        const [t] = (await exchange(f.port, { name: target, bytes: g(target) })).answers;
        assert.equal(t.status, 404, `${name} ${target}: ${t.body}`);
      }
    }
    const paths = received().map((r) => r.split('\n')[0].split('?')[0]);
    assert.ok(paths.length >= 6 && !paths.some((p) => p.includes('/.') || /%2e/i.test(p)), `the origin got a raw target: ${paths.join(' | ')}`);
  });

  it("a client's Forwarded passes with flexilib's own element appended last, on both paths", async () => {
    forwarded.length = 0;
    for (const { f } of servers.filter((s) => s.name.startsWith('upstream'))) {
      const [t] = (await exchange(f.port, { name: 'forwarded', bytes: g('/echo/fwd', ['Forwarded: for=6.6.6.6;proto=https']), bare: true })).answers;
      assert.equal(t.status, 200);
    }
    assert.deepEqual(forwarded, ['for=6.6.6.6;proto=https, for=127.0.0.1;host=t;proto=http', 'for=6.6.6.6;proto=https, for=127.0.0.1;host=t;proto=http']);
  });

  it('a pipelined bad request after a slow proxied answer gets its 400 after that answer, never inside it', async () => {
    for (const { name, f } of servers) {
      const t = await exchange(f.port, { name: 'slow then bad', bytes: g('/echo/slow') + 'GET /bad\x01 HTTP/1.1\r\n\r\n', bare: true });
      assert.deepEqual(t.answers, [{ status: 200, body: 'GET /echo/slow\n' }, { status: 400, body: 'Bad Request\n' }], `${name}: ${JSON.stringify(t)}`);
      assert.equal(t.rest, '');
      assert.equal(t.closed, true);
    }
  });

  it("an origin's 304 with Content-Length and a reason phrase with obs-text are answered, a status past 599 is a 502, and the connection lives on", async () => {
    for (const { name, f } of servers.filter((s) => s.name.startsWith('upstream'))) {
      const t = await exchange(f.port, { name: '304, obs-text, 600', bytes: g('/echo/304') + g('/echo/obs-reason') + g('/echo/600') });
      assert.deepEqual(
        t.answers.map((a) => a.status),
        [304, 200, 502, 200],
        `${name}: ${JSON.stringify(t)}`,
      );
      assert.equal(t.answers[1].body, 'GET /echo/obs-reason\n');
      assert.match(t.answers[2].body, /^route "\/echo" \(pool "origin"\): origin http:\/\/127\.0\.0\.1:\d+ answered status 600, not a final status \(200-599\)/);
      assert.equal(t.answers[3].body, 'GET /echo/sentinel\n');
    }
  });
});
