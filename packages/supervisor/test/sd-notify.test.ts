/**
 * systemd notify over a real unix datagram socket (bound by a small Python
 * receiver, since Node cannot receive unix datagrams): READY=1 once every
 * worker listens, RELOADING=1 (with MONOTONIC_USEC) then READY=1 around SIGHUP,
 * WATCHDOG=1 pings, STOPPING=1 on SIGTERM; abstract socket names; a silent
 * no-op without NOTIFY_SOCKET.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { sendUnixDatagram } from '@flexilib/worker';
import { SdNotify } from '../src/sd-notify.js';
import { compilePlugin, exampleSource, fixture, requireTool, sleep, startFlexilib, tempDir } from '@flexilib/test-support';

interface Datagram {
  fields: Record<string, string>;
  monotonicUsec: number;
}

/** Start the receiver; resolves once its socket is bound. */
async function receiver(address: string) {
  const proc = spawn(requireTool('python3', 'python3'), [fixture('notify-receiver.py'), address], { stdio: ['ignore', 'pipe', 'inherit'] });
  const got: Datagram[] = [];
  let buf = '';
  let onBound: () => void;
  const bound = new Promise<void>((r) => (onBound = r));
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (c: string) => {
    buf += c;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const msg = JSON.parse(buf.slice(0, nl)) as { bound?: string; datagram?: string; monotonicUsec?: number };
      buf = buf.slice(nl + 1);
      if (msg.bound) onBound();
      if (msg.datagram !== undefined) {
        const fields: Record<string, string> = {};
        for (const line of msg.datagram.split('\n').filter(Boolean)) {
          const eq = line.indexOf('=');
          fields[line.slice(0, eq)] = line.slice(eq + 1);
        }
        got.push({ fields, monotonicUsec: msg.monotonicUsec! });
      }
    }
  });
  await Promise.race([bound, sleep(10_000).then(() => Promise.reject(new Error('receiver did not bind')))]);
  return {
    got,
    async wait(pred: (d: Datagram) => boolean, from = 0, timeoutMs = 8000): Promise<Datagram> {
      const end = Date.now() + timeoutMs;
      while (Date.now() < end) {
        const hit = got.slice(from).find(pred);
        if (hit) return hit;
        await sleep(20);
      }
      throw new Error(`no matching datagram; got ${JSON.stringify(got.map((d) => d.fields))}`);
    },
    stop: () => proc.kill('SIGKILL'),
  };
}

test('READY, WATCHDOG, RELOADING/READY around SIGHUP, STOPPING over NOTIFY_SOCKET', { timeout: 40_000 }, async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  await compilePlugin(exampleSource, path.join(dir, 'example.so'));
  const config = path.join(dir, 'proxy.ini');
  writeFileSync(config, '/ = example.so\n');
  const socketPath = path.join(dir, 'notify.sock');
  const rx = await receiver(socketPath);
  t.after(() => rx.stop());

  const server = await startFlexilib({ config, workers: 2, accessLog: false, env: { NOTIFY_SOCKET: socketPath, WATCHDOG_USEC: '300000' } });
  t.after(() => server.kill());
  const ready = await rx.wait((d) => d.fields.READY === '1');
  assert.match(ready.fields.STATUS, /serving on port \d+ with 2 worker\(s\)/);
  // READY only once every worker listened.
  const listening = server.logs.filter((l) => l.msg === 'worker listening').length;
  assert.ok(listening >= 2, `workers listening before READY: ${listening}`);

  // Watchdog pings every WATCHDOG_USEC/2 (150 ms): several within a second.
  const before = rx.got.filter((d) => d.fields.WATCHDOG === '1').length;
  await sleep(1000);
  const pings = rx.got.filter((d) => d.fields.WATCHDOG === '1').length - before;
  assert.ok(pings >= 3 && pings <= 10, `watchdog pings in 1 s: ${pings}`);

  // SIGHUP (valid): RELOADING=1 with a CLOCK_MONOTONIC stamp, then READY=1.
  let from = rx.got.length;
  server.signal('SIGHUP');
  const reloading = await rx.wait((d) => d.fields.RELOADING === '1', from);
  const stamp = Number(reloading.fields.MONOTONIC_USEC);
  assert.ok(Number.isSafeInteger(stamp), `MONOTONIC_USEC=${reloading.fields.MONOTONIC_USEC}`);
  assert.ok(Math.abs(reloading.monotonicUsec - stamp) < 2_000_000, `stamp ${stamp} vs arrival ${reloading.monotonicUsec} (CLOCK_MONOTONIC, µs)`);
  const reReady = await rx.wait((d) => d.fields.READY === '1', rx.got.indexOf(reloading));
  assert.match(reReady.fields.STATUS, /config generation 1/);

  // SIGHUP (broken): still RELOADING then READY, the status says why.
  from = rx.got.length;
  writeFileSync(config, 'broken\n');
  server.signal('SIGHUP');
  const r2 = await rx.wait((d) => d.fields.RELOADING === '1', from);
  const ready2 = await rx.wait((d) => d.fields.READY === '1', rx.got.indexOf(r2));
  assert.match(ready2.fields.STATUS, /reload refused: 1 problem/);

  from = rx.got.length;
  server.signal('SIGTERM');
  await rx.wait((d) => d.fields.STOPPING === '1', from);
  assert.equal((await server.exited).code, 0);
});

test('abstract NOTIFY_SOCKET names (leading @)', { timeout: 30_000 }, async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  await compilePlugin(exampleSource, path.join(dir, 'example.so'));
  const config = path.join(dir, 'proxy.ini');
  writeFileSync(config, '/ = example.so\n');
  const name = `@flexilib-test-${randomBytes(6).toString('hex')}`;
  const rx = await receiver(name);
  t.after(() => rx.stop());
  const server = await startFlexilib({ config, workers: 1, accessLog: false, env: { NOTIFY_SOCKET: name } });
  t.after(() => server.kill());
  await rx.wait((d) => d.fields.READY === '1');
  // No WATCHDOG_USEC: no pings.
  await sleep(300);
  assert.equal(rx.got.filter((d) => d.fields.WATCHDOG).length, 0);
});

test('sendUnixDatagram errors name the errno; without NOTIFY_SOCKET nothing is sent', async () => {
  const { dir, cleanup } = tempDir();
  try {
    assert.throws(() => sendUnixDatagram(path.join(dir, 'absent.sock'), 'READY=1\n'), (e: Error & { code?: string }) => e.code === 'ENOENT' && /absent\.sock/.test(e.message));
    assert.throws(() => sendUnixDatagram(`/${'x'.repeat(120)}`, 'READY=1\n'), /too long/);
    const log = pino({ level: 'silent' });
    const off = await SdNotify.fromEnv({}, log);
    assert.equal(off.enabled, false);
    off.ready('x');
    off.startWatchdog();
    off.stopWatchdog();
    // A socket that goes away: the failure is logged once, never thrown.
    const lines: string[] = [];
    const warnLog = pino({ level: 'warn' }, { write: (s: string) => lines.push(s) });
    const gone = await SdNotify.fromEnv({ NOTIFY_SOCKET: path.join(dir, 'gone.sock') }, warnLog);
    assert.equal(gone.enabled, true);
    gone.ready('x');
    gone.stopping();
    assert.equal(lines.length, 1);
    assert.match(lines[0], /FLX_NOTIFY_FAILED/);
  } finally {
    cleanup();
  }
});
