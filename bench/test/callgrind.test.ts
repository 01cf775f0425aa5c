/**
 * --instructions' reading of callgrind, on a real callgrind run of a real
 * node process: a dump taken with callgrind_control while it idles, the
 * event-loop thread found, JIT-compiled JavaScript named through node's
 * --perf-basic-prof map, and the per-request division.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { callgrindControl, callgrindLauncher, callgrindMissing, countInstructions, formatInstructions } from '../lib/callgrind.ts';
import { removePerfMaps } from '../lib/perf.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'flexilib-callgrind-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('counts a node process under callgrind and names its hot JavaScript function', { timeout: 180_000 }, async () => {
  assert.equal(callgrindMissing(), undefined, 'valgrind with callgrind is installed (.ci/run installs it)');
  // The hot function runs on a timer after start-up, so zeroing after "ready" leaves only its calls.
  const script = `
    function hotLoop(n) { let s = 0; for (let i = 0; i < n; i++) s = (s + i * 7) % 1000003; return s; }
    console.log('ready');
    setTimeout(() => { let t = 0; for (let k = 0; k < 2000; k++) t += hotLoop(500); console.log('done', t); setInterval(() => {}, 1000); }, 1500);
  `;
  const [cmd, ...pre] = callgrindLauncher(dir, 'probe');
  const child = spawn(cmd, [...pre, process.execPath, '--perf-basic-prof', '-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  const waitFor = async (word: string) => {
    for (let i = 0; i < 1200 && !out.includes(word); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(out.includes(word), `the probe printed "${word}"`);
  };
  try {
    await waitFor('ready');
    callgrindControl('-z', [child.pid!]);
    await waitFor('done');
    callgrindControl('-d', [child.pid!]);
    const files = readdirSync(dir).filter((f) => f.startsWith(`probe.${child.pid}.1-`));
    assert.ok(files.includes(`probe.${child.pid}.1-01`), `a dump of the main thread: ${files.join(', ')}`);

    const c = countInstructions(dir, 'probe', 2000);
    // 2000 calls of a 500-iteration loop: a few instructions per iteration at least.
    assert.ok(c.mainPerRequest > 500, `main thread ${c.mainPerRequest} instructions per call`);
    assert.ok(c.allPerRequest >= c.mainPerRequest);
    const hot = c.top.find(([name]) => /^JS:[*^~]?hotLoop /.test(name));
    assert.ok(hot, `hotLoop is named from the perf map; top: ${c.top.slice(0, 8).map(([n]) => n).join(' | ')}`);
    assert.ok(hot[1] > 250, `hotLoop's own cost per call: ${hot[1]}`);
    assert.ok(c.byArea.some(([area]) => area === 'other JavaScript'), 'JIT code is grouped as JavaScript');
    assert.match(formatInstructions(c), /^probe: 2000 requests counted; instructions per request, main thread [\d.]+k/);
  } finally {
    child.kill('SIGKILL');
    removePerfMaps([child.pid!]);
  }
});
