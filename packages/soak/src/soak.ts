/**
 * The fault suite: flexilib under mixed load (native inline, native
 * threaded, upstream, WASM) while faults run in turn (faults.ts), every
 * request counted by outcome (traffic.ts), then the goals checked:
 *
 *   no failed request except those in flight on a worker that died
 *   every fault did what it should (reload applied, SIGHUP applied/refused, ...)
 *   /metrics counts every answer the load received, per route, and beyond
 *     them at most the requests cut by a dying worker (an answer is counted
 *     just before its bytes leave: a worker killed between the two counted
 *     an answer its client never got)
 *   /stats counts exactly the upstream route's answers
 *   no fd or memory growth beyond LIMITS, per process role
 */
import { once } from 'node:events';
import { mkdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import {
  admin, compilePlugin, compileWasm, exampleSource, fixture, scrape, startFlexilib, tempDir, writeConfig,
} from '@flexilib/test-support';
import { FAULTS, type FaultContext } from './faults.js';
import { sampleTree, type ProcessSample } from './processes.js';
import { sleep, Traffic, type RouteCount } from './traffic.js';

export interface SoakOptions {
  seconds: number;
  /** Fault kinds to run in turn (FAULT_KINDS order); default all. */
  faults: string[];
  /** Load loops per route (default 4). */
  concurrency?: number;
  workers?: number;
  /**
   * Run every fault kind at least once even past `seconds` (a loaded machine
   * can make one round of faults outlast a short run). Default false: the run
   * stops at `seconds`, and a kind that never ran is reported as such.
   */
  wholeRound?: boolean;
  /** Progress lines (default none). */
  log?: (line: string) => void;
}

/** Growth allowed between the start sample (after warm-up) and the end sample. */
export const LIMITS = { fds: 16, rssMiB: 96 };

export interface Goal {
  /** Stable: failed, faults, metrics, stats, growth, stray. */
  id: string;
  goal: string;
  met: boolean;
  detail: string;
}

export interface SoakReport {
  seconds: number;
  faults: Record<string, { runs: number; problems: string[] }>;
  routes: Record<string, RouteCount>;
  totals: { requests: number; ok: number; failed: number; inFlightOnDeadWorker: number };
  failuresByCause: Record<string, number>;
  examples: string[];
  processes: { start: ProcessSample[]; end: ProcessSample[] };
  /** Per route: answers received, /metrics' count, requests cut by a dying worker (the most /metrics may exceed by). */
  metrics: Record<string, { counted: number; server: number; cut: number }>;
  stats: { counted: number; server: number };
  goals: Goal[];
}

/** The routes under load: route key -> request target. */
const ROUTES: Record<string, string> = { '/native': '/native', '/threaded': '/threaded', '/up': '/up/item', '/wasm': '/wasm' };

async function startOrigin(name: string): Promise<{ server: http.Server; host: string; port: number; url: string }> {
  const server = http.createServer((req, res) => {
    req.resume();
    res.end(req.url === '/health' ? 'ok' : name);
  });
  server.keepAliveTimeout = 10_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return { server, host: '127.0.0.1', port, url: `http://127.0.0.1:${port}` };
}

export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const log = opts.log ?? (() => {});
  const unknown = opts.faults.filter((f) => !(f in FAULTS));
  if (unknown.length) throw new Error(`unknown fault kind(s) ${unknown.join(', ')} (known: ${Object.keys(FAULTS).join(', ')})`);
  const tmp = tempDir('soak');
  const origins = await Promise.all(['a', 'b', 'spare'].map(startOrigin));
  let fx: Awaited<ReturnType<typeof startFlexilib>> | undefined;
  try {
    const dir = tmp.dir;
    mkdirSync(path.join(dir, 'lib'));
    mkdirSync(path.join(dir, 'modules'));
    const library = path.join(dir, 'lib', 'libsoak.so');
    const builds: Buffer[] = [];
    for (const v of ['v1', 'v2']) builds.push(readFileSync(await compilePlugin(fixture('versioned.c'), path.join(dir, `libsoak-${v}.so`), { defines: [`VERSION="${v}"`] })));
    await compilePlugin(fixture('versioned.c'), library, { defines: ['VERSION="v1"'] });
    await compilePlugin(fixture('segfault.c'), path.join(dir, 'lib', 'libcrash.so'));
    await compileWasm(exampleSource, path.join(dir, 'modules', 'soak.wasm'));
    const configText = (comment: string) => `; soak: ${comment}
/native = lib/libsoak.so
/threaded = lib/libsoak.so
/up = upstream:soak
/wasm = modules/soak.wasm
/crash = lib/libcrash.so

[route /threaded]
mode = threaded

[upstream.soak]
servers = ${origins[0].url}, ${origins[1].url}
health_path = /health
health_interval = 1s
health_timeout = 1s
`;
    const config = writeConfig(dir, configText('start'));
    fx = await startFlexilib({ config, workers: opts.workers ?? 2, accessLog: false, args: ['--quarantine-crashes', '0'] });
    log(`flexilib pid ${fx.proc.pid} on port ${fx.port} (admin ${fx.adminPort}), folder ${dir}`);

    const traffic = new Traffic(fx.port);
    for (const [route, target] of Object.entries(ROUTES)) traffic.start(route, target, opts.concurrency ?? 4);
    await sleep(Math.min(3000, (opts.seconds * 1000) / 10)); // warm-up: JIT, first loads, connections
    const start = sampleTree(fx.proc.pid!);

    const faults: SoakReport['faults'] = {};
    for (const f of opts.faults) faults[f] = { runs: 0, problems: [] };
    const ctx: FaultContext = { fx, traffic, config, configText, library, builds, spareOrigin: origins[2], wasmPath: 'modules/soak.wasm', round: 0 };
    const deadline = Date.now() + opts.seconds * 1000;
    outer: for (;;) {
      for (const kind of opts.faults) {
        if (Date.now() >= deadline && (ctx.round > 0 || !opts.wholeRound)) break outer;
        traffic.phase = kind;
        const t0 = Date.now();
        const problem = await FAULTS[kind](ctx).catch((err: Error) => `threw: ${err.message}`);
        faults[kind].runs++;
        if (problem) faults[kind].problems.push(problem);
        log(`${kind}: ${problem ?? 'ok'} (${Date.now() - t0} ms)`);
        // The fault's own aftermath (a reload's debounce, a replacement's warm-up) still counts under its name.
        await sleep(500);
        traffic.phase = 'steady';
        await sleep(500);
      }
      ctx.round++;
      if (opts.faults.length === 0) await sleep(Math.max(0, Math.min(1000, deadline - Date.now())));
    }
    await traffic.stop();
    traffic.classifyCuts();
    await sleep(1000);
    const end = sampleTree(fx.proc.pid!);

    // Every answer the load received is in /metrics and /stats once the counts are final.
    const answered = (route: string) => traffic.counts.get(route)!.answered;
    const cut = (route: string) => traffic.counts.get(route)!.inFlightOnDeadWorker;
    const metrics: SoakReport['metrics'] = {};
    let stats = { counted: answered('/up'), server: -1 };
    for (let i = 0; i < 50; i++) {
      const s = await scrape(fx.adminPort);
      for (const route of Object.keys(ROUTES)) metrics[route] = { counted: answered(route), server: s.sum('flexilib_requests_total', { route }), cut: cut(route) };
      const st = await admin(fx.adminPort, 'GET', '/stats');
      const pool = st.json?.pools?.soak?.client ?? { success: 0, failed: 0 };
      stats = { counted: answered('/up'), server: pool.success + pool.failed };
      if (Object.values(metrics).every(metricsExact) && stats.counted === stats.server) break;
      await sleep(200);
    }

    const routes = Object.fromEntries(traffic.counts);
    const totals = { requests: 0, ok: 0, failed: 0, inFlightOnDeadWorker: 0 };
    for (const c of traffic.counts.values()) {
      totals.requests += c.answered + c.failed + c.inFlightOnDeadWorker - (c.answered - c.ok); // answered non-200s are in failed
      totals.ok += c.ok;
      totals.failed += c.failed;
      totals.inFlightOnDeadWorker += c.inFlightOnDeadWorker;
    }
    const report: SoakReport = {
      seconds: opts.seconds,
      faults,
      routes,
      totals,
      failuresByCause: Object.fromEntries([...traffic.causes].sort((a, b) => b[1] - a[1])),
      examples: traffic.examples,
      processes: { start, end },
      metrics,
      stats,
      goals: [],
    };
    report.goals = goals(report);
    return report;
  } finally {
    await fx?.stop().catch(() => fx?.kill());
    for (const o of origins) {
      o.server.closeAllConnections();
      o.server.close();
    }
    tmp.cleanup();
  }
}

