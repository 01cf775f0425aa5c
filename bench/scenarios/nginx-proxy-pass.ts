// The reference for the upstream route: nginx proxy_pass to the same origin
// (nginx `return 200`), HTTP/1.1 keep-alive to it (`keepalive` in the
// upstream block), same worker count, access log off.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { defineScenario, type ScenarioContext } from '../lib/scenario.ts';
import { nginxListen, runNginx } from '../lib/servers/nginx.ts';
import { originUnavailable, withOriginStarted } from '../lib/servers/upstream-origin.ts';

function startProxy(ctx: ScenarioContext, originPort: number) {
  const tmp = path.join(ctx.tmp, 'proxy');
  mkdirSync(tmp, { recursive: true });
  return runNginx(
    ctx,
    tmp,
    (port) => `  upstream origin {
    server 127.0.0.1:${originPort};
    keepalive 64;
    keepalive_requests 100000000;
  }
  server {
    ${nginxListen(port)}
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
    }
  }`,
    `nginx (worker_processes ${ctx.workers}, access_log off, proxy_pass with upstream keepalive 64)`,
  );
}

export default defineScenario({
  id: 'nginx-proxy-pass',
  title: 'nginx proxy_pass, upstream keepalive (reference for the upstream route)',
  role: 'ceiling',
  conformance: 'same-content',
  unavailable: originUnavailable,
  start: (ctx) => withOriginStarted(ctx, (originPort) => startProxy(ctx, originPort)),
});
