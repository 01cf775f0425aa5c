/** Quarantine bookkeeping and restart backoff: the rules, case by case. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CrashLedger } from '../src/crash-ledger.js';
import { RestartBackoff } from '../src/restart-backoff.js';

const LIB = '/srv/plugins/libcrash.so';
const OTHER = '/srv/plugins/libother.so';

test('K counted deaths within the window quarantine a library', () => {
  const l = new CrashLedger({ crashes: 3, windowS: 60 });
  assert.equal(l.record(LIB, 0, true, 'SIGSEGV'), undefined);
  assert.equal(l.record(LIB, 10_000, true, 'SIGSEGV'), undefined);
  const q = l.record(LIB, 20_000, true, 'SIGABRT');
  assert.ok(q);
  assert.equal(q.crashes, 3);
  assert.equal(q.retryAfterS, 60);
  assert.equal(q.reason, 'library libcrash.so is quarantined: it crashed workers 3 times in 60 s (last: SIGABRT); it is served again when its file changes or the server is sent SIGHUP');
  assert.ok(l.isQuarantined(LIB));
  assert.deepEqual(l.notices(), [{ library: LIB, reason: q.reason, retryAfterS: 60 }]);
  // Already quarantined: no second quarantine event.
  assert.equal(l.record(LIB, 21_000, true, 'SIGSEGV'), undefined);
});

test('deaths older than the window do not count', () => {
  const l = new CrashLedger({ crashes: 3, windowS: 60 });
  l.record(LIB, 0, true, 'SIGSEGV');
  l.record(LIB, 30_000, true, 'SIGSEGV');
  assert.equal(l.record(LIB, 61_000, true, 'SIGSEGV'), undefined, 'the first fell out of the window');
  assert.equal(l.recent(LIB, 61_000), 2);
  assert.ok(l.record(LIB, 62_000, true, 'SIGSEGV'));
});

test('a library only ever busy beside the crashing one is never quarantined', () => {
  const l = new CrashLedger({ crashes: 2, windowS: 60 });
  // Two deaths with both libraries in a call (threaded routes): neither is sole.
  for (const at of [0, 1000]) {
    assert.equal(l.record(LIB, at, false, 'SIGSEGV'), undefined);
    assert.equal(l.record(OTHER, at, false, 'SIGSEGV'), undefined);
  }
  // One more death where LIB alone was in a call: LIB is quarantined, OTHER is not.
  assert.ok(l.record(LIB, 2000, true, 'SIGSEGV'));
  assert.ok(!l.isQuarantined(OTHER));
});

test('lifting forgets the crashes; liftAll lifts everything; 0 crashes turns quarantine off', () => {
  const l = new CrashLedger({ crashes: 2, windowS: 60 });
  l.record(LIB, 0, true, 'SIGSEGV');
  l.record(LIB, 1, true, 'SIGSEGV');
  const v = l.version;
  assert.equal(l.lift(LIB), true);
  assert.equal(l.version, v + 1);
  assert.equal(l.lift(LIB), false);
  assert.equal(l.record(LIB, 2, true, 'SIGSEGV'), undefined, 'history was forgotten');
  l.record(OTHER, 3, true, 'SIGSEGV');
  l.record(OTHER, 4, true, 'SIGSEGV');
  assert.deepEqual(l.liftAll(), [OTHER]);
  assert.deepEqual(l.notices(), []);

  const off = new CrashLedger({ crashes: 0, windowS: 60 });
  for (let i = 0; i < 10; i++) assert.equal(off.record(LIB, i, true, 'SIGSEGV'), undefined);
});

test('restart backoff: at once, then doubling up to the cap; a quiet spell resets it', () => {
  const b = new RestartBackoff({ baseMs: 100, capMs: 1000, resetAfterMs: 10_000 });
  const delays = [0, 1, 2, 3, 4, 5, 6].map((i) => b.next(i * 100));
  assert.deepEqual(delays, [0, 100, 200, 400, 800, 1000, 1000]);
  assert.equal(b.next(600 + 10_001), 0, 'reset after 10 s without a death');
  assert.equal(b.next(600 + 10_002), 100);
});
