#!/usr/bin/env node
// Supervisor figures, rerunnable by anyone:  pnpm build && node --import tsx scripts/reload-figures.mjs
//
//   1. failed requests across 20 library reloads under continuous load
//      (10 by rename, 10 by in-place cp), and the time from the file write to
//      the new version served (first answer, and every worker);
//   2. kill -9 of a worker under load, 5 times, with the spare worker (default)
//      and without (--spare-workers 0): time from the death to the replacement
//      listening, and requests lost per kill against the connections the dead
//      worker held.
//
// Each load loop keeps one request in flight on its own keep-alive connection,
// so "only requests in flight on the dead worker are lost" shows as at most one
// failure per loop per kill.
//
// Options: --reloads N (20), --kills N (5), --concurrency N (16), --json FILE.
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { compilePlugin, exampleSource, fixture, load, request, sleep, startFlexilib, tempDir } from '../packages/test-support/src/index.ts';

const run = promisify(execFile);
const { values: opt } = parseArgs({ options: { reloads: { type: 'string', default: '20' }, kills: { type: 'string', default: '5' }, concurrency: { type: 'string', default: '16' }, json: { type: 'string' } } });
const RELOADS = Number(opt.reloads);
const KILLS = Number(opt.kills);
const CONCURRENCY = Number(opt.concurrency);

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, min: s[0], median: q(0.5), p90: q(0.9), max: s[s.length - 1] };
};
const fmt = (st) => `median ${st.median} ms, p90 ${st.p90} ms, max ${st.max} ms (n=${st.n})`;

async function reloads(dir) {
  const libs = path.join(dir, 'libs');
  mkdirSync(libs);
  const builds = { a: path.join(dir, 'va.so'), b: path.join(dir, 'vb.so') };
  await Promise.all([compilePlugin(fixture('versioned.c'), builds.a, { defines: ['VERSION="va"'] }), compilePlugin(fixture('versioned.c'), builds.b, { defines: ['VERSION="vb"'] })]);
  const lib = path.join(libs, 'libversioned.so');
  copyFileSync(builds.a, lib);
  const config = path.join(dir, 'reload.ini');
  writeFileSync(config, '/v = libs/libversioned.so\n');
  const server = await startFlexilib({ config, workers: 2, accessLog: false });
  try {
    const traffic = load(server.port, '/v', { concurrency: CONCURRENCY, maxMs: 10 * 60_000 });
    await sleep(500);
    const first = [];
    const all = [];
    const workerReload = [];
    let current = 'va';
    for (let i = 0; i < RELOADS; i++) {
      const next = current === 'va' ? 'vb' : 'va';
      const from = server.logs.length;
      const t0 = performance.now();
      if (i % 2 === 0) {
        copyFileSync(builds[next.slice(1)], path.join(libs, '.tmp'));
        renameSync(path.join(libs, '.tmp'), lib);
      } else {
        await run('cp', [builds[next.slice(1)], lib]);
      }
      // Probe on fresh connections until 6 answers in a row are the new version.
      let firstAt;
      let streak = 0;
      while (streak < 6) {
        const r = await request(server.port, '/v').catch(() => ({ body: '' }));
        if (r.body === next) {
          firstAt ??= performance.now();
          streak++;
        } else streak = 0;
        if (performance.now() - t0 > 10_000) throw new Error(`reload ${i}: ${next} not served within 10 s`);
      }
      first.push(Math.round(firstAt - t0));
      all.push(Math.round(performance.now() - t0));
      const done = await server.waitForLog((l) => l.msg === 'library reloaded', { from, timeoutMs: 5000 });
      workerReload.push(done.durationMs);
      current = next;
      await sleep(300);
    }
    const res = await traffic.stop();
    return { reloads: RELOADS, requests: res.ok + res.failed, failed: res.failed, errors: res.errors.slice(0, 5), firstServed: stats(first), allWorkers: stats(all), workersReload: stats(workerReload) };
  } finally {
    await server.kill();
  }
}

async function kills(dir, spare) {
  const config = path.join(dir, 'crash.ini');
  writeFileSync(config, '/ = example.so\n');
  const server = await startFlexilib({ config, workers: 2, accessLog: false, args: ['--spare-workers', String(spare)] });
  try {
    const traffic = load(server.port, '/', { concurrency: CONCURRENCY, maxMs: 10 * 60_000 });
    await sleep(1000);
    const replaced = [];
    const lost = [];
    const worstLoop = [];
    for (let i = 0; i < KILLS; i++) {
      const [victim] = server.workerPids();
      const from = server.logs.length;
      const failedBefore = traffic.result.failed;
      const byLoopBefore = [...traffic.result.failedByLoop];
      process.kill(victim, 'SIGKILL');
      const back = await server.waitForLog((l) => l.msg === 'worker listening' && l.replaces?.pid === victim, { from, timeoutMs: 15_000 });
      replaced.push(back.sinceDeathMs);
      // 3 s apart: the new spare (forked after the restart backoff's delay) has time to start.
      await sleep(3000);
      lost.push(traffic.result.failed - failedBefore);
      worstLoop.push(Math.max(...traffic.result.failedByLoop.map((f, j) => f - byLoopBefore[j])));
    }
    const res = await traffic.stop();
    return { spare, kills: KILLS, requests: res.ok + res.failed, failed: res.failed, lostPerKill: lost, worstConnectionPerKill: worstLoop, replacement: stats(replaced), maxGapMs: res.maxGapMs };
  } finally {
    await server.kill();
  }
}

const { dir, cleanup } = tempDir('figures');
try {
  await compilePlugin(exampleSource, path.join(dir, 'example.so'));
  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`;
  console.log(`machine: ${machine}`);
  const r = await reloads(dir);
  console.log(`\n## Hot reload: ${r.reloads} reloads (half by rename, half by in-place cp) under ${CONCURRENCY} keep-alive connections`);
  console.log(`failed requests: ${r.failed} of ${r.requests}${r.errors.length ? ` (${r.errors.join('; ')})` : ''}`);
  console.log(`file written -> new version first served: ${fmt(r.firstServed)}`);
  console.log(`file written -> every worker serves it:   ${fmt(r.allWorkers)}`);
  console.log(`debounce end -> every worker reloaded:    ${fmt(r.workersReload)}`);
  const k = [];
  for (const spare of [1, 0]) {
    const x = await kills(dir, spare);
    k.push(x);
    console.log(`\n## kill -9 of a worker under load, ${x.kills} times, --spare-workers ${spare} (2 workers, ${CONCURRENCY} connections)`);
    console.log(`death -> replacement listening: ${fmt(x.replacement)}`);
    console.log(`requests lost per kill: ${x.lostPerKill.join(', ')} of ${CONCURRENCY} connections (keep-alive connections stay on the worker they reached, so the dead one may hold more than half); ${x.failed} of ${x.requests} in all`);
    console.log(`most requests lost by one connection in one kill: ${Math.max(...x.worstConnectionPerKill)} (1 = only the request in flight on the dead worker)`);
    console.log(`longest stretch without an answer: ${x.maxGapMs} ms`);
  }
  if (opt.json) writeFileSync(opt.json, JSON.stringify({ machine, date: new Date().toISOString(), reload: r, kill: k }, null, 2) + '\n');
} finally {
  cleanup();
}
