/**
 * The run folder (`/dev/shm/flexilib-<pid>-*`, or the temp folder): call
 * markers and the workers' private library copies live there; a dead worker's
 * files are removed, the folder goes at exit, and folders left by supervisors
 * killed with SIGKILL are swept at the next start.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { compilePlugin, crashOnce, fixture, request, startFlexilib, tempDir } from '@flexilib/test-support';

const base = existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();

test('run folder: per-worker files, removal after a death and at exit, stale folders swept', { timeout: 30_000 }, async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  await Promise.all([compilePlugin(fixture('segfault.c'), path.join(dir, 'libsegv.so')), compilePlugin(fixture('versioned.c'), path.join(dir, 'libok.so'), { defines: ['VERSION="ok"'] })]);
  const config = path.join(dir, 'proxy.ini');
  writeFileSync(config, '/crash = libsegv.so\n/ok = libok.so\n');

  // A folder left by a supervisor that died without cleaning up (its pid is gone).
  const dead = spawnSync(process.execPath, ['-e', '0']).pid;
  const stale = path.join(base, `flexilib-${dead}-AbC123`);
  mkdirSync(stale);
  writeFileSync(path.join(stale, 'worker-1.marker'), 'x');

  const server = await startFlexilib({ config, workers: 1, accessLog: false, args: ['--spare-workers', '0'] });
  t.after(() => server.kill());
  assert.ok(!existsSync(stale), 'the stale run folder was swept');
  const runDir = readdirSync(base).map((n) => path.join(base, n)).find((p) => path.basename(p).startsWith(`flexilib-${server.proc.pid}-`));
  assert.ok(runDir, 'the run folder exists');

  assert.equal((await request(server.port, '/ok')).body, 'ok');
  const files = () => readdirSync(runDir).sort();
  assert.deepEqual(files(), ['verified', 'worker-1.0.metrics', 'worker-1.libs', 'worker-1.marker']);
  assert.deepEqual(readdirSync(path.join(runDir, 'worker-1.libs')), [], 'copies are unlinked once loaded');
  // The supervisor's verified copy of each library, which workers load from.
  const verified = readdirSync(path.join(runDir, 'verified')).sort();
  assert.equal(verified.length, 2, `one copy per library: ${verified}`);
  assert.match(verified.join(' '), /^[0-9a-f]{16}-lib(ok|segv)\.so [0-9a-f]{16}-lib(ok|segv)\.so$/);

  const { exit } = await crashOnce(server, '/crash');
  assert.equal(exit?.signal, 'SIGSEGV');
  assert.ok(!files().includes('worker-1.marker') && !files().includes('worker-1.libs'), `the dead worker's files are gone: ${files()}`);
  assert.equal((await request(server.port, '/ok')).body, 'ok');
  assert.deepEqual(files(), ['verified', 'worker-2.0.metrics', 'worker-2.libs', 'worker-2.marker']);

  server.signal('SIGTERM');
  assert.equal((await server.exited).code, 0);
  assert.ok(!existsSync(runDir), 'removed at exit');
});
