/**
 * The faults the soak injects, one at a time, in this order, round after
 * round. Each returns what went wrong with the fault itself (a SIGHUP that
 * was not applied, an API call refused), or nothing; the requests it broke
 * are counted by the traffic, under its name.
 */
import { closeSync, openSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { admin, request, type Flexilib } from '@flexilib/test-support';
import type { Traffic } from './traffic.js';
import { sleep } from './traffic.js';

export interface FaultContext {
  fx: Flexilib;
  traffic: Traffic;
  config: string;
  /** proxy.ini as served, given a comment line that differs per call (so SIGHUP sees a new file). */
  configText(comment: string): string;
  /** The native library of /native and /threaded, and the builds to alternate. */
  library: string;
  builds: Buffer[];
  /** An origin not in the pool, added and removed through the API. */
  spareOrigin: { host: string; port: number; url: string };
  /** A WASM module path, relative to the config's folder, registered and removed as a service. */
  wasmPath: string;
  round: number;
}

export type Fault = (ctx: FaultContext) => Promise<string | undefined>;

const nextBuild = (ctx: FaultContext) => ctx.builds[ctx.round % ctx.builds.length];

/** Wait for a supervisor log line from index `from` on. */
async function logged(ctx: FaultContext, from: number, what: string, pred: (l: Record<string, unknown>) => boolean, timeoutMs = 10_000): Promise<string | undefined> {
  try {
    await ctx.fx.waitForLog(pred, { from, timeoutMs, what });
    return undefined;
  } catch {
    return `no "${what}" log within ${timeoutMs} ms`;
  }
}

const reloaded = (ctx: FaultContext, from: number) =>
  logged(ctx, from, 'library reloaded', (l) => l.library === ctx.library && (l.msg === 'library reloaded' || l.code === 'FLX_LIB_RELOAD_FAILED'));

/** The worker is dead once the supervisor reports it: requests cut since the fault began were in flight on it. */
async function death(ctx: FaultContext, from: number, since: number, fault: string, pred: (l: Record<string, unknown>) => boolean): Promise<string | undefined> {
  const problem = await logged(ctx, from, 'worker exit', (l) => l.code === 'FLX_WORKER_EXIT' && pred(l));
  ctx.traffic.deaths.push({ at: Date.now(), since, fault });
  if (problem) return problem;
  // Wait for the replacement, so that the next fault finds every worker up.
  return logged(ctx, from, 'worker listening', (l) => l.msg === 'worker listening' && l.replaces !== undefined);
}

export const FAULTS: Record<string, Fault> = {
  /** A new build written beside the library and renamed over it (the atomic way). */
  async 'reload-rename'(ctx) {
    const from = ctx.fx.logs.length;
    writeFileSync(`${ctx.library}.new`, nextBuild(ctx));
    renameSync(`${ctx.library}.new`, ctx.library);
    return reloaded(ctx, from);
  },

  /** A new build written over the library in place, at once (cp onto it). */
  async 'reload-inplace'(ctx) {
    const from = ctx.fx.logs.length;
    writeFileSync(ctx.library, nextBuild(ctx));
    return reloaded(ctx, from);
  },

  /** A new build written in place in 64 KiB pieces 100 ms apart (a slow copy, a network filesystem). */
  async 'reload-slow'(ctx) {
    const from = ctx.fx.logs.length;
    const bytes = nextBuild(ctx);
    const fd = openSync(ctx.library, 'w');
    try {
      for (let at = 0; at < bytes.length; at += 65_536) {
        writeSync(fd, bytes, at, Math.min(65_536, bytes.length - at));
        await sleep(100);
      }
    } finally {
      closeSync(fd);
    }
    return reloaded(ctx, from);
  },

  /**
   * A slow in-place write during which a worker is killed: the spare that
   * takes over meets the library for the first time while it is half written.
   */
  async 'reload-slow-kill'(ctx) {
    const from = ctx.fx.logs.length;
    const bytes = nextBuild(ctx);
    const fd = openSync(ctx.library, 'w');
    let problem: string | undefined;
    try {
      writeSync(fd, bytes, 0, 4096);
      problem = await FAULTS['kill-worker'](ctx);
      for (let at = 4096; at < bytes.length; at += 65_536) {
        writeSync(fd, bytes, at, Math.min(65_536, bytes.length - at));
        await sleep(100);
      }
    } finally {
      closeSync(fd);
    }
    return problem ?? reloaded(ctx, from);
  },

  /** A valid config (one comment changed), SIGHUP: every worker switches. */
  async 'sighup-valid'(ctx) {
    const from = ctx.fx.logs.length;
    writeFileSync(ctx.config, ctx.configText(`round ${ctx.round}`));
    ctx.fx.signal('SIGHUP');
    return logged(ctx, from, 'config reloaded', (l) => l.msg === 'config reloaded');
  },

  /** A broken config (a duplicate route), SIGHUP: refused, the old one keeps serving; then the file is restored. */
  async 'sighup-broken'(ctx) {
    const from = ctx.fx.logs.length;
    writeFileSync(ctx.config, `${ctx.configText(`broken ${ctx.round}`)}\n/native = also-native.so\n`);
    ctx.fx.signal('SIGHUP');
    const problem = await logged(ctx, from, 'config reload refused', (l) => String(l.msg).startsWith('config reload refused'));
    writeFileSync(ctx.config, ctx.configText(`restored ${ctx.round}`));
    return problem;
  },

  /** SIGKILL to one worker. */
  async 'kill-worker'(ctx) {
    const pids = ctx.fx.workerPids();
    if (pids.length === 0) return 'no worker to kill';
    const pid = pids[ctx.round % pids.length];
    const from = ctx.fx.logs.length;
    const since = Date.now();
    process.kill(pid, 'SIGKILL');
    return death(ctx, from, since, 'kill-worker', (l) => l.workerPid === pid);
  },

  /** A request to a plugin that segfaults: its worker dies. */
  async segfault(ctx) {
    const from = ctx.fx.logs.length;
    const since = Date.now();
    try {
      const r = await request(ctx.fx.port, '/crash', { timeoutMs: 8000 });
      return `the crashing route answered ${r.status} instead of crashing its worker`;
    } catch {
      return death(ctx, from, since, 'segfault', (l) => l.signal === 'SIGSEGV');
    }
  },

  /** Every worker (and the spare) crashes at once: only requests in flight on them may fail, the port keeps a listener. */
  async 'crash-storm'(ctx) {
    const from = ctx.fx.logs.length;
    const since = Date.now();
    const n = ctx.fx.workerPids().length + 1;
    const replies = await Promise.allSettled(Array.from({ length: n }, () => request(ctx.fx.port, '/crash', { timeoutMs: 8000 })));
    const exits = () => ctx.fx.logs.slice(from).filter((l) => l.code === 'FLX_WORKER_EXIT').length;
    const t0 = Date.now();
    while (exits() < replies.filter((r) => r.status === 'rejected').length && Date.now() - t0 < 10_000) await sleep(20);
    ctx.traffic.deaths.push({ at: Date.now(), since, fault: 'crash-storm' });
    const answered = replies.filter((r) => r.status === 'fulfilled');
    if (answered.length === n) return `no worker crashed: ${answered.length} crash requests answered`;
    const t1 = Date.now();
    while (ctx.fx.workerPids().length < n - 1 && Date.now() - t1 < 15_000) await sleep(20);
    return ctx.fx.workerPids().length < n - 1 ? `only ${ctx.fx.workerPids().length} workers listening 15 s after the storm` : undefined;
  },

  /** An origin added to the pool through the API, given traffic for a second, then removed. */
  async 'origin-churn'(ctx) {
    const o = ctx.spareOrigin;
    const add = await admin(ctx.fx.adminPort, 'POST', '/servers', { url: o.url, pool: 'soak' });
    if (add.status !== 201) return `POST /servers answered ${add.status}: ${JSON.stringify(add.json)}`;
    await sleep(1000);
    const del = await admin(ctx.fx.adminPort, 'DELETE', `/servers/${o.host}/${o.port}?pool=soak`);
    if (del.status !== 200) return `DELETE /servers answered ${del.status}: ${JSON.stringify(del.json)}`;
    return undefined;
  },

  /** A WASM service registered through the API, asked once, then removed. */
  async 'service-churn'(ctx) {
    const add = await admin(ctx.fx.adminPort, 'POST', '/services', { name: 'churn', prefix: '/churn', path: ctx.wasmPath });
    if (add.status !== 201 && add.status !== 200) return `POST /services answered ${add.status}: ${JSON.stringify(add.json)}`;
    const r = await request(ctx.fx.port, '/churn');
    const del = await admin(ctx.fx.adminPort, 'DELETE', '/services/churn');
    if (r.status !== 200) return `the new service answered ${r.status}: ${r.body}`;
    if (del.status !== 200) return `DELETE /services/churn answered ${del.status}: ${JSON.stringify(del.json)}`;
    return undefined;
  },
};

export const FAULT_KINDS = Object.keys(FAULTS);
