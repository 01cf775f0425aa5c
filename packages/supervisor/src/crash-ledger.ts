/**
 * Quarantine bookkeeping: which library crashed workers how often, and which
 * libraries are quarantined. A library with `crashes` counted deaths within
 * `windowS` seconds is quarantined; the quarantine lasts until its file changes
 * or the config is reloaded (SIGHUP), which also forget its crash history.
 *
 * A death counts for a library when the worker was inside a call to it (call
 * marker) and died of a crash signal, a hang or an exit of its own. With
 * threaded routes several libraries can be in a call at once and the marker
 * cannot tell which one crashed: such a death counts for each of them, but a
 * library is only quarantined once at least one of its counted deaths had it as
 * the sole suspect — so a library that merely happened to be busy while another
 * one crashed is never quarantined for it.
 */
import path from 'node:path';
import type { QuarantineNotice } from '@flexilib/contract';

export interface LedgerOptions {
  /** Counted deaths that quarantine a library; 0 turns quarantine off. */
  crashes: number;
  windowS: number;
}

interface Death {
  at: number;
  sole: boolean;
}

export interface QuarantineRecord extends QuarantineNotice {
  since: number;
  crashes: number;
}

export class CrashLedger {
  private readonly deaths = new Map<string, Death[]>();
  private readonly quarantined = new Map<string, QuarantineRecord>();
  /** +1 on every change of the quarantine set (to tell a worker's copy is stale). */
  version = 0;

  constructor(readonly opts: LedgerOptions) {}

  /**
   * Count a death inside `library` at `now` (ms). Returns the new quarantine
   * when this death starts one.
   */
  record(library: string, now: number, sole: boolean, cause: string): QuarantineRecord | undefined {
    const windowMs = this.opts.windowS * 1000;
    const list = (this.deaths.get(library) ?? []).filter((d) => now - d.at < windowMs);
    list.push({ at: now, sole });
    this.deaths.set(library, list);
    if (this.opts.crashes === 0 || this.quarantined.has(library)) return undefined;
    if (list.length < this.opts.crashes || !list.some((d) => d.sole)) return undefined;
    const record: QuarantineRecord = {
      library,
      since: now,
      crashes: list.length,
      retryAfterS: this.opts.windowS,
      reason:
        `library ${path.basename(library)} is quarantined: it crashed workers ${list.length} times in ${this.opts.windowS} s (last: ${cause}); ` +
        `it is served again when its file changes or the server is sent SIGHUP`,
    };
    this.quarantined.set(library, record);
    this.version++;
    return record;
  }

  /** Counted deaths of `library` within the window ending at `now`. */
  recent(library: string, now: number): number {
    return (this.deaths.get(library) ?? []).filter((d) => now - d.at < this.opts.windowS * 1000).length;
  }

  isQuarantined(library: string): boolean {
    return this.quarantined.has(library);
  }

  /** End a quarantine and forget the library's crashes; false when it was not quarantined. */
  lift(library: string): boolean {
    this.deaths.delete(library);
    if (!this.quarantined.delete(library)) return false;
    this.version++;
    return true;
  }

  /** End every quarantine and forget all crashes; returns the libraries lifted. */
  liftAll(): string[] {
    const lifted = [...this.quarantined.keys()];
    this.deaths.clear();
    this.quarantined.clear();
    if (lifted.length) this.version++;
    return lifted;
  }

  /** The quarantine set, as handed to workers. */
  notices(): QuarantineNotice[] {
    return [...this.quarantined.values()].map(({ library, reason, retryAfterS }) => ({ library, reason, retryAfterS }));
  }

  list(): QuarantineRecord[] {
    return [...this.quarantined.values()];
  }
}
