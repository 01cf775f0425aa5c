/**
 * Start nginx (Debian's nginx-light) as the ceiling: `return 200` with the
 * same headers and body as the C example, the same worker count, everything
 * it writes (pid, error log, temp folders) inside the scenario's temp folder.
 */
import { existsSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { childPids, stopTree, spawnToFile, tail } from '../proc.ts';
import type { RunningServer, ScenarioContext } from '../scenario.ts';
import { runningServer } from './running.ts';

const CANDIDATES = ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx', '/usr/local/bin/nginx'];

/** The nginx binary: $NGINX, else the usual places; undefined when absent. */
export function findNginx(): string | undefined {
  if (process.env.NGINX) return existsSync(process.env.NGINX) ? process.env.NGINX : undefined;
  return CANDIDATES.find((f) => existsSync(f));
}

/** A loopback port that was free a moment ago (nginx cannot report a port 0 it was given). */
async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/**
 * The listen directive of every nginx the bench measures. `reuseport` gives
 * each worker its own listening socket, and the kernel spreads connections
 * across them by hash: without it, the workers take connections from one
 * shared socket as they happen to wake, and wrk's 32 connections, opened at
 * once, were often split 32/0 or 28/4 (seen here), so one worker did nearly
 * all the work and nginx measured 145-155k requests/s against 185-195k when
 * balanced. node:cluster's primary deals connections round-robin, so the
 * Node.js servers are always balanced: without reuseport, a ceiling could
 * come out low for a reason that has nothing to do with its cost.
 */
export function nginxListen(port: number): string {
  return `listen 127.0.0.1:${port} reuseport;`;
}

/**
 * A complete nginx.conf for one run: everything nginx writes stays in `tmp`,
 * keep-alive as node:http has it; `servers` is the rest of the http block
 * (server and upstream blocks).
 */
export function nginxConfig(tmp: string, workers: number, servers: string): string {
  const t = (name: string) => path.join(tmp, name);
  return `daemon off;
master_process on;
worker_processes ${workers};
pid ${t('nginx.pid')};
error_log ${t('error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  server_tokens off;
  # node:http puts no cap on requests per connection; nginx's default (1000)
  # would make wrk reconnect all the time.
  keepalive_requests 100000000;
  keepalive_timeout 5s;
  client_body_temp_path ${t('client_body')};
  proxy_temp_path ${t('proxy')};
  fastcgi_temp_path ${t('fastcgi')};
  uwsgi_temp_path ${t('uwsgi')};
  scgi_temp_path ${t('scgi')};
  default_type text/plain;
${servers}
}
`;
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Start nginx in `tmp` with the http-block contents `servers(port)` on a free
 * loopback port; resolves once every worker runs and the port accepts.
 */
export async function runNginx(ctx: ScenarioContext, tmp: string, servers: (port: number) => string, description: string): Promise<RunningServer> {
  const bin = findNginx();
  if (!bin) throw new Error('nginx is not installed (apt-get install -y nginx-light)');
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const conf = path.join(tmp, 'nginx.conf');
    writeFileSync(conf, nginxConfig(tmp, ctx.workers, servers(port)));
    const p = spawnToFile(bin, ['-p', tmp, '-e', path.join(tmp, 'error.log'), '-c', conf], {
      logFile: path.join(tmp, 'server.log'),
      cwd: tmp,
    });
    const deadline = Date.now() + 10_000;
    while (!p.hasExited() && Date.now() < deadline) {
      if (childPids(p.pid).length >= ctx.workers && (await accepts(port))) return runningServer(p, port, description);
      await sleep(25);
    }
    const why = `${tail(p.logFile)}\n${tail(path.join(tmp, 'error.log'))}`;
    await stopTree(p, childPids(p.pid));
    // Another process may have taken the port between freePort() and nginx's bind.
    if (attempt < 3 && /Address already in use/.test(why)) continue;
    throw new Error(`nginx did not start:\n${why}`);
  }
}

/**
 * `body` is fixed in the config: nginx cannot count request headers, so it
 * answers the body the plugin gives wrk's request (" 1": wrk sends Host only).
 */
export function startNginx(ctx: ScenarioContext, body: string): Promise<RunningServer> {
  return runNginx(
    ctx,
    ctx.tmp,
    (port) => `  server {
    ${nginxListen(port)}
    location / {
      add_header X-custom-foo bar;
      return 200 "${body}";
    }
  }`,
    `nginx (worker_processes ${ctx.workers}, access_log off, return 200 "${body}")`,
  );
}
