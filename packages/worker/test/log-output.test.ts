// The access log's hand-made formatting and the batching line writer: the
// formatters must print exactly what JSON.stringify / toFixed print (the JSON
// line is compared byte for byte with pino's in the supervisor's logs test),
// and the writer must deliver every line whole and in order.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { IncomingMessage } from 'node:http';
import { JsonAccessLine, ms3, msJson, type AccessRecord } from '../src/observe/access-log.js';
import { FLUSH_DELAY_MS, LineWriter } from '../src/observe/line-writer.js';

/** Deterministic pseudo-random numbers (xorshift), so a failure repeats. */
function* samples(n: number, scale: number): Generator<number> {
  let x = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    yield ((x >>> 0) / 2 ** 32) * scale;
  }
}

describe('access-log number formatting', () => {
  const edges = [0, 0.0004, 0.0005, 0.001, 0.01, 0.1, 0.12, 0.999, 0.9996, 1, 10.5, 14.07, 100.001, 999.9999, 2147483.647, 2147483.648, 5e6, 1e12];

  it('msJson prints what JSON.stringify prints for the value rounded to microseconds', () => {
    for (const ms of [...edges, ...samples(200_000, 50), ...samples(20_000, 5e6)]) {
      assert.equal(msJson(ms), JSON.stringify(Math.round(ms * 1000) / 1000), `ms=${ms}`);
    }
  });

  it('ms3 prints what toFixed(3) prints for the value rounded to microseconds', () => {
    for (const ms of [...edges, ...samples(200_000, 50), ...samples(20_000, 5e6)]) {
      assert.equal(ms3(ms), (Math.round(ms * 1000) / 1000).toFixed(3), `ms=${ms}`);
    }
  });
});

describe('LineWriter', () => {
  it('delivers every line whole and in order through a pipe: short, multibyte, and longer than PIPE_BUF', () => {
    // A child process writes through the real writer to its stdout, a pipe to us.
    const script = `
      import { LineWriter } from ${JSON.stringify(new URL('../src/observe/line-writer.ts', import.meta.url).href)};
      const w = new LineWriter(1);
      for (let i = 0; i < 3000; i++) {
        const len = i % 97 === 0 ? 5000 + i : i % 31 === 0 ? 3000 : 10 + (i % 200);
        const fill = i % 7 === 0 ? 'é€😀'.repeat(Math.ceil(len / 4)) : 'x'.repeat(len);
        w.write(i + ' ' + fill + '\\n');
        if (i % 500 === 0) await new Promise((r) => setImmediate(r));
      }
    `;
    const res = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', maxBuffer: 64 << 20 });
    assert.equal(res.status, 0, res.stderr);
    const lines = res.stdout.split('\n');
    assert.equal(lines.pop(), '', 'output ends with a newline');
    assert.equal(lines.length, 3000);
    lines.forEach((line, i) => {
      const len = i % 97 === 0 ? 5000 + i : i % 31 === 0 ? 3000 : 10 + (i % 200);
      const fill = i % 7 === 0 ? 'é€😀'.repeat(Math.ceil(len / 4)) : 'x'.repeat(len);
      assert.equal(line, `${i} ${fill}`, `line ${i}`);
    });
  });
});

