/**
 * Per-worker figures for the status page: resident memory from /proc and a
 * request rate from the workers' metrics counters. The rate is the change
 * between two /status calls at least RATE_WINDOW_MS apart, so it costs nothing
 * while nobody looks and stays steady however often the page polls.
 */
import { readFileSync } from 'node:fs';

const RATE_WINDOW_MS = 1000;

/** Resident set size of a process in bytes, or null when /proc cannot tell (not Linux, gone). */
export function rssOf(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

interface Sample {
  at: number;
  count: number;
  rate: number | null;
}

export class RequestRates {
  private readonly samples = new Map<number, Sample>();

  /** Requests per second of worker `id` whose counter reads `count` at `now`; null until two samples exist. */
  rate(id: number, count: number, now: number): number | null {
    const s = this.samples.get(id);
    if (!s) {
      this.samples.set(id, { at: now, count, rate: null });
      return null;
    }
    if (now - s.at >= RATE_WINDOW_MS) {
      // A counter folded away at a config reload can read lower: not a negative rate.
      s.rate = Math.max(0, ((count - s.count) * 1000) / (now - s.at));
      s.at = now;
      s.count = count;
    }
    return s.rate;
  }

  /** Drop the samples of workers no longer alive. */
  keepOnly(ids: Set<number>): void {
    for (const id of this.samples.keys()) if (!ids.has(id)) this.samples.delete(id);
  }
}
