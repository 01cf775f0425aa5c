/**
 * Active and passive health, decided once in the supervisor for all workers.
 *
 * Active: every `health_interval`, each origin of a pool gets
 * `GET health_path` on a fresh connection; a 2xx within `health_timeout` is a
 * success, anything else a failure.
 * Passive: a worker whose connection to an origin failed while proxying has
 * already ejected it locally and reports it; that counts as a failure and an
 * extra check runs at once. Reports count toward `fall` once per epoch: a
 * brief reset that several workers saw before the next check is one failure,
 * not one per worker (each worker reports the epoch it failed at; the epoch
 * moves on only after a successful check, and a dead origin keeps failing its
 * checks, which count).
 *
 *            `fall` consecutive failures (checks or reports)
 *     UP ─────────────────────────────────────────────────> DOWN
 *      ^ <───────────────────────────────────────────────── │
 *            `rise` consecutive successful checks
 *
 * A successful check after a passive report bumps the origin's epoch, which
 * ends the workers' ejections (a transient reset costs a few milliseconds).
 * Every verdict change calls onChange (the service broadcasts to workers) and
 * is logged.
 */
import http from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import type { OriginRecord, PoolRecord, PoolRegistry } from './pool-registry.js';

export class HealthChecker {
  private timers = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  constructor(private readonly registry: PoolRegistry, private readonly log: Logger, private readonly onChange: () => void) {}

  /** (Re)start one timer per pool at its interval; the first round runs at once. */
  start(): void {
    for (const t of this.timers.values()) clearInterval(t);
    this.timers.clear();
    if (this.stopped) return;
    for (const pool of this.registry.all()) {
      const name = pool.name;
      this.timers.set(name, setInterval(() => this.checkPool(name), pool.settings.healthIntervalMs));
      this.checkPool(name);
    }
  }

  /** No more active rounds (cluster mode: another host checks), passive reports still count. start() resumes. */
  pause(): void {
    for (const t of this.timers.values()) clearInterval(t);
    this.timers.clear();
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearInterval(t);
    this.timers.clear();
  }

  private checkPool(name: string): void {
    const pool = this.registry.get(name);
    if (!pool) return;
    for (const o of pool.origins.values()) this.check(pool, o);
  }

  /** A worker's connection to this origin failed while proxying. */
  reportPassive(poolName: string, url: string, epoch: number, code: string, message: string, worker: number): void {
    const pool = this.registry.get(poolName);
    const o = pool?.origins.get(url);
    if (!pool || !o) return; // removed meanwhile
    o.totals.passiveFailures++;
    // Already counted for this epoch (another worker saw the same event), or a
    // report from before the last successful check: it does not count again.
    const counts = epoch >= o.epoch && o.passiveEpoch !== o.epoch;
    this.log.warn({ pool: poolName, origin: url, worker, code, counted: counts }, `upstream origin failed while proxying, checking it now: ${message}`);
    if (!counts) {
      this.check(pool, o);
      return;
    }
    o.suspect = true;
    o.passiveEpoch = o.epoch;
    this.failed(pool, o, `passive: ${code}`);
    this.check(pool, o);
  }

  /** Check one origin now, unless a check of it is already in flight. */
  check(pool: PoolRecord, o: OriginRecord): void {
    if (o.checking || this.stopped) return;
    o.checking = true;
    probe(o.url + pool.settings.healthPath, pool.settings.healthTimeoutMs, (ok, detail) => {
      o.checking = false;
      // The origin may have left its pool (or the pool the config) while the check ran.
      const current = this.registry.get(pool.name);
      if (this.stopped || !current || current.origins.get(o.url) !== o) return;
      o.lastCheck = { at: new Date().toISOString(), ok, detail };
      if (ok) this.succeeded(current, o);
      else this.failed(current, o, detail);
    });
  }

  private succeeded(pool: PoolRecord, o: OriginRecord): void {
    o.totals.checksOk++;
    o.failures = 0;
    o.successes++;
    let changed = false;
    if (!o.healthy && o.successes >= pool.settings.rise) {
      o.healthy = true;
      o.totals.wentUp++;
      o.lastChange = new Date().toISOString();
      changed = true;
      this.log.info({ pool: pool.name, origin: o.url, successes: o.successes }, 'upstream origin up');
    }
    if (o.suspect || changed) {
      o.suspect = false;
      o.epoch++;
      changed = true;
    }
    if (changed) this.onChange();
  }

  private failed(pool: PoolRecord, o: OriginRecord, detail: string): void {
    if (!detail.startsWith('passive:')) o.totals.checksFailed++;
    o.successes = 0;
    o.failures++;
    if (o.healthy && o.failures >= pool.settings.fall) {
      o.healthy = false;
      o.totals.wentDown++;
      o.lastChange = new Date().toISOString();
      this.log.warn({ pool: pool.name, origin: o.url, failures: o.failures, reason: detail }, 'upstream origin down');
      this.onChange();
    }
  }
}

/** GET url on a fresh connection; ok = a 2xx status within timeoutMs. */
function probe(url: string, timeoutMs: number, done: (ok: boolean, detail: string) => void): void {
  let settled = false;
  let timer: NodeJS.Timeout | undefined;
  const finish = (ok: boolean, detail: string) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    done(ok, detail);
  };
  const mod = url.startsWith('https:') ? https : http;
  let req: http.ClientRequest;
  try {
    req = mod.get(url, { agent: false, headers: { 'user-agent': 'flexilib-health-check', connection: 'close' } }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      finish(status >= 200 && status < 300, String(status));
      res.on('error', () => {});
    });
  } catch (err) {
    setImmediate(() => finish(false, (err as Error).message));
    return;
  }
  timer = setTimeout(() => {
    finish(false, `no answer within ${timeoutMs} ms`);
    req.destroy();
  }, timeoutMs);
  req.on('error', (err: NodeJS.ErrnoException) => finish(false, err.code ?? err.message));
}
