/**
 * What issue #20 added to the harness, run for real: the requests wrk sends
 * (POST bodies, plain wrk), the POST baselines' answers against flexilib's,
 * 1,000 connections, and the goals taken against the right reference.
 * Nothing here asserts how fast anything is.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { evaluateGoals, GOALS } from '../lib/goals.ts';
import { loadScenarios } from '../lib/load-scenarios.ts';
import { FULL, shapesFor } from '../lib/plan.ts';
import { compareAnswers, fetchRaw } from '../lib/probe.ts';
import { chartSvg, P99_AXIS_MAX_MS } from '../lib/report/chart-svg.ts';
import { goalRows } from '../lib/report/table.ts';
import { runBench, type RoundResult, type TargetRun } from '../lib/runner.ts';
import type { RunningServer, Scenario } from '../lib/scenario.ts';
import { summarize, type Results } from '../lib/summary.ts';
import { WORKLOADS, workloadBody, wrkRequest, type Workload } from '../lib/workload.ts';
import { findWrk, runWrk, type LoadResult } from '../lib/wrk.ts';
import { TINY } from './tiny-plan.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
let tmp: string;
let scenarios: Map<string, Scenario>;
const started: RunningServer[] = [];

before(async () => {
  assert.ok(findWrk(), 'wrk is missing: install Debian\'s "wrk" package (apt-get install -y wrk; .ci/run does)');
  tmp = mkdtempSync(path.join(os.tmpdir(), 'flexilib-bench-workloads-'));
  scenarios = new Map((await loadScenarios()).map((s) => [s.id, s]));
});

after(async () => {
  await Promise.all(started.map((s) => s.stop()));
  rmSync(tmp, { recursive: true, force: true });
});

/**
 * A loopback server that keeps the first request wrk sends, whole (head and
 * Content-Length bytes of body), and answers every request 200 with no body.
 */
