/**
 * A worker's upstream counters file: plain float64 counters the worker
 * increments in a MAP_SHARED mapping and the supervisor reads, so /stats is
 * as exact as /metrics — nothing is lost when a worker is killed, and no IPC
 * runs per request or per second.
 *
 *   [header: HEADER f64][slot 0: success, failed][slot 1]...[slot capacity-1]
 *
 * Slots are the supervisor's: it numbers every pool (client counts) and every
 * origin (attempt counts) and sends the numbers with the upstream state
 * (PoolState.slot, OriginState.slot); slot 0 takes what no slot names yet.
 * When a slot beyond the capacity arrives, the worker starts a bigger file
 * (`worker-<id>.<gen+1>.upstream`) from zero and seals the old one; the
 * supervisor folds sealed files and dead workers' files into its totals.
 */
export const UPSTREAM_MAGIC = 0x464c5855; // "FLXU"
export const UH = { magic: 0, pid: 1, workerId: 2, gen: 3, capacity: 4, sealed: 5 } as const;
export const UPSTREAM_HEADER = 8;
export const UNASSIGNED_SLOT = 0;

export const UPSTREAM_FILE_RE = /^worker-(\d+)\.(\d+)\.upstream$/;

export function upstreamFileName(workerId: number, gen: number): string {
  return `worker-${workerId}.${gen}.upstream`;
}

/** float64 index of a slot's success counter (failed is the next one). */
export function slotAt(slot: number): number {
  return UPSTREAM_HEADER + 2 * slot;
}
