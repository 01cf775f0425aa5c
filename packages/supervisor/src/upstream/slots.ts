/**
 * The numbers of the counter slots in the workers' upstream counter files
 * (@flexilib/worker counter-layout.ts): one per pool (client counts) and one
 * per origin in a pool, never reused, so counts written late (a request still
 * in flight when its origin left) can never land on another origin.
 *
 * An origin that leaves its pool has its slot retired: its per-origin series
 * disappears from /stats/detail and the metrics, and its counts stay in the
 * pool's `removed` sum, so the pool's totals never go down. A pool that leaves
 * the config has its slots dropped: they count nowhere any more.
 */
export interface SlotOwner {
  pool: string;
  /** Set for an origin's slot; absent for the pool's client slot. */
  url?: string;
  /** The origin left the pool. */
  removed?: boolean;
}

export class Slots {
  /** Slot 0 is the workers' "not numbered yet" (UNASSIGNED_SLOT): never an owner's. */
  private next = 1;
  readonly owners = new Map<number, SlotOwner>();

  take(owner: SlotOwner): number {
    const slot = this.next++;
    this.owners.set(slot, owner);
    return slot;
  }

  retire(slot: number): void {
    const o = this.owners.get(slot);
    if (o) o.removed = true;
  }

  drop(slot: number): void {
    this.owners.delete(slot);
  }
}