async function captureFirstRequest(run: (port: number) => Promise<LoadResult>): Promise<{ first: string; port: number; result: LoadResult }> {
  let first: string | undefined;
  const server = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(buf.subarray(0, end).toString('latin1'))?.[1] ?? 0);
        const total = end + 4 + length;
        if (buf.length < total) return;
        first ??= buf.subarray(0, total).toString('latin1');
        buf = buf.subarray(total);
        sock.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
      }
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  try {
    const result = await run(port);
    assert.ok(first !== undefined, 'wrk sent a request');
    return { first, port, result };
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

describe('the requests', () => {
  const cases: Array<[string, Workload, boolean]> = [
    ['GET with the reporting script', WORKLOADS.get, false],
    ['GET with plain wrk', WORKLOADS.get, true],
    ['POST with 1 KiB', WORKLOADS['post-1k'], false],
    ['POST with 64 KiB', WORKLOADS['post-64k'], false],
  ];
  for (const [name, w, plain] of cases) {
    test(`${name}: the probe sends the bytes wrk sends`, async () => {
      const { first, port, result } = await captureFirstRequest((p) => runWrk(p, { connections: 1, threads: 1, seconds: 1, delayMs: 0, workload: w, plain }));
      assert.equal(first, wrkRequest(port, w));
      assert.ok(result.requests > 0 && result.errors.total === 0, `wrk read the answers: ${JSON.stringify(result)}`);
    });
  }

  test('the body is the pattern cut to length', () => {
    assert.equal(workloadBody(1024).length, 1024);
    assert.equal(workloadBody(65536).length, 65536);
    assert.equal(workloadBody(70), '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_012345');
  });

  test('plain wrk is for GET without pacing only', () => {
    assert.throws(() => runWrk(1, { connections: 1, threads: 1, seconds: 1, delayMs: 0, workload: WORKLOADS['post-1k'], plain: true }), /plain wrk sends GET without pacing only/);
    assert.throws(() => runWrk(1, { connections: 1, threads: 1, seconds: 1, delayMs: 4, plain: true }), /plain wrk sends GET without pacing only/);
  });

  test('plain wrk\'s non-2xx answers are counted as errors', async () => {
    const server = http.createServer((_req, res) => res.writeHead(503, { 'content-length': '0' }).end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const r = await runWrk((server.address() as net.AddressInfo).port, { connections: 2, threads: 1, seconds: 1, delayMs: 0, plain: true });
      assert.ok(r.requests > 0);
      assert.equal(r.errors.non2xx, r.requests);
      assert.equal(r.errors.total, r.requests);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('POST baselines', () => {
  for (const size of ['1k', '64k'] as const) {
    test(`baseline-node-http-post-${size} answers flexilib-post-${size}'s bytes`, async () => {
      const w = WORKLOADS[`post-${size}`];
      const start = async (id: string) => {
        const s = await scenarios.get(id)!.start({ root: ROOT, tmp: mkdtempSync(path.join(tmp, `${id}-`)), workers: 1, env: {}, nodeArgs: [] });
        started.push(s);
        return s;
      };
      const [base, flexi] = await Promise.all([start(`baseline-node-http-post-${size}`), start(`flexilib-post-${size}`)]);
      const a = await fetchRaw(base.port, wrkRequest(base.port, w));
      const b = await fetchRaw(flexi.port, wrkRequest(flexi.port, w));
      assert.equal(a.status, 200);
      assert.equal(a.body.toString('latin1'), `POST /echo\n${workloadBody(w.bodyBytes)}`, 'the baseline read the whole body');
      assert.equal(a.headers.get('content-length'), String(11 + w.bodyBytes));
      assert.equal(compareAnswers(a, b, 'identical'), undefined);
    });
  }
});

describe('POST and 1,000 connections, run for real', () => {
  test('each target is driven with its request and connections and compared with its own baseline', { timeout: 120_000 }, async () => {
    const ids = ['baseline-node-http-post-1k', 'baseline-node-http-c1000', 'flexilib-inline-c1000', 'flexilib-post-1k'];
    // Two seconds a run: 1,000 connections take a while to be accepted on a busy machine.
    const plan = { ...TINY, throughput: { ...TINY.throughput, seconds: 2 }, latency: { ...TINY.latency, seconds: 2 } };
    const runs = await runBench(ids.map((id) => scenarios.get(id)!), plan, { root: ROOT });
    const targets = new Map(summarize(runs).map((t) => [t.id, t]));
    const run = (id: string) => runs.find((r) => r.id === id)!;
    for (const id of ids) {
      const r = run(id).rounds[0];
      assert.ok(r.throughput.requests > 0 && r.latency.requests > 0, `${id} served both runs: ${JSON.stringify({ throughput: r.throughput, latency: r.latency })}`);
      // Every answer 2xx; 1,000 connections on a busy machine may see some wait past wrk's 2 s timeout (a figure, not a fault).
      assert.ok([r.throughput, r.latency].every((x) => x.errors.non2xx === 0 && x.errors.connect + x.errors.read + x.errors.write === 0), `${id}: no non-2xx answer or socket error: ${JSON.stringify([r.throughput.errors, r.latency.errors])}`);
      if (run(id).connections < 1000) assert.equal(targets.get(id)!.errors, 0, `${id}: no timeouts either`);
      assert.equal(r.plain, undefined, `${id} has no plain wrk run`);
    }
    assert.equal(run('flexilib-post-1k').workload, 'post-1k');
    assert.equal(run('flexilib-post-1k').baseline, 'baseline-node-http-post-1k');
    assert.equal(run('flexilib-inline-c1000').connections, 1000);
    const rps = (id: string) => run(id).rounds[0].throughput.rps;
    const ratio = (a: string, b: string) => Math.round((rps(a) / rps(b)) * 1000) / 1000;
    assert.equal(targets.get('flexilib-post-1k')!.ratio, ratio('flexilib-post-1k', 'baseline-node-http-post-1k'));
    assert.equal(targets.get('flexilib-inline-c1000')!.ratio, ratio('flexilib-inline-c1000', 'baseline-node-http-c1000'));
    const goals = new Map(evaluateGoals([...targets.values()], runs).map((g) => [g.id, g]));
    assert.equal(goals.get('post-1k')!.value, targets.get('flexilib-post-1k')!.ratio);
    assert.equal(goals.get('c1000-errors')!.value, targets.get('flexilib-inline-c1000')!.errors);
    assert.equal(goals.get('c1000-p99')!.value, targets.get('flexilib-inline-c1000')!.paced.p99);
    assert.equal(goals.get('c1000-rss')!.value, targets.get('flexilib-inline-c1000')!.rssMiB.worker);
    assert.equal(goals.get('post-64k')!.missing, 'flexilib-post-64k did not run');
  });

  test('1,000 connections keep the plan\'s offered rate in the paced run, staggered', () => {
    const s = shapesFor(FULL, 1000);
    assert.equal(s.throughput.connections, 1000);
    assert.equal(s.latency.connections, 1000);
    assert.equal(s.latency.connections * 1000 / s.latency.delayMs, FULL.latency.connections * 1000 / FULL.latency.delayMs);
    assert.equal(s.latency.stagger, true);
    assert.deepEqual(shapesFor(FULL), { throughput: FULL.throughput, latency: FULL.latency });
  });
});

describe('goals against the right reference', () => {
  /** A round whose runs did `rps` requests/s (and `plain` under plain wrk). */
  function round(n: number, rps: number, extra: { plain?: number; p99?: number; rssKb?: number } = {}): RoundResult {
    const load = (x: number, p99 = 1): LoadResult => ({
      requests: x * 2, seconds: 2, rps: x,
      latencyMs: { p50: p99 / 2, p90: p99, p99, p999: p99, mean: p99 / 2, max: p99 },
      errors: { total: 0, non2xx: 0, connect: 0, read: 0, write: 0, timeout: 0 },
    });
    return {
      round: n, position: 0, throughput: load(rps), latency: load(rps / 10, extra.p99), ...(extra.plain ? { plain: load(extra.plain) } : {}),
      rssKb: { primary: 50_000, workers: [extra.rssKb ?? 60_000, 1000] }, startMs: 100, warmupRequests: 0, workerCpuUsPerRequest: 10,
    };
  }
  function target(id: string, baseline: string, rounds: RoundResult[], workload: TargetRun['workload'] = 'get', connections = 32): TargetRun {
    const role = id === baseline ? 'baseline' : id.startsWith('nginx') ? 'ceiling' : 'subject';
    return { id, title: id, role, baseline, workload, connections, rounds };
  }
  const GET = 'baseline-node-http';
  // Two rounds with different speeds, so a ratio of medians would differ from the median of per-round ratios... with three it shows.
  const runs: TargetRun[] = [
    target(GET, GET, [round(0, 100, { plain: 200 }), round(1, 50, { plain: 100 }), round(2, 80, { plain: 160 })]),
    target('baseline-node-http-post-1k', 'baseline-node-http-post-1k', [round(0, 50, { rssKb: 80_000 }), round(1, 40), round(2, 100)], 'post-1k'),
    target('baseline-node-http-c1000', 'baseline-node-http-c1000', [round(0, 90), round(1, 90), round(2, 90)], 'get', 1000),
    target('flexilib-inline', GET, [round(0, 90, { plain: 150 }), round(1, 60, { plain: 90 }), round(2, 80, { plain: 120 })]),
    target('flexilib-post-1k', 'baseline-node-http-post-1k', [round(0, 40, { rssKb: 96_000 }), round(1, 44), round(2, 70)], 'post-1k'),
    target('flexilib-inline-c1000', 'baseline-node-http-c1000', [round(0, 45, { p99: 30 }), round(1, 81, { p99: 12 }), round(2, 63, { p99: 14 })], 'get', 1000),
    target('nginx-return-200', GET, [round(0, 130, { plain: 200 }), round(1, 60, { plain: 150 }), round(2, 100, { plain: 240 })]),
  ];
  const targets = summarize(runs);
  const goals = new Map(evaluateGoals(targets, runs).map((g) => [g.id, g]));
  const median3 = (xs: number[]) => [...xs].sort((a, b) => a - b)[1];
  const r3 = (x: number) => Math.round(x * 1000) / 1000;

  test('each ratio is the median of per-round ratios to the target\'s own baseline', () => {
    const t = new Map(targets.map((x) => [x.id, x]));
    assert.equal(t.get('flexilib-post-1k')!.ratio, r3(median3([40 / 50, 44 / 40, 70 / 100])));
    assert.equal(t.get('flexilib-inline-c1000')!.ratio, r3(median3([45 / 90, 81 / 90, 63 / 90])));
    assert.equal(t.get('flexilib-inline')!.ratio, r3(median3([90 / 100, 60 / 50, 80 / 80])));
    assert.equal(t.get('flexilib-post-1k')!.workerRssRatio, r3(96_000 / 80_000), 'RSS against its own baseline too');
    assert.equal(t.get('flexilib-inline')!.plainRps, 120);
  });

  test('the goals take the reference each names', () => {
    assert.equal(goals.get('native-throughput')!.value, r3(median3([0.9, 1.2, 1])));
    assert.equal(goals.get('native-throughput')!.met, true);
    assert.equal(goals.get('native-ceiling')!.value, r3(median3([150 / 200, 90 / 150, 120 / 240])), 'plain wrk runs, inline over nginx');
    assert.equal(goals.get('native-ceiling')!.met, false);
    assert.equal(goals.get('native-plain')!.value, r3(median3([150 / 200, 90 / 100, 120 / 160])));
    assert.equal(goals.get('native-plain')!.met, null, 'reported, not judged');
    assert.equal(goals.get('post-1k')!.value, r3(median3([0.8, 1.1, 0.7])));
    assert.equal(goals.get('c1000-p99')!.value, 14);
    assert.equal(goals.get('c1000-p99')!.met, true);
    assert.equal(goals.get('c1000-errors')!.met, true);
    assert.equal(goals.get('c1000-throughput')!.value, r3(median3([0.5, 0.9, 0.7])));
    assert.match(goals.get('c1000-rss')!.detail ?? '', /^1× bare node:http's 58\.6 MiB at 1,000 connections$/);
    assert.equal(goals.get('wasm-throughput')!.missing, 'flexilib-wasm did not run');
    assert.equal(goals.size, GOALS.length);
  });

  test('the table says which goals were met, missed, reported or not measured', () => {
    const rows = new Map(goalRows([...goals.values()]).map((r) => [r[0], r.slice(1)]));
    const row = (id: string) => rows.get(GOALS.find((g) => g.id === id)!.text)!;
    assert.deepEqual(row('native-throughput'), ['≥ 1×', `${r3(median3([0.9, 1.2, 1]))}×`, 'met']);
    assert.deepEqual(row('native-ceiling'), ['≥ 0.8×', `${r3(median3([0.75, 0.6, 0.5]))}×`, 'MISSED']);
    assert.deepEqual(row('c1000-errors'), ['≤ 0', '0', 'met']);
    assert.deepEqual(row('c1000-p99'), ['≤ 20 ms', '14 ms', 'met']);
    assert.deepEqual(row('c1000-rss'), ['reported', '58.6 MiB (1× bare node:http\'s 58.6 MiB at 1,000 connections)', '']);
    assert.deepEqual(row('wasm-p99'), ['≤ 2 ms', 'flexilib-wasm did not run', 'not measured']);
  });

  test('the chart cuts latency bars beyond its axis and writes their value', () => {
    const results = { mode: 'custom', plan: { ...FULL, rounds: 3 }, generatedAt: new Date().toISOString(), targets, goals: [...goals.values()], raw: runs,
      machine: { cpus: 2, cpuModel: 'x', node: process.version, commit: 'c', loadAvg: { start: 0 } } } as unknown as Results;
    const svg = chartSvg(results);
    assert.ok(30 > P99_AXIS_MAX_MS);
    assert.match(svg, />14\.0 ›</, 'flexilib-inline-c1000\'s paced p99 (14 ms) cut at the axis, its value written');
    for (const t of targets) assert.ok(svg.includes(`>${t.id}</text>`), t.id);
  });
});
