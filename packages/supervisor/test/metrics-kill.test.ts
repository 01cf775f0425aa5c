/**
 * A worker SIGKILLed right after its client read an answer has counted that
 * answer in /metrics (the soak once found one fewer than received).
 *
 * The race is made certain, not hoped for: strace holds the worker inside the
 * write(2) that sends the answer (delay_exit: the bytes are out, the syscall
 * has not returned, no JavaScript runs), the client reads the whole answer,
 * and the worker is killed there. Whatever it had not counted before that
 * write is lost. One front end per route: the fast lane's direct answer
 * (inline native), node:http (threaded native, WASM) and the lane's relayed
 * answer (upstream), whose client answers /stats counts too.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  admin, compilePlugin, compileWasm, eventually, exampleSource, fixture, RawConnection, requireTool, scrape, startFlexilib, tempDir, writeConfig, type Flexilib,
} from '@flexilib/test-support';

const strace = requireTool('strace', 'strace');
const tmp = tempDir('metrics-kill');
let fx: Flexilib;
let origin: http.Server;

before(async () => {
  origin = http.createServer((_req, res) => res.end('from the origin'));
  origin.listen(0, '127.0.0.1');
  await once(origin, 'listening');
  const dir = tmp.dir;
  mkdirSync(path.join(dir, 'modules'));
  await compilePlugin(fixture('versioned.c'), path.join(dir, 'libv.so'), { defines: ['VERSION="v1"'] });
  await compileWasm(exampleSource, path.join(dir, 'modules', 'm.wasm'));
  const config = writeConfig(dir, `/native = libv.so
/threaded = libv.so
/wasm = modules/m.wasm
/up = upstream:o

[route /threaded]
mode = threaded

[upstream.o]
servers = http://127.0.0.1:${(origin.address() as AddressInfo).port}
`);
  fx = await startFlexilib({ config, workers: 1, accessLog: false });
});

after(async () => {
  await fx?.stop().catch(() => fx?.kill());
  origin?.close();
  tmp.cleanup();
});

/** The inode of the worker's end of the client connection whose local port is `clientPort`. */
function serverSocketInode(serverPort: number, clientPort: number): string {
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(4, '0');
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length > 9 && f[1].endsWith(`:${hex(serverPort)}`) && f[2].endsWith(`:${hex(clientPort)}`)) return f[9];
  }
  throw new Error(`no server side of 127.0.0.1:${clientPort} -> :${serverPort} in /proc/net/tcp`);
}

/** strace on `pid`, holding every write to the socket `inode` for 10 s after it wrote (resolves once attached). */
async function holdWrites(pid: number, inode: string): Promise<{ exited: Promise<void>; output: () => string }> {
  const p = spawn(strace, ['-f', '-p', String(pid), '-P', `socket:[${inode}]`, '-e', 'trace=write,writev,sendmsg,sendto', '-e', 'inject=write,writev,sendmsg,sendto:delay_exit=10s'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let out = '';
  p.stderr.setEncoding('utf8');
  const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    p.stderr.on('data', (c: string) => {
      out += c;
      if (/attached/.test(out)) resolve();
    });
    p.once('exit', (code) => reject(new Error(`strace exited (${code}) before attaching to ${pid}: ${out}`)));
  });
  return { exited, output: () => out };
}

const requests = (s: Awaited<ReturnType<typeof scrape>>, route: string) => s.sum('flexilib_requests_total', { route });
/** /stats: client answers of pool o counted ok. */
const clientOk = async (): Promise<number> => (await admin(fx.adminPort, 'GET', '/stats')).json?.pools?.o?.client?.success ?? 0;

for (const route of ['/native', '/threaded', '/wasm', '/up']) {
  test(`${route}: an answer the client read counts in /metrics though its worker was killed right after writing it`, { timeout: 90_000 }, async () => {
    const pid = await eventually('a worker listening', () => fx.workerPids()[0]);
    const target = route === '/up' ? '/up/item' : route;
    const before = requests(await scrape(fx.adminPort), route);
    const okBefore = await clientOk();
    const c = new RawConnection(fx.port);
    try {
      const ask = `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`;
      c.write(ask);
      const [first] = await c.responses(1);
      assert.match(first.toString('latin1'), /^HTTP\/1\.1 200 /, 'the route answers');
      const inode = serverSocketInode(fx.port, c.sock.localPort!);
      assert.ok(readdirSync(`/proc/${pid}/fd`).some((fd) => readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`), 'the worker holds the connection');

      const held = await holdWrites(pid, inode);
      const from = fx.logs.length;
      c.write(ask);
      const [second] = await c.responses(1, [], 30_000);
      assert.match(second.toString('latin1'), /^HTTP\/1\.1 200 /);
      // The worker is still inside the write that sent it: kill it there.
      process.kill(pid, 'SIGKILL');
      await held.exited;
      // "= ?": the process died inside the syscall (or strace saw it return and held it there).
      assert.match(held.output(), /\b(write|writev|sendmsg|sendto)\(\d+, /, 'strace saw the answer\'s write');
      assert.match(held.output(), /= \?|\(DELAYED\)/, 'the worker died inside the answer\'s write');
      await fx.waitForLog((l) => l.code === 'FLX_WORKER_EXIT' && l.workerPid === pid, { from, timeoutMs: 20_000, what: 'the worker\'s exit' });
      await fx.waitForLog((l) => l.msg === 'worker listening' && l.replaces !== undefined, { from, timeoutMs: 30_000, what: 'its replacement' });
    } finally {
      c.sock.destroy();
    }
    assert.equal(requests(await scrape(fx.adminPort), route) - before, 2, `both answers the client read are counted on ${route}`);
    // And /stats counts the upstream route's client answers the same way.
    if (route === '/up') assert.equal((await clientOk()) - okBefore, 2, 'both proxied answers the client read are counted ok in /stats');
  });
}
