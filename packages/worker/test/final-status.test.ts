/**
 * A plugin's status is an answer only if it is final (200-599). A 1xx written
 * as the answer shifts a direct client's answers by one, and a 101 behind a
 * front proxy that honours it (nginx with proxy_http_version 1.1) opens a
 * tunnel past the proxy's rules. Every executor answers 502 naming the route
 * instead: native inline through the fast lane and node:http, threaded, WASM.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compilePlugin, compileWasm, eventually, exampleSource, freePort, RawConnection, request, startFlexilib, tempDir, writeConfig, type Flexilib } from '@flexilib/test-support';

const get = (target: string, headers: string[] = []) => `GET ${target} HTTP/1.1\r\nHost: test\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`;
const statusOf = (b: Buffer) => Number(b.toString('latin1').split(' ')[1]);
const bodyOf = (b: Buffer) => b.subarray(b.indexOf('\r\n\r\n') + 4).toString('latin1');

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));

describe('a final status outside 200-599 is refused with a 502', () => {
  const tmp = tempDir('final-status');
  let lane: Flexilib;
  let plain: Flexilib;

  before(async () => {
    await Promise.all([compilePlugin(exampleSource, path.join(tmp.dir, 'example.so')), compileWasm(exampleSource, path.join(tmp.dir, 'example.wasm'))]);
    const config = writeConfig(tmp.dir, ['/threaded = example.so', '/wasm = example.wasm', '/ = example.so', '', '[route /threaded]', 'mode = threaded'].join('\n'));
    [lane, plain] = await Promise.all([startFlexilib({ config, workers: 1 }), startFlexilib({ config, workers: 1, args: ['--no-fast-lane'] })]);
    // The first call loads the library (through node:http); later ones take the lane.
    for (const f of [lane, plain]) assert.equal((await request(f.port, '/')).status, 200);
  });

  after(async () => {
    const codes = await Promise.all([lane?.stop(), plain?.stop()]);
    tmp.cleanup();
    assert.deepEqual(codes, [0, 0]);
  });

  for (const [name, target] of [
    ['inline', '/'],
    ['threaded', '/threaded'],
    ['wasm', '/wasm'],
  ] as const) {
    it(`${name}: 100, 101, 103, 199, 600 and 999 become 502s naming the route; the next answer on the connection is its own`, async () => {
      for (const f of [lane, plain]) {
        const c = new RawConnection(f.port);
        for (const status of [100, 101, 103, 199, 600, 999]) {
          // Pipelined with a plain request: a 1xx head would be read as an interim answer and shift them.
          c.write(get(target, [`x-status: ${status}`]) + get(target));
          const [refused, next] = await c.responses(2);
          assert.equal(statusOf(refused), 502, `${name} ${status}: ${refused.toString('latin1')}`);
          const route = target === '/' ? '/' : target;
          assert.equal(bodyOf(refused), `plugin for route "${route}" produced an invalid response: status ${status} is not a final status (200-599)\n`);
          assert.equal(statusOf(next), 200);
        }
        // 200 and 599 are answers.
        c.write(get(target, ['x-status: 599']));
        assert.equal(statusOf((await c.responses(1))[0]), 599);
        c.close();
      }
    });
  }

  it('through nginx (proxy_http_version 1.1): no 101, so no tunnel; the next request on the connection meets nginx\'s own 403', async () => {
    assert.ok(NGINX, 'nginx is not installed (Debian package nginx-light): this test drives a real nginx in front of flexilib');
    const port = await freePort();
    const dir = path.join(tmp.dir, 'nginx');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      path.join(dir, 'nginx.conf'),
      `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:${port};
    location /forbidden { return 403; }
    location / {
      proxy_pass http://127.0.0.1:${lane.port};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
    }
  }
}
`,
    );
    const check = spawnSync(NGINX, ['-t', '-p', dir, '-c', path.join(dir, 'nginx.conf')], { encoding: 'utf8' });
    assert.equal(check.status, 0, `nginx -t: ${check.stderr}`);
    const nginx: ChildProcess = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      await eventually('nginx answers', async () => ((await request(port, '/forbidden').catch(() => undefined))?.status === 403 ? true : undefined), 10_000);
      const c = new RawConnection(port);
      c.write(get('/ws', ['Upgrade: websocket', 'Connection: Upgrade', 'x-status: 101']));
      const [first] = await c.responses(1);
      assert.equal(statusOf(first), 502, first.toString('latin1'));
      assert.match(bodyOf(first), /^plugin for route "\/" produced an invalid response: status 101 is not a final status/);
      // Were the connection a tunnel, this would reach flexilib (and be answered 200).
      c.write(get('/forbidden'));
      const [second] = await c.responses(1);
      assert.equal(statusOf(second), 403, second.toString('latin1'));
      assert.match(second.toString('latin1'), /\r\nServer: nginx/);
      c.close();
    } finally {
      nginx.kill('SIGTERM');
      if (nginx.exitCode === null) await once(nginx, 'exit');
      const log = path.join(dir, 'error.log');
      if (existsSync(log)) assert.doesNotMatch(readFileSync(log, 'utf8'), /\[(emerg|alert|crit)\]/);
    }
  });
});
