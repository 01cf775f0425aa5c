/** The flexilib command's flags, env vars and startup errors, run as a real process. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot, request, runFlexilib, startFlexilib, tempDir, writeConfig } from '@flexilib/test-support';
import { resolveSettings } from '../src/settings.js';

describe('flexilib command line', () => {
  it('--help documents every flag and its environment variable', () => {
    const r = runFlexilib(['--help']);
    assert.equal(r.status, 0);
    for (const flag of ['--config', '--port', '--host', '--workers', '--prealloc-kb', '--max-body', '--admin-host', '--admin-port', '--no-access-log', '--log-level', '--log-format']) {
      assert.ok(r.stdout.includes(flag), `help mentions ${flag}`);
    }
    for (const env of ['PORT', 'HOST', 'SERVER_THREAD_COUNT', 'RESPONSE_PREALLOCATION_KB', 'LOG_LEVEL', 'ADMIN_TOKEN']) {
      assert.ok(r.stdout.includes(env), `help mentions ${env}`);
    }
  });

  it('exits 2 with a clear message for a bad flag or value', () => {
    const unknown = runFlexilib(['--prot', '80']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /flexilib: Unknown option '--prot'/);
    const port = runFlexilib(['--port', '99999']);
    assert.equal(port.status, 2);
    assert.match(port.stderr, /--port: "99999" is not an integer from 0 to 65535/);
    const workers = runFlexilib(['--workers', 'two']);
    assert.equal(workers.status, 2);
    assert.match(workers.stderr, /--workers: "two" is not an integer/);
  });

  it('exits 2 naming the environment variable for a bad env value', () => {
    const r = runFlexilib([], { env: { SERVER_THREAD_COUNT: '0' } });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /SERVER_THREAD_COUNT: "0" is not an integer from 1 to 256/);
    const pre = runFlexilib([], { env: { RESPONSE_PREALLOCATION_KB: '-4' } });
    assert.equal(pre.status, 2);
    assert.match(pre.stderr, /RESPONSE_PREALLOCATION_KB/);
    const lvl = runFlexilib([], { env: { LOG_LEVEL: 'loud' } });
    assert.equal(lvl.status, 2);
    assert.match(lvl.stderr, /LOG_LEVEL: "loud" is not one of fatal, error/);
    const admin = runFlexilib(['--admin-host', '0.0.0.0'], { env: { ADMIN_TOKEN: '' } });
    assert.equal(admin.status, 2);
    assert.match(admin.stderr, /beyond loopback: set ADMIN_TOKEN/);
  });

  it('flags override env vars, which override defaults', () => {
    const s = resolveSettings(['--port', '9000'], { PORT: '8000', SERVER_THREAD_COUNT: '3', RESPONSE_PREALLOCATION_KB: '16', HOST: '127.0.0.1' });
    assert.equal(s.worker.port, 9000);
    assert.equal(s.workers, 3);
    assert.equal(s.worker.arenaBytes, 16 * 1024);
    assert.equal(s.worker.host, '127.0.0.1');
    const d = resolveSettings([], {});
    assert.equal(d.worker.port, 8069);
    assert.equal(d.worker.arenaBytes, 8192);
    assert.equal(d.worker.host, '0.0.0.0');
    assert.equal(d.configFile, 'proxy.ini');
  });

  it('does not start on an invalid config: exit 1, every problem with file and line', () => {
    const tmp = tempDir();
    try {
      const cfg = writeConfig(tmp.dir, '/ok = a.so\nnot a route\n/ok = b.so\n');
      const r = runFlexilib(['--config', cfg, '--port', '0', '--admin-port', '0']);
      assert.equal(r.status, 1);
      assert.ok(r.stderr.includes(`${cfg}:2: malformed line "not a route"`), r.stderr);
      assert.ok(r.stderr.includes(`${cfg}:3: duplicate route "/ok"`), r.stderr);
      const missing = runFlexilib(['--config', path.join(tmp.dir, 'absent.ini')]);
      assert.equal(missing.status, 1);
      assert.match(missing.stderr, /cannot read config .*absent\.ini/);
    } finally {
      tmp.cleanup();
    }
  });

  it('honours PORT-style env vars end to end and serves the root proxy.ini', async () => {
    const server = await startFlexilib({ workers: 1, env: { RESPONSE_PREALLOCATION_KB: '4', HOST: '127.0.0.1' }, cwd: repoRoot });
    try {
      const r = await request(server.port, '/', { headers: { 'x-log-this': 'root' } });
      assert.equal(r.status, 200);
      assert.equal(r.body, 'root 3');
      const line = await server.waitForLog((o) => o.kind === 'access');
      assert.equal(line.preAlloc, 4096);
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });
});
