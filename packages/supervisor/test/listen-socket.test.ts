/**
 * The traffic port is bound by the supervisor before any worker starts: a port
 * another server listens on stops flexilib at once, with FLX_LISTEN naming the
 * address (exit code 1), instead of workers failing to listen one after another.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { test } from 'node:test';
import { runFlexilib, tempDir, writeConfig } from '@flexilib/test-support';

test('a --port in use: FLX_LISTEN naming host:port, exit code 1', async (t) => {
  const { dir, cleanup } = tempDir('listen-socket');
  t.after(cleanup);
  const taken = net.createServer().listen(0, '127.0.0.1');
  await once(taken, 'listening');
  t.after(() => taken.close());
  const port = (taken.address() as net.AddressInfo).port;
  const r = runFlexilib(['--config', writeConfig(dir, '/x = upstream:p\n[upstream.p]\nservers = http://127.0.0.1:9\n'), '--host', '127.0.0.1', '--port', String(port), '--admin-port', '0', '--log-format', 'json']);
  assert.equal(r.status, 1, r.stderr + r.stdout);
  assert.match(r.stderr, new RegExp(`flexilib: cannot listen on 127\\.0\\.0\\.1:${port}: the port is already in use \\(--port\\)`));
  const fatal = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { code?: string; level: number }).find((l) => l.level === 60);
  assert.equal(fatal?.code, 'FLX_LISTEN');
});
