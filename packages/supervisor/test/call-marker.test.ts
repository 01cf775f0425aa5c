/**
 * The call marker end to end: a real process maps its marker file, enters
 * plugin calls, and is killed with SIGKILL; the supervisor side reads the file
 * afterwards and maps the calls back to routes through the config generations.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { markWord, parseConfig, readCalls, readInlineCall } from '@flexilib/contract';
import { ConfigGenerations } from '../src/config-generations.js';
import { attributeDeath, countsAsPluginCrash, exitReason } from '../src/crash-attribution.js';
import { repoRoot, tempDir } from '@flexilib/test-support';

const callMarker = path.join(repoRoot, 'packages/worker/src/native/call-marker.ts');
const markerLayout = path.join(repoRoot, 'packages/contract/src/marker-layout.ts');

test('calls in progress survive the death of the process that recorded them', { timeout: 20_000 }, async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const file = path.join(dir, 'worker-7.marker');
  const script = path.join(dir, 'child.ts');
  writeFileSync(
    script,
    `import { CallMarker } from ${JSON.stringify(callMarker)};
     import { markWord } from ${JSON.stringify(markerLayout)};
     const m = new CallMarker(${JSON.stringify(file)});
     if (!m.shared) throw new Error(m.error);
     // A finished call leaves nothing behind.
     m.enter(0, markWord(1, 0)); m.exit(0);
     // One inline call and two threaded calls in progress; one threaded slot released.
     m.enter(0, markWord(1, 2));
     const a = m.allocSlot(), b = m.allocSlot(), c = m.allocSlot();
     m.enter(a, markWord(0, 1));
     m.enter(b, markWord(1, 0)); m.releaseSlot(b);
     m.enter(c, markWord(1, 70000));
     process.kill(process.pid, 'SIGKILL');`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: path.join(repoRoot, 'packages/supervisor'), stdio: ['ignore', 'inherit', 'inherit'] });
  const signal = await new Promise((r) => child.once('exit', (_c, s) => r(s)));
  assert.equal(signal, 'SIGKILL');

  const c0 = parseConfig('/a = a.so\n/b = b.so\n', path.join(dir, 'proxy.ini'));
  const c1 = parseConfig('/x = x.so\n/y = y.so\n/z = z.so\n', path.join(dir, 'proxy.ini'));
  const gens = new ConfigGenerations(c0);
  gens.advance(c1);

  const { readFileSync } = await import('node:fs');
  const bytes = readFileSync(file);
  assert.deepEqual(readInlineCall(bytes), { slot: 0, generation16: 1, routeIndex: 2, seq: 2 });
  assert.deepEqual(
    readCalls(bytes).map((c) => [c.slot, c.generation16, c.routeIndex]),
    [[0, 1, 2], [1, 0, 1], [3, 1, undefined]],
  );
  const at = attributeDeath(file, gens);
  assert.deepEqual(at.inCall, [
    { mode: 'inline', route: '/z', library: path.join(dir, 'z.so') },
    { mode: 'threaded', route: '/b', library: path.join(dir, 'b.so') }, // begun under the config before the SIGHUP
    { mode: 'threaded' }, // route index beyond the marker's range: unknown
  ]);
  assert.deepEqual(at.libraries, [path.join(dir, 'z.so'), path.join(dir, 'b.so')]);
  assert.ok(!existsSync(file), 'the marker of a dead worker is removed once read');
  assert.deepEqual(attributeDeath(file, gens), { inCall: [], libraries: [] });
});

test('which deaths count toward quarantine', () => {
  const inLib = { inCall: [{ mode: 'inline' as const, route: '/a', library: '/a.so' }], libraries: ['/a.so'] };
  const idle = { inCall: [], libraries: [] };
  assert.equal(exitReason(null, 'SIGSEGV', false, undefined), 'crash');
  assert.equal(exitReason(null, 'SIGKILL', false, undefined), 'killed');
  assert.equal(exitReason(3, null, false, undefined), 'exited');
  assert.equal(exitReason(null, 'SIGKILL', false, 'hang'), 'hang');
  // Replaced for a stuck threaded call: its own SIGKILL (or exit 0) is no crash; a crash meanwhile is.
  assert.equal(exitReason(null, 'SIGKILL', false, undefined, true), 'retired');
  assert.equal(exitReason(0, null, false, undefined, true), 'retired');
  assert.equal(exitReason(null, 'SIGSEGV', false, undefined, true), 'crash');
  assert.equal(exitReason(0, null, true, undefined), 'stopped');
  assert.equal(countsAsPluginCrash('crash', inLib), true);
  assert.equal(countsAsPluginCrash('hang', inLib), true);
  assert.equal(countsAsPluginCrash('exited', inLib), true, 'a plugin calling exit()');
  assert.equal(countsAsPluginCrash('killed', inLib), false, 'kill -9 or the OOM killer is not the plugin\'s fault');
  assert.equal(countsAsPluginCrash('retired', inLib), false, 'a worker replaced for a stuck call');
  assert.equal(countsAsPluginCrash('crash', idle), false, 'a crash outside any plugin call');
  assert.equal(markWord(0x1_0003, 4), (3 << 16) | 5, 'generation kept modulo 65536');
});