/** Every received answer counted; any more only for requests a dying worker cut (counted, then killed before writing). */
const metricsExact = (m: { counted: number; server: number; cut: number }) => m.server >= m.counted && m.server <= m.counted + m.cut;

function goals(r: SoakReport): Goal[] {
  const out: Goal[] = [];
  out.push({ id: 'failed', goal: 'no failed request (except those in flight on a worker that died)', met: r.totals.failed === 0, detail: `${r.totals.failed} failed, ${r.totals.inFlightOnDeadWorker} in flight on a dead worker, ${r.totals.ok} ok` });
  const problems = Object.entries(r.faults).flatMap(([k, f]) => f.problems.map((p) => `${k}: ${p}`));
  const ran = Object.entries(r.faults).filter(([, f]) => f.runs === 0).map(([k]) => k);
  out.push({ id: 'faults', goal: 'every fault ran and did what it should', met: problems.length === 0 && ran.length === 0, detail: [...problems, ...ran.map((k) => `${k}: never ran (too short a run)`)].join('; ') || `${Object.values(r.faults).reduce((n, f) => n + f.runs, 0)} faults` });
  const off = Object.entries(r.metrics).filter(([, m]) => !metricsExact(m));
  out.push({
    id: 'metrics',
    goal: '/metrics counts every answer received (and beyond them at most the requests cut by a dying worker)',
    met: off.length === 0,
    detail: off.map(([k, m]) => `${k}: received ${m.counted}, /metrics ${m.server}, cut by a dying worker ${m.cut}`).join('; ') ||
      (Object.entries(r.metrics).filter(([, m]) => m.server > m.counted).map(([k, m]) => `${k}: ${m.server - m.counted} of ${m.cut} cut requests counted`).join('; ') || 'exact on every route'),
  });
  out.push({ id: 'stats', goal: '/stats counts exactly the upstream answers', met: r.stats.counted === r.stats.server, detail: `received ${r.stats.counted}, /stats ${r.stats.server}` });
  const byRole = (s: ProcessSample[], role: string) => s.filter((p) => p.role === role);
  const max = (s: ProcessSample[], f: (p: ProcessSample) => number) => Math.max(0, ...s.map(f));
  const growth: string[] = [];
  for (const role of ['supervisor', 'worker']) {
    const a = byRole(r.processes.start, role);
    const b = byRole(r.processes.end, role);
    const fds = max(b, (p) => p.fds) - max(a, (p) => p.fds);
    const rss = (max(b, (p) => p.rssKb) - max(a, (p) => p.rssKb)) / 1024;
    if (fds > LIMITS.fds) growth.push(`${role} fds +${fds} (limit +${LIMITS.fds})`);
    if (rss > LIMITS.rssMiB) growth.push(`${role} RSS +${rss.toFixed(1)} MiB (limit +${LIMITS.rssMiB})`);
  }
  out.push({ id: 'growth', goal: `no fd or memory growth (fds +${LIMITS.fds}, RSS +${LIMITS.rssMiB} MiB per process)`, met: growth.length === 0, detail: growth.join('; ') || 'within bounds' });
  const stray = byRole(r.processes.end, 'other');
  out.push({ id: 'stray', goal: 'no process under the supervisor but its workers', met: stray.length === 0, detail: stray.map((p) => `pid ${p.pid} (${p.rssKb ? 'running' : 'a zombie'})`).join(', ') || 'none' });
  return out;
}

