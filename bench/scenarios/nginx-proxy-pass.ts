// The reference for the upstream route: nginx proxy_pass to the same origin
// (nginx `return 200`), HTTP/1.1 keep-alive to it (`keepalive` in the
// upstream block), same worker count, access log off.
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { childPids, spawnToFile, stopTree, tail } from '../lib/proc.ts';
import { defineScenario, type ScenarioContext } from '../lib/scenario.ts';
import { findNginx } from '../lib/servers/nginx.ts';
import { runningServer } from '../lib/servers/running.ts';
import { originUnavailable, startOrigin, withOrigin } from '../lib/servers/upstream-origin.ts';

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

function proxyConfig(tmp: string, port: number, workers: number, originPort: number): string {
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
  keepalive_requests 100000000;
  keepalive_timeout 5s;
  client_body_temp_path ${t('client_body')};
  proxy_temp_path ${t('proxy')};
  fastcgi_temp_path ${t('fastcgi')};
  uwsgi_temp_path ${t('uwsgi')};
  scgi_temp_path ${t('scgi')};
  upstream origin {
    server 127.0.0.1:${originPort};
    keepalive 64;
    keepalive_requests 100000000;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
    }
  }
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

async function startProxy(ctx: ScenarioContext, originPort: number) {
  const bin = findNginx()!;
  const tmp = path.join(ctx.tmp, 'proxy');
  mkdirSync(tmp, { recursive: true });
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const conf = path.join(tmp, 'nginx.conf');
    writeFileSync(conf, proxyConfig(tmp, port, ctx.workers, originPort));
    const p = spawnToFile(bin, ['-p', tmp, '-e', path.join(tmp, 'error.log'), '-c', conf], { logFile: path.join(tmp, 'server.log'), cwd: tmp });
    const deadline = Date.now() + 10_000;
    while (!p.hasExited() && Date.now() < deadline) {
      if (childPids(p.pid).length >= ctx.workers && (await accepts(port))) {
        return runningServer(p, port, `nginx (worker_processes ${ctx.workers}, access_log off, proxy_pass with upstream keepalive 64)`);
      }
      await sleep(25);
    }
    const why = `${tail(p.logFile)}\n${tail(path.join(tmp, 'error.log'))}`;
    await stopTree(p, childPids(p.pid));
    if (attempt < 3 && /Address already in use/.test(why)) continue;
    throw new Error(`nginx (proxy) did not start:\n${why}`);
  }
}

export default defineScenario({
  id: 'nginx-proxy-pass',
  title: 'nginx proxy_pass, upstream keepalive (reference for the upstream route)',
  role: 'ceiling',
  conformance: 'same-content',
  unavailable: originUnavailable,
  async start(ctx) {
    const origin = await startOrigin(ctx);
    try {
      return withOrigin(await startProxy(ctx, origin.port), origin);
    } catch (err) {
      await origin.stop();
      throw err;
    }
  },
});
