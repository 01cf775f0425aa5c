/**
 * Logs: FlexiLib's access line with LOG_FORMAT=text, pino JSON access records
 * by default, supervisor events as structured records, and LOG_LEVEL
 * filtering (access lines are info events).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { compilePlugin, eventually, exampleSource, fixture, request, startFlexilib, tempDir, writeConfig } from '@flexilib/test-support';

const tmp = tempDir('logs');
let config: string;
before(async () => {
  const lib = await compilePlugin(fixture('metrics_plugin.c'), path.join(tmp.dir, 'libmetrics_plugin.so'));
  const example = await compilePlugin(exampleSource, path.join(tmp.dir, 'libflexi_example.so'));
  config = writeConfig(tmp.dir, [`/missing = ${path.join(tmp.dir, 'absent.so')}`, `/example = ${example}`, `/ = ${lib}`, ''].join('\n'));
});
after(() => tmp.cleanup());

/** One raw HTTP/1.0 exchange; returns the client's local port and the response body. */
function rawGet(port: number, target: string, extra = ''): Promise<{ localPort: number; status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port }, () => sock.write(`GET ${target} HTTP/1.0\r\n${extra}\r\n`));
    let data = '';
    sock.setEncoding('utf8');
    sock.on('data', (c: string) => (data += c));
    sock.on('end', () => {
      const [head, body] = data.split('\r\n\r\n');
      resolve({ localPort: sock.localPort!, status: Number(head.split(' ')[1]), body });
    });
    sock.on('error', reject);
    sock.setTimeout(10_000, () => sock.destroy(new Error('timeout')));
  });
}

const ACCESS_TEXT = /^127\.0\.0\.1:(\d+) - - "(\S+) (\S+) HTTP\/(\d\.\d)" (\d{3}) ttfb (\d+\.\d{3})ms (\d+) ttlb (\d+\.\d{3})ms \(pre-alloc: (\d+), alloc: (\d+)\)$/;

describe('LOG_FORMAT=text', () => {
  test("one FlexiLib line per request: address, request line, status, ttfb, bytes, ttlb, arena", async () => {
    const f = await startFlexilib({ config, workers: 1, logFormat: 'text' });
    try {
      const a = await rawGet(f.port, '/hello?x=1');
      assert.equal(a.status, 200);
      const b = await rawGet(f.port, '/big', 'x-alloc: 100000\r\nx-status: 201\r\n');
      assert.equal(b.status, 201);
      const lines = await eventually('two access lines', () => {
        const l = f.lines.filter((x) => ACCESS_TEXT.test(x));
        return l.length >= 2 ? l : undefined;
      });
      assert.equal(lines.length, 2);
      const [m1, m2] = lines.map((l) => ACCESS_TEXT.exec(l)!);
      // 127.0.0.1:PORT - - "GET /hello?x=1 HTTP/1.0" 200 ttfb T1ms BYTES ttlb T2ms (pre-alloc: 8192, alloc: 0)
      assert.equal(Number(m1[1]), a.localPort);
      assert.deepEqual([m1[2], m1[3], m1[4], m1[5]], ['GET', '/hello?x=1', '1.0', '200']);
      assert.equal(Number(m1[7]), Buffer.byteLength(a.body));
      assert.ok(Number(m1[8]) >= Number(m1[6]), 'ttlb >= ttfb');
      assert.deepEqual([m1[9], m1[10]], ['8192', '0']);
      assert.equal(Number(m2[1]), b.localPort);
      assert.deepEqual([m2[3], m2[5], m2[9]], ['/big', '201', '8192']);
      assert.ok(Number(m2[10]) >= 100_000, `alloc beyond the arena: ${m2[10]}`);

      // Other events are readable lines too, with their fields as key=value.
      assert.ok(f.lines.some((l) => / INFO \[\d+\] worker started .*event=worker-start workerId=1 /.test(l)), f.output());
      assert.ok(!f.lines.some((l) => l.startsWith('{')), 'no JSON lines in text mode');
    } finally {
      await f.stop();
    }
  });
});

describe('JSON (default)', () => {
  test('access records carry the same fields; supervisor events carry "event"', async () => {
    const f = await startFlexilib({ config, workers: 1 });
    try {
      const target = '/json?q="2"&p=a\\b';
      const r = await request(f.port, target, { headers: { 'x-status': '404' } });
      assert.equal(r.status, 404);
      const rec = await f.waitForLog((l) => l.kind === 'access', { what: 'an access record' });
      assert.equal(rec.level, 30);
      assert.equal(rec.remote, `127.0.0.1:${(rec.remote as string).split(':')[1]}`);
      assert.deepEqual(
        { method: rec.method, target: rec.target, httpVersion: rec.httpVersion, route: rec.route, status: rec.status, bytes: rec.bytes, preAlloc: rec.preAlloc, alloc: rec.alloc },
        { method: 'GET', target, httpVersion: '1.1', route: '/', status: 404, bytes: Buffer.byteLength(r.body), preAlloc: 8192, alloc: 0 },
      );
      assert.equal(typeof rec.ttfbMs, 'number');
      assert.ok((rec.ttlbMs as number) >= (rec.ttfbMs as number));

      // The line is byte for byte what pino writes for the same record.
      const raw = f.lines.find((l) => l.includes('"kind":"access"'))!;
      const { level, time, pid, role, kind, ...fields } = rec;
      let viaPino = '';
      pino({ level: 'info', base: { pid, role }, timestamp: () => `,"time":${time}` }, { write: (s: string) => (viaPino += s) })
        .child({ kind })
        .info(fields);
      assert.equal(level, 30);
      assert.equal(raw + '\n', viaPino);
      const start = f.logs.find((l) => l.event === 'worker-start')!;
      assert.equal(start.restart, false);
      assert.equal(typeof start.workerPid, 'number');
      const listening = f.logs.find((l) => l.event === 'worker-listening')!;
      assert.equal(listening.port, f.port);
    } finally {
      await f.stop();
    }
  });
});

describe('LOG_LEVEL', () => {
  test('warn: no info lines (no access log), warnings and errors still logged', async () => {
    const f = await startFlexilib({ config, workers: 1, ports: 'free', env: { LOG_LEVEL: 'warn' } });
    try {
      assert.equal((await request(f.port, '/ok')).status, 200);
      assert.equal((await request(f.port, '/example', { headers: { 'x-throw': '1' } })).status, 500);
      assert.equal((await request(f.port, '/missing')).status, 502);
      await f.waitForLog((l) => l.msg === 'plugin returned an error', { what: 'the plugin warning' });
      await f.waitForLog((l) => l.msg === 'library unavailable', { what: 'the library error' });
      const levels = f.logs.map((l) => l.level as number);
      assert.ok(levels.length >= 2);
      assert.ok(levels.every((lv) => lv >= 40), `only warn and above: ${f.output()}`);
    } finally {
      await f.stop();
    }
  });

  test('error: warnings filtered too', async () => {
    const f = await startFlexilib({ config, workers: 1, ports: 'free', env: { LOG_LEVEL: 'error' } });
    try {
      assert.equal((await request(f.port, '/example', { headers: { 'x-throw': '1' } })).status, 500);
      assert.equal((await request(f.port, '/missing')).status, 502);
      await f.waitForLog((l) => l.msg === 'library unavailable' && l.level === 50, { what: 'the library error' });
      assert.ok(f.logs.every((l) => (l.level as number) >= 50), f.output());
      assert.ok(!f.logs.some((l) => l.msg === 'plugin returned an error'));
    } finally {
      await f.stop();
    }
  });
});