/** The report as text: goals, counts by route, failures by cause, processes. */
export function formatReport(r: SoakReport): string {
  const lines: string[] = [];
  lines.push(`soak: ${r.seconds} s, ${r.totals.requests} requests: ${r.totals.ok} ok, ${r.totals.failed} failed, ${r.totals.inFlightOnDeadWorker} in flight on a dead worker`);
  lines.push('', 'goals:');
  for (const g of r.goals) lines.push(`  ${g.met ? 'MET ' : 'FAIL'} [${g.id}] ${g.goal}: ${g.detail}`);
  lines.push('', 'faults (runs, problems):');
  for (const [k, f] of Object.entries(r.faults)) lines.push(`  ${k.padEnd(15)} ${String(f.runs).padStart(4)}  ${f.problems.length ? f.problems.slice(0, 3).join('; ') : '-'}`);
  lines.push('', 'routes (ok / answered / failed / in flight on a dead worker; /metrics):');
  for (const [k, c] of Object.entries(r.routes)) lines.push(`  ${k.padEnd(10)} ${c.ok} / ${c.answered} / ${c.failed} / ${c.inFlightOnDeadWorker}; /metrics ${r.metrics[k]?.server}`);
  lines.push(`  /stats pool soak: ${r.stats.server} (received ${r.stats.counted})`);
  if (Object.keys(r.failuresByCause).length) {
    lines.push('', 'failures by cause (fault: route: cause):');
    for (const [k, n] of Object.entries(r.failuresByCause).slice(0, 30)) lines.push(`  ${String(n).padStart(6)}  ${k}`);
  }
  lines.push('', 'processes (pid role RSS fds), start -> end:');
  const fmt = (p: ProcessSample) => `${p.pid} ${p.role} ${(p.rssKb / 1024).toFixed(1)} MiB ${p.fds} fds`;
  lines.push(`  start: ${r.processes.start.map(fmt).join(', ')}`);
  lines.push(`  end:   ${r.processes.end.map(fmt).join(', ')}`);
  return lines.join('\n');
}
