/**
 * How long an instance's event-loop side waits for the thread's next answer
 * (instance.ts waitMs): never past a stall check that is due, never a
 * fraction of a millisecond. The first regression: a check the clock had just
 * passed made the wait run to the front call's deadline, so calls queued
 * behind a slow call waited all of it (wasm-ring.test.ts saw the quick calls
 * answered 8 s late under load).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { waitMs } from '../../src/wasm/instance.js';

test('waits until the stall check or the deadline, whichever is first', () => {
  assert.equal(waitMs(1000, 11_000, 1100), 100);
  assert.equal(waitMs(1000, 1050, 1100), 50);
  // After a slow call was judged stalled, only its deadline is left.
  assert.equal(waitMs(1000, 11_000, Infinity), 10_000);
});

test('a check or deadline already due: no wait, even when only just passed', () => {
  assert.equal(waitMs(1196.41, 10_000, 1196.4), 0);
  assert.equal(waitMs(1300, 10_000, 1196.4), 0);
  assert.equal(waitMs(11_000.5, 11_000, Infinity), 0);
});

test('whole milliseconds, rounded up: a wait never ends before the check is due', () => {
  assert.equal(waitMs(1196.35, 10_000, 1196.4), 1);
  assert.equal(waitMs(1000.2, 11_000, 1100), 100);
  for (const now of [0.01, 0.5, 99.99]) assert.ok(now + waitMs(now, 10_000, 100) >= 100);
});