describe('LineWriter on a regular file', () => {
  it('writes access lines once the next would not fit the batch or FLUSH_DELAY_MS after the first, other lines at the end of the turn', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'flexilib-lines-'));
    try {
      const file = path.join(dir, 'out.log');
      const fd = openSync(file, 'w');
      const out = new LineWriter(fd);
      const read = () => readFileSync(file, 'utf8');
      const until = async (want: string) => {
        const deadline = Date.now() + FLUSH_DELAY_MS + 2000;
        while (read() !== want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
        return read();
      };
      out.write('access 1\n', false);
      await new Promise((r) => setImmediate(r));
      assert.equal(read(), '', 'an access line waits for others to join its batch');
      assert.equal(await until('access 1\n'), 'access 1\n', 'and is written by the timer, with nothing else happening');

      out.write('access 2\n', false);
      out.write('a warning\n');
      await new Promise((r) => setImmediate(r));
      assert.equal(read(), 'access 1\naccess 2\na warning\n', 'another line goes out at the end of its turn, with the access lines before it');

      // 40 KiB of access lines at once: the first 32 KiB batch goes out as soon as the next line would not fit it.
      const line = 'y'.repeat(1023) + '\n';
      const before = read();
      for (let i = 0; i < 40; i++) out.write(line, false);
      assert.equal(read(), before + line.repeat(32), 'a full batch is written without waiting');
      assert.equal(await until(before + line.repeat(40)), before + line.repeat(40), 'and the rest by the timer');
      closeSync(fd);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a waiting access line is written when the process exits, and does not keep it alive', () => {
    for (const end of ['process.exit(0)', '/* nothing left to do */', "process.kill(process.pid, 'SIGTERM')"]) {
      const script = `
        import { LineWriter } from ${JSON.stringify(new URL('../src/observe/line-writer.ts', import.meta.url).href)};
        const w = new LineWriter(1);
        process.once('SIGTERM', () => process.exit(0));
        w.write('access line\\n', false);
        ${end};
      `;
      const started = Date.now();
      const res = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(res.status, 0, res.stderr);
      assert.equal(res.stdout, 'access line\n', `ending with ${end}`);
      assert.ok(Date.now() - started < 15_000, 'the timer does not hold the process');
    }
  });

  it('keeps lines whole when several processes batch into the same file at once', async () => {
    // Two children share one open file (as workers share the server's stdout)
    // and write at the same time in batches larger than PIPE_BUF.
    const dir = mkdtempSync(path.join(tmpdir(), 'flexilib-lines-'));
    try {
      const file = path.join(dir, 'out.log');
      const fd = openSync(file, 'w');
      // Each child writes 20,000 lines, then goes on (more slowly) until the
      // other has written its 20,000 too (its marker file), so each writes all
      // through the other's writing, however the two are scheduled. (Writing
      // until the other had begun plus 3,000 lines once let one child finish
      // before a child kept from the CPU wrote anything.)
      const script = (who: string, other: string) => `
        import { existsSync, writeFileSync } from 'node:fs';
        import { LineWriter } from ${JSON.stringify(new URL('../src/observe/line-writer.ts', import.meta.url).href)};
        const w = new LineWriter(1);
        const giveUp = Date.now() + 30000;
        let otherDone = false;
        for (let i = 0; i < 20000 || (!otherDone && Date.now() < giveUp); i++) {
          const len = i % 997 === 0 ? 9000 : 20 + (i % 300);
          w.write('${who} ' + i + ' ' + 'x'.repeat(len) + '\\n');
          if (i === 19999) writeFileSync(${JSON.stringify(dir)} + '/${who}-done', '');
          if (i % 200 === 0) {
            otherDone ||= existsSync(${JSON.stringify(dir)} + '/${other}-done');
            await new Promise((r) => (i < 20000 ? setImmediate(r) : setTimeout(r, 2)));
          }
        }
      `;
      const run = (who: string, other: string) =>
        new Promise<number | null>((resolve) => {
          const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(who, other)], { stdio: ['ignore', fd, 'inherit'] });
          child.on('exit', resolve);
        });
      const codes = await Promise.all([run('a', 'b'), run('b', 'a')]);
      closeSync(fd);
      assert.deepEqual(codes, [0, 0]);
      const lines = readFileSync(file, 'utf8').split('\n');
      assert.equal(lines.pop(), '', 'the file ends with a newline');
      const next = { a: 0, b: 0 };
      let switches = 0;
      let last = '';
      for (const line of lines) {
        const m = /^([ab]) (\d+) (x*)$/.exec(line);
        assert.ok(m, `a whole line: ${line.slice(0, 60)}`);
        const who = m[1] as 'a' | 'b';
        const i = Number(m[2]);
        assert.equal(i, next[who], `${who}'s lines in order`);
        assert.equal(m[3].length, i % 997 === 0 ? 9000 : 20 + (i % 300), `line ${who} ${i} complete`);
        next[who]++;
        if (who !== last) switches++;
        last = who;
      }
      assert.ok(next.a >= 20000 && next.b >= 20000, `every line of both writers: ${JSON.stringify(next)}`);
      assert.ok(switches > 2, `the two writers wrote at the same time (${switches} switches)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Lines written through a real LineWriter to a file; returns what the file holds after a flush. */
function writtenThrough(write: (out: LineWriter) => void): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'flexilib-access-'));
  try {
    const file = path.join(dir, 'out.log');
    const fd = openSync(file, 'w');
    const out = new LineWriter(fd);
    write(out);
    out.flush();
    closeSync(fd);
    return readFileSync(file, 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('JSON access line', () => {
  it('encodes in place exactly the bytes of its string form, and falls back where it must', () => {
    const line = new JsonAccessLine('{"level":30,"time":', ',"pid":42,"role":"wörker","kind":"access"');
    const targets = ['/', '/a/b?c=d&e=%20f', '/é', '/"q"', '/back\\slash', '/tab\there', '/' + 'x'.repeat(5000), '/' + 'y'.repeat(20_000), '/~!$&()*+,;=:@'];
    const peers = [
      { remoteAddress: '127.0.0.1', remotePort: 51234 },
      { remoteAddress: '::1', remotePort: 1 },
      { remoteAddress: 'fe80::1%eth0', remotePort: 65535 },
      {},
    ];
    const routes = ['/', '/api/', 'route "quoted"', '/ünïcode/', '-'];
    const counts = [0, 2, 9, 16 * 1024 * 1024, 3e9, NaN];
    const durations = [...samples(300, 40), 0, 0.0005, 1234.5678, 5e6];
    let expected = '';
    let encoded = 0;
    const written = writtenThrough((out) => {
      let i = 0;
      for (const target of targets) {
        for (const socket of peers) {
          for (const route of routes) {
            i++;
            const req = { socket, method: i % 3 ? 'GET' : 'DELETE', url: target, httpVersion: i % 5 ? '1.1' : '1.0' } as unknown as IncomingMessage;
            const r: AccessRecord = {
              req,
              status: i % 7 ? 200 : 499,
              bytes: counts[i % counts.length],
              ttfbMs: durations[i % durations.length],
              ttlbMs: durations[(i * 7) % durations.length],
              arenaBytes: 8192,
              alloc: counts[(i + 3) % counts.length],
              route,
            };
            // Every digit position of the time moves (and repeats, for the cached forms).
            const now = 1_700_000_000_000 + (i >> 1) * 7_919_993;
            const text = line.text(r, now);
            expected += text;
            if (line.encode(r, now, out)) encoded++;
            else out.write(text);
          }
        }
      }
    });
    assert.equal(written, expected);
    // Plain targets (four of the nine) go the encoded way; the rest by string.
    assert.equal(encoded, 4 * peers.length * routes.length);
    for (const l of expected.trimEnd().split('\n')) JSON.parse(l.replace(/NaN/g, 'null'));
  });

  it('keeps a connection\'s repeated run whole, and drops it when the method, target, version or route changes', () => {
    const line = new JsonAccessLine('{"level":30,"time":', ',"pid":42,"kind":"access"');
    const a = { remoteAddress: '127.0.0.1', remotePort: 40001 };
    const b = { remoteAddress: '127.0.0.1', remotePort: 40002 };
    // Each step: socket, method, target, version, route; repeats exercise the whole run.
    const steps: Array<[object, string, string, string, string]> = [];
    const base: [object, string, string, string, string] = [a, 'GET', '/items/1', '1.1', '/'];
    for (let i = 0; i < 3; i++) steps.push(base);
    steps.push([a, 'GET', '/items/2', '1.1', '/'], [a, 'GET', '/items/2', '1.1', '/'], [a, 'GET', '/items/2', '1.1', '/']);
    steps.push([b, 'GET', '/items/2', '1.1', '/'], [b, 'GET', '/items/2', '1.1', '/']);
    steps.push([a, 'GET', '/items/2', '1.0', '/'], [a, 'GET', '/items/2', '1.0', '/'], [a, 'GET', '/items/2', '1.1', '/api/']);
    steps.push([a, 'POST', '/items/2', '1.1', '/api/'], [a, 'POST', '/items/2', '1.1', '/api/'], [a, 'POST', '/items/2', '1.1', '/api/']);
    steps.push([a, 'POST', '/items/é', '1.1', '/api/'], [a, 'POST', '/items/2', '1.1', '/api/'], [a, 'POST', '/items/2', '1.1', '/api/']);
    steps.push([a, 'GET', '/' + 'z'.repeat(600), '1.1', '/'], [a, 'GET', '/' + 'z'.repeat(600), '1.1', '/'], [a, 'GET', '/' + 'z'.repeat(600), '1.1', '/']);
    for (let i = 0; i < 3; i++) steps.push(base);
    let expected = '';
    let encoded = 0;
    const written = writtenThrough((out) => {
      steps.forEach(([socket, method, url, httpVersion, route], i) => {
        const r: AccessRecord = {
          req: { socket, method, url, httpVersion } as unknown as IncomingMessage,
          status: 200 + i, bytes: i * 11, ttfbMs: i * 0.013, ttlbMs: i % 2 ? i * 0.013 : i * 0.021, arenaBytes: i < 10 ? 8192 : 4096, alloc: i, route,
        };
        const now = 1_700_000_000_000 + (i >> 2);
        const text = line.text(r, now);
        expected += text;
        if (line.encode(r, now, out)) encoded++;
        else out.write(text);
      });
    });
    assert.equal(written, expected);
    // Every step but the one whose target needs JSON escaping is encoded.
    assert.equal(encoded, steps.length - 1);
  });

  it('leaves a line longer than the writer can take in place to the string form', () => {
    const line = new JsonAccessLine('{"level":30,"time":', ',"pid":42');
    const socket = { remoteAddress: '127.0.0.1', remotePort: 1 };
    const r = (route: string): AccessRecord => ({
      req: { socket, method: 'GET', url: '/x', httpVersion: '1.1' } as unknown as IncomingMessage,
      status: 200, bytes: 2, ttfbMs: 0.01, ttlbMs: 0.02, arenaBytes: 8192, alloc: 0, route,
    });
    const long = r('/' + 'r'.repeat(70_000));
    const short = r('/');
    const written = writtenThrough((out) => {
      assert.equal(line.encode(long, 1_700_000_000_000, out), false);
      out.write(line.text(long, 1_700_000_000_000));
      assert.equal(line.encode(short, 1_700_000_000_001, out), true);
    });
    assert.equal(written, line.text(long, 1_700_000_000_000) + line.text(short, 1_700_000_000_001));
  });
});
