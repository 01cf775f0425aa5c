/**
 * The bench harness, run for real and small: real servers, real wrk, real
 * files. Nothing here asserts how fast anything is — speed is what
 * `pnpm bench` reports — only that the harness measures what it says.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { fileOf, formatProfile, summarizeProfiles } from '../lib/cpu-profile.ts';
import { areaOf } from '../lib/perf.ts';
import { checkBaselines, loadScenarios } from '../lib/load-scenarios.ts';
import { describeMachine } from '../lib/machine.ts';
import { measureNativeSteps } from '../lib/native-steps.ts';
import { roundOrder, type Plan } from '../lib/plan.ts';
import { compareAnswers, fetchRaw, normalize } from '../lib/probe.ts';
import { wrkRequest } from '../lib/workload.ts';
import { resultsText } from '../lib/report/table.ts';
import { writeOutputs } from '../lib/report/write.ts';
import { runBench } from '../lib/runner.ts';
import { baselineOf, defineScenario, type RunningServer, type Scenario } from '../lib/scenario.ts';
import { findNginx } from '../lib/servers/nginx.ts';
import { startNodeHttpCluster } from '../lib/servers/node-http.ts';
import { findWrk } from '../lib/wrk.ts';
import { TINY } from './tiny-plan.ts';
import { evaluateGoals } from '../lib/goals.ts';
import { summarize, type Results } from '../lib/summary.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

let tmp: string;
let scenarios: Map<string, Scenario>;
const started: RunningServer[] = [];

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'flexilib-bench-test-'));
  scenarios = new Map((await loadScenarios()).map((s) => [s.id, s]));
});

after(async () => {
  await Promise.all(started.map((s) => s.stop()));
  rmSync(tmp, { recursive: true, force: true });
});

async function start(s: Scenario): Promise<RunningServer> {
  const dir = mkdtempSync(path.join(tmp, `${s.id}-`));
  const server = await s.start({ root: ROOT, tmp: dir, workers: 2, env: {}, nodeArgs: [] });
  started.push(server);
  return server;
}

describe('scenarios', () => {
  test('every file in bench/scenarios is a scenario named after its file, the baselines first', () => {
    const ids = [...scenarios.keys()];
    assert.equal(ids[0], 'baseline-node-http');
    const baselines = ids.filter((id) => scenarios.get(id)!.role === 'baseline');
    assert.deepEqual(ids.slice(0, baselines.length), baselines, 'baselines lead every round, so their answers are recorded before they are compared with');
    for (const id of [
      'flexilib-inline', 'flexilib-threaded', 'flexilib-logs-metrics-off', 'flexilib-logs-metrics-on', 'nginx-return-200', 'nginx-proxy-pass',
      'flexilib-upstream', 'flexilib-wasm', 'flexilib-lambda-node', 'flexilib-worker', 'flexilib-post-1k', 'flexilib-post-64k', 'flexilib-inline-c1000', 'node-net-floor', 'node-net-proxy-floor',
    ]) {
      assert.ok(ids.includes(id), `${id} is missing`);
    }
    assert.equal(scenarios.get('nginx-return-200')!.role, 'ceiling');
    // Each subject against the baseline doing the same work.
    assert.equal(baselineOf(scenarios.get('flexilib-post-1k')!), 'baseline-node-http-post-1k');
    assert.equal(baselineOf(scenarios.get('flexilib-post-64k')!), 'baseline-node-http-post-64k');
    assert.equal(baselineOf(scenarios.get('flexilib-inline-c1000')!), 'baseline-node-http-c1000');
    assert.equal(baselineOf(scenarios.get('flexilib-wasm')!), 'baseline-node-http');
    assert.equal(scenarios.get('node-net-floor')!.role, 'ceiling');
    assert.equal(scenarios.get('node-net-proxy-floor')!.role, 'ceiling');
    // The ceiling comparison drives these with plain wrk too.
    assert.deepEqual(ids.filter((id) => scenarios.get(id)!.plainWrk).sort(), ['baseline-node-http', 'flexilib-inline', 'nginx-return-200', 'node-net-floor']);
  });

  test('a scenario against a baseline doing other work, or against no baseline, is refused at load', () => {
    const all = [...scenarios.values()];
    const wrongWork = defineScenario({ id: 'x', title: 'x', role: 'subject', conformance: 'identical', workload: 'post-1k', start: () => Promise.reject(new Error('not started')) });
    assert.throws(() => checkBaselines([...all, wrongWork]), /x: its baseline baseline-node-http sends get at the plan's connections, it post-1k/);
    const wrongLoad = defineScenario({ id: 'y', title: 'y', role: 'subject', conformance: 'identical', against: 'baseline-node-http', connections: 1000, start: () => Promise.reject(new Error('not started')) });
    assert.throws(() => checkBaselines([...all, wrongLoad]), /y: its baseline baseline-node-http sends get at the plan's connections, it get at 1000/);
    const noBase = defineScenario({ id: 'z', title: 'z', role: 'subject', conformance: 'identical', against: 'flexilib-inline', start: () => Promise.reject(new Error('not started')) });
    assert.throws(() => checkBaselines([...all, noBase]), /z: against "flexilib-inline" is not a scenario with role "baseline"/);
    assert.doesNotThrow(() => checkBaselines(all));
  });

  test('rounds alternate direction so drift lands on every target alike', () => {
    assert.deepEqual(roundOrder(3, 0), [0, 1, 2]);
    assert.deepEqual(roundOrder(3, 1), [2, 1, 0]);
    assert.deepEqual(roundOrder(3, 2), [0, 1, 2]);
  });
});

describe('conformance', () => {
  test('the baseline and flexilib (inline and threaded) answer wrk\'s request with the same bytes', async () => {
    const [base, inline, threaded] = await Promise.all(['baseline-node-http', 'flexilib-inline', 'flexilib-threaded'].map((id) => start(scenarios.get(id)!)));
    const a = await fetchRaw(base.port, wrkRequest(base.port));
    assert.equal(a.status, 200);
    assert.equal(a.body.toString(), ' 1', 'wrk sends one header (Host), so the body is " 1"');
    assert.equal(a.headers.get('x-custom-foo'), 'bar');
    assert.match(normalize(a.raw), /^HTTP\/1\.1 200 OK\r\nX-custom-foo: bar\r\ncontent-type: text\/plain\r\ncontent-length: 2\r\nDate: <date>\r\n/);
    for (const s of [inline, threaded]) {
      const b = await fetchRaw(s.port, wrkRequest(s.port));
      assert.equal(compareAnswers(a, b, 'identical'), undefined);
    }
    // The same request with one more header: both count it, so both answer " 2".
    const two = (port: number) => `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Extra: 1\r\n\r\n`;
    const a2 = await fetchRaw(base.port, two(base.port));
    const b2 = await fetchRaw(inline.port, two(inline.port));
    assert.equal(a2.body.toString(), ' 2');
    assert.equal(compareAnswers(a2, b2, 'identical'), undefined);
  });

  test('a server that answers other bytes is caught, and stops the bench', async () => {
    // The baseline's code with one difference: the header name lower-cased.
    const script = path.join(tmp, 'other-bytes.mjs');
    writeFileSync(script, readFileSync(path.join(ROOT, 'bench/servers/node-http-cluster.mjs'), 'utf8')
        .replace("'X-custom-foo'", "'x-custom-foo'")
        .replace("'./cluster-primary.mjs'", JSON.stringify(pathToFileURL(path.join(ROOT, 'bench/servers/cluster-primary.mjs')).href)),
    );
    const dir = mkdtempSync(path.join(tmp, 'other-'));
    const other = await startNodeHttpCluster({ root: ROOT, tmp: dir, workers: 1, env: {}, nodeArgs: [] }, path.relative(ROOT, script));
    started.push(other);
    const base = await start(scenarios.get('baseline-node-http')!);
    const a = await fetchRaw(base.port, wrkRequest(base.port));
    const b = await fetchRaw(other.port, wrkRequest(other.port));
    assert.match(compareAnswers(a, b, 'identical') ?? '', /answers differ[\s\S]*x-custom-foo/);
    // Same content, so the looser check that nginx gets lets it through.
    assert.equal(compareAnswers(a, b, 'same-content'), undefined);

    const impostor = defineScenario({
      id: 'impostor',
      title: 'answers other bytes',
      role: 'subject',
      conformance: 'identical',
      start: (ctx) => startNodeHttpCluster(ctx, path.relative(ROOT, script)),
    });
    const plan: Plan = { ...TINY, workers: 1 };
    await assert.rejects(runBench([scenarios.get('baseline-node-http')!, impostor], plan, { root: ROOT }), /impostor: the answers differ/);
  });
});

describe('a tiny real run', () => {
  test('measures every target and writes the table, JSON, chart and doc', async () => {
    assert.ok(findWrk(), 'wrk is missing: install Debian\'s "wrk" package (apt-get install -y wrk; .ci/run does)');
    assert.ok(findNginx(), 'nginx is missing: install Debian\'s "nginx-light" package (apt-get install -y nginx-light; .ci/run does)');
    const ids = ['baseline-node-http', 'flexilib-inline', 'nginx-return-200'];
    const runs = await runBench(ids.map((id) => scenarios.get(id)!), TINY, { root: ROOT });
    const targets = summarize(runs);
    const results: Results = {
      schema: 1,
      generatedAt: new Date().toISOString(),
      mode: TINY.mode,
      command: 'test',
      plan: TINY,
      machine: describeMachine(ROOT),
      elapsedSeconds: 1,
      targets,
      goals: evaluateGoals(targets, runs),
      nativeSteps: measureNativeSteps(ROOT, true, 20_000),
      raw: runs,
    };
    const steps = results.nativeSteps!.steps;
    assert.ok(steps.length >= 5 && steps.every((s) => Number.isFinite(s.ns) && s.ns >= 0) && steps.at(-1)!.ns > 0, `native steps timed: ${JSON.stringify(steps)}`);
    for (const t of targets) {
      assert.equal(t.rounds, 1, t.id);
      assert.ok(t.rps > 0, `${t.id} served requests`);
      assert.equal(t.errors, 0, `${t.id} answered every request with 2xx`);
      const raw = runs.find((r) => r.id === t.id)!.rounds[0];
      assert.equal(raw.rssKb.workers.length, 2, `${t.id}: both workers found`);
      assert.ok(raw.rssKb.workers.every((kb) => kb > 0) && (raw.rssKb.primary ?? 0) > 0, `${t.id}: peak RSS read`);
      assert.ok(raw.latency.latencyMs.p99 >= raw.latency.latencyMs.p50 && raw.latency.latencyMs.p50 > 0);
      assert.ok(t.config && !t.config.includes(ROOT), `${t.id}: config recorded without machine paths`);
    }
    assert.equal(targets[0].ratio, 1);
    const inline = targets.find((t) => t.id === 'flexilib-inline')!;
    const rpsOf = (id: string) => runs.find((r) => r.id === id)!.rounds[0].throughput.rps;
    assert.equal(inline.ratio, Math.round((rpsOf('flexilib-inline') / rpsOf('baseline-node-http')) * 1000) / 1000);
    // Goals with both scenarios present have values; the logs on/off pair did not run.
    const goals = new Map(results.goals.map((g) => [g.id, g]));
    assert.equal(goals.get('native-throughput')!.value, inline.ratio);
    assert.equal(goals.get('observability-cost')!.met, null);
    assert.equal(goals.get('proxy-throughput')!.met, null);
    // All three also ran under plain wrk, and the ceiling goal is inline's plain req/s over nginx's.
    const plainOf = (id: string) => runs.find((r) => r.id === id)!.rounds[0].plain!;
    for (const id of ids) {
      const p = plainOf(id);
      assert.ok(p.requests > 0 && p.rps > 0 && p.latencyMs.p99 >= p.latencyMs.p50 && p.latencyMs.p999 === null, `${id}: plain wrk run parsed: ${JSON.stringify(p)}`);
      assert.equal(targets.find((t) => t.id === id)!.plainRps, Math.round(p.rps));
    }
    assert.equal(goals.get('native-ceiling')!.value, Math.round((plainOf('flexilib-inline').rps / plainOf('nginx-return-200').rps) * 1000) / 1000);
    assert.equal(goals.get('native-plain')!.value, Math.round((plainOf('flexilib-inline').rps / plainOf('baseline-node-http').rps) * 1000) / 1000);

    const text = resultsText(targets, results.goals);
    for (const id of ids) assert.match(text, new RegExp(`^${id} `, 'm'));

    const out = path.join(tmp, 'out');
    const docFile = path.join(tmp, 'docs', 'performance.md');
    writeOutputs(results, out, docFile);
    const json = JSON.parse(readFileSync(path.join(out, 'latest.json'), 'utf8')) as Results;
    assert.equal(json.targets.length, 3);
    assert.equal(json.raw[0].rounds[0].throughput.requests, runs[0].rounds[0].throughput.requests);
    assert.ok(!readFileSync(path.join(out, 'latest.json'), 'utf8').includes(ROOT), 'no machine paths in the results');
    const svg = readFileSync(path.join(out, 'latest.svg'), 'utf8');
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"[^>]*>[\s\S]*<\/svg>\n$/);
    for (const t of targets.filter((x) => !x.skipped)) {
      assert.ok(svg.includes(`>${t.id}</text>`), `chart labels ${t.id}`);
      assert.ok(svg.includes(t.rps.toLocaleString('en-US')), `chart shows ${t.id}'s req/s`);
    }
    const doc = readFileSync(docFile, 'utf8');
    assert.doesNotMatch(doc, /\{\{\w+\}\}/, 'every placeholder filled');
    assert.match(doc, /\| baseline-node-http \| [\d,]+ \| 1\.00 \| [\d,]+ \|/, 'req/s, ratio and plain wrk req/s');
    assert.match(doc, /\| native inline GET: req\/s vs nginx return 200 \(the ceiling\), both driven by plain wrk \| ≥ 0\.8× \| [\d.]+× \| (met|MISSED) \|/);
    assert.match(doc, /\*\*flexilib-inline\*\* — [^\n]*\(GET \/, 32 connections; against baseline-node-http\)/);
    assert.match(doc, /^## Where each kind's time goes/m, 'the section the lead fills in');
    assert.match(doc, new RegExp(`Node\\.js ${process.version.replace(/\./g, '\\.')}`));
    assert.match(doc, /\| Slot\.fillRequest [^|]*\| \d+ \| [\d.]+ % \|/, 'native steps in the doc, with their share of the baseline');
  });
});

describe('cpu profile summary', () => {
  test('attributes a real profile\'s time to the function that spent it', () => {
    const dir = mkdtempSync(path.join(tmp, 'prof-'));
    const code = 'function burnCpu(){let x=0;const t=Date.now();while(Date.now()-t<300)x+=Math.sqrt(x+1);return x}burnCpu()';
    const r = spawnSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, '-e', code], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const files = readdirSync(dir).map((f) => path.join(dir, f));
    assert.equal(files.length, 1);
    const s = summarizeProfiles(files);
    const burn = [...s.byFunction.entries()].filter(([k]) => k.startsWith('burnCpu ')).reduce((n, [, v]) => n + v, 0);
    assert.ok(burn > 0.5 * s.busyUs, `burnCpu has most of the busy time (${burn} of ${s.busyUs} µs)`);
    assert.ok((s.inclusive.get('burnCpu') ?? 0) >= burn);
    assert.match(formatProfile('t', s, ['burnCpu']), /inclusive time of hot-path functions:\n\s+[\d.]+ %\s+burnCpu/);
    assert.equal(fileOf({ functionName: 'x', url: 'file:///a/packages/worker/dist/native/slot.js', lineNumber: 0 }), 'worker/native/slot.js');
    assert.equal(fileOf({ functionName: 'x', url: 'file:///a/node_modules/.pnpm/pino@10.1.0/node_modules/pino/lib/proto.js', lineNumber: 0 }), 'npm:pino');
  });

  test('perf samples are sorted into areas by library and symbol', () => {
    assert.equal(areaOf('[kernel.kallsyms]', 'tcp_ack'), 'kernel (sockets, scheduling)');
    assert.equal(areaOf('koffi.node', '0x85b01'), 'koffi (FFI)');
    assert.equal(areaOf('0-libflexi_example.so (deleted)', '0x1152'), 'plugin (.so)');
    assert.equal(areaOf('[JIT] tid 1', 'JS:*readResponse file:///r/packages/worker/dist/native/slot.js:133:17'), 'flexilib JavaScript');
    assert.equal(areaOf('[JIT] tid 1', 'JS:*parserOnIncoming node:_http_server:1026:26'), 'node core JavaScript (http, streams)');
    assert.equal(areaOf('node', 'llhttp__internal_execute'), 'llhttp (parser)');
    assert.equal(areaOf('node', 'Builtins_LoadIC'), 'V8 builtins (property access, calls)');
  });
});
