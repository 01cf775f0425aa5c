/**
 * RunQueueProbe tells an instance thread stuck in its call from one waiting
 * for a core, on real threads: one spinning (a runaway call), one sleeping
 * (a call in poll_oneoff), and one spinning but pinned to a CPU that a
 * real-time hog (chrt -f, taskset) holds, so it is runnable with no CPU time:
 * the case where another instance would not help and must not be started.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { availableParallelism } from 'node:os';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { requireTool } from '@flexilib/test-support';
import { PROBE_MS, RunQueueProbe } from '../../src/wasm/run-queue-probe.js';

/** A thread running `body` (its TID posted first); `stop` is a shared flag it watches. */
async function thread(body: 'spin' | 'sleep'): Promise<{ tid: number; stop: () => Promise<void> }> {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const w = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const tid = Number(/\\/task\\/(\\d+)$/.exec(require('node:fs').readlinkSync('/proc/thread-self'))[1]);
     parentPort.postMessage(tid);
     const flag = workerData;
     if (${JSON.stringify(body)} === 'spin') { while (Atomics.load(flag, 0) === 0); }
     else Atomics.wait(flag, 0, 0);`,
    { eval: true, workerData: flag },
  );
  const [tid] = (await once(w, 'message')) as [number];
  return {
    tid,
    stop: async () => {
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
      await once(w, 'exit');
    },
  };
}

/** Two looks `apartMs` apart (PROBE_MS, or longer when the event loop is late), as the instance makes them during one pause: the second is the verdict. */
async function verdictOf(probe: RunQueueProbe, apartMs = PROBE_MS + 5): Promise<boolean> {
  const pausedSince = performance.now();
  assert.equal(probe.stuck(performance.now(), pausedSince), false, 'the first look only samples');
  await sleep(apartMs);
  return probe.stuck(performance.now(), pausedSince);
}

test('a spinning thread and a sleeping one are stuck in their call; one kept from every core is not', { timeout: 30_000 }, async (t) => {
  const chrt = requireTool('chrt', 'util-linux');
  const taskset = requireTool('taskset', 'util-linux');
  assert.ok(availableParallelism() >= 2, 'this test needs 2 CPUs: one held by the hog, one for the test');

  const spinning = await thread('spin');
  t.after(() => spinning.stop());
  assert.equal(await verdictOf(new RunQueueProbe(spinning.tid)), true, 'a thread on a CPU without finishing its call is stuck');
  // A worker kept from the CPU itself looks again late: the verdict is the thread's share of that longer window.
  assert.equal(await verdictOf(new RunQueueProbe(spinning.tid), 8 * PROBE_MS), true, 'looks 8 windows apart: still stuck');
  // A look from an earlier pause is only a sample for this one.
  const probe = new RunQueueProbe(spinning.tid);
  assert.equal(await verdictOf(probe), true);
  assert.equal(probe.stuck(performance.now() + PROBE_MS, performance.now() + 1), false, 'a new pause starts with a sample');

  const sleeping = await thread('sleep');
  t.after(() => sleeping.stop());
  assert.equal(await verdictOf(new RunQueueProbe(sleeping.tid)), true, 'a thread asleep inside its call is stuck');

  // The spinning thread alone on CPU 0, this (main) thread on CPU 1, then a
  // SCHED_FIFO hog takes CPU 0 for a while: the spinner is runnable and gets no time.
  const pin = (cpu: string, tid: number) => spawn(taskset, ['-p', '-c', cpu, String(tid)], { stdio: 'ignore' });
  const [pinned] = (await once(pin('0', spinning.tid), 'exit')) as [number];
  assert.equal(pinned, 0, 'taskset pinned the spinning thread');
  const [self] = (await once(pin('1', process.pid), 'exit')) as [number];
  assert.equal(self, 0, 'taskset pinned the test thread');
  // It says "go" once it holds the CPU (a pipe write is synchronous on Linux), then spins 300 ms.
  const hog = spawn(chrt, ['-f', '10', taskset, '-c', '0', process.execPath, '-e', 'process.stdout.write("go"); const end = Date.now() + 300; while (Date.now() < end);'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const hogExit = once(hog, 'exit');
  t.after(() => hog.kill('SIGKILL'));
  await once(hog.stdout!, 'data');
  assert.equal(await verdictOf(new RunQueueProbe(spinning.tid)), false, 'a runnable thread kept from its CPU is waiting for a core, not stuck');
  const [code] = (await hogExit) as [number];
  assert.equal(code, 0, 'the real-time hog ran (chrt needs root or CAP_SYS_NICE)');
});

test('without a thread id (no /proc), every pause counts as stuck', () => {
  assert.equal(new RunQueueProbe(0).stuck(performance.now(), performance.now()), true);
});
