/**
 * What only the upstream tests need: real origin servers on loopback (in this
 * process, or as child processes that can be killed) and a port nobody
 * listens on. Everything else comes from @flexilib/test-support.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { once } from 'node:events';

const ORIGIN_FIXTURE = path.join(import.meta.dirname, 'fixtures/origin.mjs');

/** An origin server in this process. `hits` counts requests; `name` answers in x-origin. */
export interface Origin {
  name: string;
  port: number;
  url: string;
  hits: number;
  server: http.Server;
  close(): Promise<void>;
}

export type OriginHandler = (req: http.IncomingMessage, res: http.ServerResponse, origin: Origin) => void;

/** Answers `name` (and counts) unless a handler is given; /health answers 200. */
export async function startOrigin(t: { after(fn: () => unknown): void }, name: string, handler?: OriginHandler, port = 0): Promise<Origin> {
  const origin = { name, hits: 0 } as Origin;
  const server = http.createServer((req, res) => {
    if (req.url === '/health') {
      res.end('ok');
      return;
    }
    origin.hits++;
    res.setHeader('x-origin', name);
    if (handler) handler(req, res, origin);
    else {
      req.resume();
      req.on('end', () => res.end(name));
    }
  });
  server.keepAliveTimeout = 10_000;
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  origin.server = server;
  origin.port = (server.address() as AddressInfo).port;
  origin.url = `http://127.0.0.1:${origin.port}`;
  let closed = false;
  origin.close = async () => {
    if (closed) return;
    closed = true;
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };
  t.after(() => origin.close());
  return origin;
}

/** An origin in a child process (fixtures/origin.mjs), for killing with SIGKILL. */
export interface ChildOrigin {
  port: number;
  url: string;
  proc: ChildProcess;
  kill(): Promise<void>;
}

export async function startChildOrigin(t: { after(fn: () => unknown): void }, name: string, port = 0, backlog = 511): Promise<ChildOrigin> {
  const proc = spawn(process.execPath, [ORIGIN_FIXTURE, name, String(port), String(backlog)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const kill = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGKILL');
    await once(proc, 'exit');
  };
  t.after(kill);
  let buf = '';
  const actual = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`origin ${name} did not start`)), 10_000);
    proc.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      const m = /listening (\d+)/.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.once('exit', (code) => reject(new Error(`origin ${name} exited with ${code}`)));
  });
  return { port: actual, url: `http://127.0.0.1:${actual}`, proc, kill };
}
