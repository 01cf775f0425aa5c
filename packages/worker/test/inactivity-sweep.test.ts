// The sweep that keeps the fast lane's connection timeouts (inactivity-sweep.ts):
// an item times out `limit` ms after its last activity, at most two sweeps
// late, never before; activity and a new limit restart the count; limit 0
// never times out. Real timers, real clock.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import { InactivitySweep, setLimit, SWEEP_MS, type Timed } from '../src/http/inactivity-sweep.js';

interface Item extends Timed {
  name: string;
  expiredAt: number[];
}

function item(name: string, limit: number): Item {
  const it: Item = { name, limit: 0, since: -1, ticks: 0, seen: 0, expiredAt: [] };
  setLimit(it, limit);
  return it;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('InactivitySweep', () => {
  it('times an idle item out after its limit, never before, at most two sweeps late', async () => {
    const limit = 600;
    const quiet = item('quiet', limit);
    const busy = item('busy', limit);
    const none = item('none', 0);
    const items = [quiet, busy, none];
    const sweep = new InactivitySweep<Item>(() => items, (i) => i.expiredAt.push(performance.now()));
    const start = performance.now();
    sweep.start();
    sweep.start();
    try {
      // `busy` reads every 100 ms for 1.5 s: never idle for its limit.
      const until = start + 1500;
      while (performance.now() < until) {
        busy.ticks++;
        await sleep(100);
      }
      assert.equal(quiet.expiredAt.length >= 1, true, 'the quiet item timed out');
      const late = quiet.expiredAt[0] - start;
      assert.ok(late >= limit, `not before its limit (${late.toFixed(0)} ms)`);
      // Two sweeps of lateness, and room for a loaded machine's late timers.
      assert.ok(late <= limit + 2 * SWEEP_MS + 400, `at most two sweeps late (${late.toFixed(0)} ms)`);
      assert.deepEqual(busy.expiredAt, [], 'activity keeps an item alive');
      assert.deepEqual(none.expiredAt, [], 'limit 0: no timeout');
      // Once timed out, it is not called again before another limit without activity.
      if (quiet.expiredAt.length > 1) assert.ok(quiet.expiredAt[1] - quiet.expiredAt[0] >= limit - 1);
      // A new limit restarts the count, as socket.setTimeout() does.
      const before = busy.expiredAt.length;
      setLimit(busy, 300);
      const set = performance.now();
      while (busy.expiredAt.length === before && performance.now() - set < 5000) await sleep(20);
      const after = busy.expiredAt[before] - set;
      assert.ok(after >= 300 && after <= 300 + 2 * SWEEP_MS + 400, `a new limit counts from when it was set (${after.toFixed(0)} ms)`);
    } finally {
      sweep.stop();
    }
  });

  it('stops: nothing times out after stop()', async () => {
    const i = item('stopped', 100);
    const sweep = new InactivitySweep<Item>(() => [i], (x) => x.expiredAt.push(performance.now()));
    sweep.start();
    sweep.stop();
    await sleep(100 + 3 * SWEEP_MS);
    assert.deepEqual(i.expiredAt, []);
  });
});
