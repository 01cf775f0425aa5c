/**
 * The quarantine policy, on top of the ledger's bookkeeping (crash-ledger.ts):
 *
 *   a counted death inside library L ──> ledger.record ──> past the limit? ──> `quarantine` to every
 *                                                                              listening worker: L's routes answer 503
 *   L's file changed ──> liftChanged(L)   (the `reload-library` that follows carries `lift`)
 *   SIGHUP ──────────> liftAll()          (the `config` that follows carries the quarantine set)
 *
 * Each step logs and emits the supervisor's event (`quarantine`, `quarantine-lifted`).
 * Workers that do not listen yet catch up when they do: their quarantineVersion
 * is behind the ledger's (supervisor.ts re-syncs them with a `config`).
 */
import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Attribution } from './crash-attribution.js';
import type { CrashLedger } from './crash-ledger.js';
import type { SupervisorEvents } from './events.js';
import type { WorkerPool } from './worker-pool.js';

export interface QuarantineDeps {
  ledger: CrashLedger;
  pool: WorkerPool;
  /** The keys of the current config's routes to `library`. */
  routesOf(library: string): string[];
  events: EventEmitter<SupervisorEvents>;
  log: Logger;
}

export class Quarantine {
  constructor(private readonly deps: QuarantineDeps) {}

  /**
   * A death that counts against the libraries it was calling (countsAsPluginCrash);
   * `cause` names it in the 503 body ("SIGSEGV", "hang", "exit code 3"). Called
   * before the replacement forks, so it starts with the quarantine.
   */
  recordDeath(attribution: Attribution, cause: string): void {
    const { ledger, pool, log } = this.deps;
    const now = Date.now();
    const sole = attribution.libraries.length === 1;
    for (const library of attribution.libraries) {
      const q = ledger.record(library, now, sole, cause);
      if (!q) continue;
      const routes = this.deps.routesOf(library);
      log.error({ event: 'quarantine', code: 'FLX_LIB_QUARANTINED', library, crashes: q.crashes, windowS: ledger.opts.windowS, routes }, q.reason);
      for (const w of pool.listening()) {
        w.quarantineVersion = ledger.version;
        pool.send(w, { type: 'quarantine', notice: { library: q.library, reason: q.reason, retryAfterS: q.retryAfterS } });
      }
      this.deps.events.emit('quarantine', { library, crashes: q.crashes, windowS: ledger.opts.windowS, routes, reason: q.reason });
    }
  }

  /** The library's file changed (a new build): lift its quarantine; true when it had one. */
  liftChanged(library: string): boolean {
    const { ledger, pool } = this.deps;
    if (!ledger.lift(library)) return false;
    this.deps.log.info({ event: 'quarantine-lifted', library, why: 'file-changed' }, 'quarantine lifted: the library file changed');
    // The reload-library that follows carries `lift`; mark the workers in sync.
    for (const w of pool.listening()) w.quarantineVersion = ledger.version;
    this.deps.events.emit('quarantine-lifted', { library, why: 'file-changed' });
    return true;
  }

  /** SIGHUP: every quarantine ends (the `config` sent next carries the empty set). */
  liftAll(): void {
    for (const library of this.deps.ledger.liftAll()) {
      this.deps.log.info({ event: 'quarantine-lifted', library, why: 'sighup' }, 'quarantine lifted (SIGHUP)');
      this.deps.events.emit('quarantine-lifted', { library, why: 'sighup' });
    }
  }
}
