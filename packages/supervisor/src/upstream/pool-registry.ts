/**
 * The supervisor's authority on upstream pools: which origins each pool has
 * (the config's `servers` with the management API's changes laid over them)
 * and how healthy each is. Workers get snapshot() at fork and after every change.
 *
 * Membership is recomputed from (config, overlay) whenever either changes; an
 * origin that stays keeps its health record, a new one starts healthy (as in
 * Weldr: "each server is assumed active when added to the pool").
 */
import type { Config, OriginState, UpstreamSettings, UpstreamState } from '@flexilib/contract';
import { parseOrigin } from '@flexilib/contract';
import { Slots } from './slots.js';
import type { Overlay } from './state-file.js';

export interface CheckResult {
  at: string;
  ok: boolean;
  /** "200" for an answer, else the error. */
  detail: string;
}

/** One origin's record: health bookkeeping and counters for GET /servers and the metrics. */
export class OriginRecord {
  readonly host: string;
  readonly port: number;
  healthy = true;
  epoch = 0;
  /** Consecutive failures: active checks and passive reports alike. */
  failures = 0;
  /** Consecutive successful checks. */
  successes = 0;
  /** A worker reported a passive failure since the last successful check (workers have it ejected). */
  suspect = false;
  /** The epoch whose passive failure already counted toward `fall` (-1: none): one event, seen by several workers, counts once. */
  passiveEpoch = -1;
  /** A check is in flight (never two at once for one origin). */
  checking = false;
  lastCheck: CheckResult | undefined;
  lastChange = new Date().toISOString();
  readonly totals = { checksOk: 0, checksFailed: 0, passiveFailures: 0, wentDown: 0, wentUp: 0 };

  /** @param slot its counters in the workers' counter files (Slots) */
  constructor(readonly pool: string, readonly url: string, public source: 'config' | 'api', readonly slot: number) {
    const o = parseOrigin(url);
    if ('error' in o) throw new Error(o.error);
    this.host = o.host;
    this.port = o.port;
  }

  state(): OriginState {
    return { url: this.url, healthy: this.healthy, epoch: this.epoch, slot: this.slot };
  }
}

export class PoolRecord {
  origins = new Map<string, OriginRecord>();
  constructor(readonly name: string, public settings: UpstreamSettings, public configured: string[], readonly slot: number) {}
}

export class PoolRegistry {
  private pools = new Map<string, PoolRecord>();
  private overlay: Overlay = {};
  readonly slots = new Slots();

  constructor(config: Config, overlay: Overlay) {
    this.reconfigure(config, overlay);
  }

  all(): PoolRecord[] {
    return [...this.pools.values()];
  }

  get(name: string): PoolRecord | undefined {
    return this.pools.get(name);
  }

  /** The API's changes as they stand (what the state file holds). */
  currentOverlay(): Overlay {
    return structuredClone(this.overlay);
  }

  /** New config and/or overlay: settings replaced, membership recomputed, health kept for origins that stay. */
  reconfigure(config: Config, overlay: Overlay = this.overlay): void {
    const next = new Map<string, PoolRecord>();
    for (const spec of config.upstreams) {
      const old = this.pools.get(spec.name);
      const p = new PoolRecord(spec.name, spec.settings, spec.servers, old?.slot ?? this.slots.take({ pool: spec.name }));
      if (old) p.origins = old.origins;
      next.set(spec.name, p);
    }
    for (const [name, old] of this.pools) {
      if (next.has(name)) continue;
      this.slots.drop(old.slot);
      for (const o of old.origins.values()) this.slots.drop(o.slot);
    }
    this.pools = next;
    this.overlay = structuredClone(overlay);
    for (const p of this.pools.values()) this.recompute(p);
  }

  /** Replace the overlay (after it was persisted) and recompute the pools it touches. */
  setOverlay(overlay: Overlay): void {
    this.overlay = structuredClone(overlay);
    for (const p of this.pools.values()) this.recompute(p);
  }

  private recompute(p: PoolRecord): void {
    const o = this.overlay[p.name] ?? { added: [], removed: [] };
    const want: Array<[string, 'config' | 'api']> = [];
    for (const url of p.configured) if (!o.removed.includes(url)) want.push([url, 'config']);
    for (const url of o.added) if (!p.configured.includes(url)) want.push([url, 'api']);
    const next = new Map<string, OriginRecord>();
    for (const [url, source] of want) {
      const rec = p.origins.get(url) ?? new OriginRecord(p.name, url, source, this.slots.take({ pool: p.name, url }));
      rec.source = source;
      next.set(url, rec);
    }
    for (const [url, rec] of p.origins) if (next.get(url) !== rec) this.slots.retire(rec.slot);
    p.origins = next;
  }

  /** The overlay after adding `url` to `pool`, and whether that adds anything. */
  planAdd(pool: PoolRecord, url: string): { overlay: Overlay; created: boolean } {
    const overlay = this.currentOverlay();
    const o = (overlay[pool.name] ??= { added: [], removed: [] });
    if (pool.origins.has(url)) return { overlay, created: false };
    if (o.removed.includes(url)) o.removed = o.removed.filter((u) => u !== url);
    else o.added.push(url);
    return { overlay, created: true };
  }

  /** The overlay after removing `url` from `pool`. */
  planRemove(pool: PoolRecord, url: string, overlay: Overlay): Overlay {
    const o = (overlay[pool.name] ??= { added: [], removed: [] });
    if (o.added.includes(url)) o.added = o.added.filter((u) => u !== url);
    if (pool.configured.includes(url) && !o.removed.includes(url)) o.removed.push(url);
    return overlay;
  }

  snapshot(): UpstreamState {
    return {
      pools: this.all().map((p) => ({ name: p.name, settings: p.settings, slot: p.slot, origins: [...p.origins.values()].map((o) => o.state()) })),
    };
  }
}
