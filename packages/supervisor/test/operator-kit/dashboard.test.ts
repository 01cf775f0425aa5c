/**
 * deploy/grafana/flexilib.json: every query of every panel, run through a real
 * Prometheus's HTTP API while it scrapes a real flexilib under bounded load
 * (native, upstream and WASM routes, 404s, a crash loop into quarantine, an
 * origin that is down), returns series. Panels without a metric behind them
 * yet are text panels, and only those named here.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  compilePlugin, compileWasm, crashOnce, exampleSource, fixture, freePort, load, repoRoot, request, sleep, startFlexilib, tempDir, waitForAnswers,
} from '@flexilib/test-support';
import { startOrigin } from '../upstream/origins.js';
import { startPrometheus } from './prometheus-server.js';

interface Panel {
  type: string;
  title: string;
  id: number;
  targets?: Array<{ expr: string; refId: string }>;
  options?: { content?: string };
}

const dashboard = JSON.parse(readFileSync(path.join(repoRoot, 'deploy/grafana/flexilib.json'), 'utf8')) as { uid: string; panels: Panel[] };
/** Marked places for what has no metric yet. */
const RESERVED = ['Lambda and worker functions', 'Cluster state'];

/** Grafana's variables as they resolve for one flexilib scraped as job "flexilib". */
const resolve = (expr: string) => expr.replaceAll('$__rate_interval', '20s').replaceAll('$job', 'flexilib').replaceAll('$instance', '.*');

test('the dashboard is well formed: unique ids, a query on every graph, text only for the reserved places', () => {
  assert.equal(dashboard.uid, 'flexilib');
  const ids = dashboard.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  for (const p of dashboard.panels) {
    if (p.type === 'row') continue;
    if (p.type === 'text') {
      assert.ok(RESERVED.includes(p.title), `text panel "${p.title}" is one of the reserved places`);
      assert.match(p.options?.content ?? '', /not available yet|Reserved/i);
      continue;
    }
    assert.ok(p.targets?.length, `panel "${p.title}" has queries`);
    for (const t of p.targets!) assert.match(t.expr, /flexilib_|^up\{|process_/, `panel "${p.title}" ${t.refId} queries flexilib`);
  }
  for (const title of RESERVED) assert.ok(dashboard.panels.some((p) => p.title === title), `reserved place "${title}" is on the dashboard`);
});

test('every panel query returns series from a real Prometheus scraping flexilib under load', { timeout: 180_000 }, async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  await Promise.all([
    compilePlugin(fixture('segfault.c'), path.join(dir, 'libsegv.so')),
    compilePlugin(fixture('versioned.c'), path.join(dir, 'libok.so'), { defines: ['VERSION="ok"'] }),
    compileWasm(exampleSource, path.join(dir, 'example.wasm')),
  ]);
  const up = (await startOrigin(t, 'from origin')).port;
  const dead = await freePort(); // nothing listens: the health checks mark it down
  const config = path.join(dir, 'proxy.ini');
  writeFileSync(config, [
    '/crash = libsegv.so', '/ok = libok.so', '/api = upstream:api', '/wasm = example.wasm',
    '[upstream.api]', `servers = http://127.0.0.1:${up}, http://127.0.0.1:${dead}`, 'health_interval = 1s', 'fall = 1', '',
  ].join('\n'));
  const server = await startFlexilib({ config, workers: 2, accessLog: false, args: ['--quarantine-crashes', '2', '--quarantine-window', '60'] });
  t.after(() => server.kill());
  await waitForAnswers(server.port, '/ok', (r) => r.body === 'ok');
  await waitForAnswers(server.port, '/wasm', (r) => r.status === 200);

  const prom = await startPrometheus(path.join(dir, 'prom'), 'flexilib', `127.0.0.1:${server.adminPort}`);
  t.after(() => prom.stop());

  // Bounded load on every kind of route, errors included (404s; 503s once quarantined).
  const traffic = ['/ok', '/api', '/wasm', '/missing'].map((target) => load(server.port, target, { concurrency: 1, maxRequests: 20_000, maxMs: 90_000 }));
  t.after(() => Promise.all(traffic.map((l) => l.stop())));
  let quarantined = false;
  for (let i = 0; i < 6 && !quarantined; i++) quarantined = (await crashOnce(server, '/crash')).reply?.status === 503;
  assert.ok(quarantined, 'the crashing route was quarantined');
  for (let i = 0; i < 20; i++) await request(server.port, '/crash');

  // Every query returns series once a few scrapes saw all of that.
  const missing = new Map<string, string>();
  const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((tg) => ({ panel: p.title, refId: tg.refId, expr: resolve(tg.expr) })));
  assert.ok(queries.length >= 20, `${queries.length} queries`);
  for (const q of queries) missing.set(`${q.panel} ${q.refId}`, q.expr);
  const deadline = Date.now() + 60_000;
  while (missing.size && Date.now() < deadline) {
    for (const q of queries) {
      const key = `${q.panel} ${q.refId}`;
      if (missing.has(key) && (await prom.query(q.expr)).length > 0) missing.delete(key);
    }
    if (missing.size) await sleep(1000);
  }
  assert.deepEqual([...missing.entries()], [], 'panel queries without series');

  // And the series say what happened.
  /** Each series' labels and its value. */
  type Series = { value: number; [label: string]: string | number };
  const value = async (expr: string) => (await prom.query(expr)).map((s): Series => ({ ...s.metric, value: Number(s.value[1]) }));
  assert.deepEqual((await value('sum(flexilib_quarantined_libraries)')).map((s) => s.value), [1]);
  const health = await value('flexilib_upstream_origin_healthy');
  assert.equal(health.find((s) => s.origin === `http://127.0.0.1:${dead}`)?.value, 0, 'the dead origin is down');
  assert.equal(health.find((s) => s.origin === `http://127.0.0.1:${up}`)?.value, 1, 'the live origin is up');
  const byKind = await value('sum by (kind) (flexilib_requests_total)');
  for (const kind of ['native', 'upstream', 'wasm', 'none']) assert.ok((byKind.find((s) => s.kind === kind)?.value ?? 0) > 0, `requests of kind ${kind}: ${JSON.stringify(byKind)}`);
  assert.ok((await value('sum(flexilib_worker_exits_total{reason="crash"})'))[0].value >= 2, 'crashes counted');
  assert.ok((await value('sum(flexilib_requests_total{status="5xx"})'))[0].value >= 1, '5xx counted');
  const quarantineErrors = await value('sum by (route, code) (flexilib_errors_total{code="FLX_LIB_QUARANTINED"})');
  assert.ok((quarantineErrors.find((s) => s.route === '/crash')?.value ?? 0) >= 1, `quarantined answers counted by code: ${JSON.stringify(quarantineErrors)}`);
  assert.ok((await value('sum(flexilib_wasm_instances{route="/wasm"})'))[0].value >= 1, 'the WASM route has live instances');
  assert.ok((await value('sum(flexilib_wasm_cold_starts_total{route="/wasm"})'))[0].value >= 1, 'WASM cold starts counted');
  assert.ok((await value('sum(flexilib_wasm_cold_start_seconds_total{route="/wasm"})'))[0].value > 0, 'WASM cold start time summed');
  const results = await Promise.all(traffic.map((l) => l.stop()));
  assert.ok(results[0].ok > 0 && results[2].ok > 0, 'the load was answered');
});
