/**
 * Upstream pools in the cluster: POST/DELETE /servers become transactions on
 * `state/servers/…`, and every host (the writer included) applies them from
 * the watch. Verdicts of the elected health checker live in `state/health/…`.
 */
import type { Namespace } from 'etcd3';
import { FlexiError } from '@flexilib/contract';
import type { Overlay } from '../upstream/state-file.js';
import type { SharedVerdicts, UpstreamService, UpstreamSharing } from '../upstream/upstream-service.js';
import { healthKey, serverKey } from './keys.js';
import type { SharedStore } from './shared-store.js';

/** How long a mutating call waits for its own change to be applied on this host. */
export const APPLY_TIMEOUT_MS = 5000;
const TXN_OPS = 100;

interface ServerEntry {
  pool: string;
  url: string;
  state: 'added' | 'removed';
}

interface Verdict {
  healthy: boolean;
  detail?: string;
  at?: string;
  by?: string;
}

export function unreachable(): FlexiError {
  return new FlexiError('FLX_CLUSTER_UNREACHABLE', 'etcd is unreachable: the shared state cannot change now (traffic keeps the last state); retry later', { headers: { 'retry-after': '5' } });
}

/** Run an etcd write; a failure to reach etcd answers 503 with Retry-After (`down`); errors of our own (`ours`) pass. */
export async function writing<T>(fn: () => Promise<T>, down: () => Error = unreachable, ours: (err: unknown) => boolean = (err) => err instanceof FlexiError): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (ours(err)) throw err;
    throw down();
  }
}

export class UpstreamClusterSharing implements UpstreamSharing {
  constructor(private readonly ns: Namespace, private readonly store: SharedStore, private readonly upstreams: UpstreamService, private readonly member: () => string) {}

  async add(pool: string, url: string): Promise<void> {
    if (this.store.status !== 'ok') throw unreachable();
    if (this.upstreams.registry.get(pool)?.origins.has(url)) throw conflict(pool, url);
    const key = serverKey(pool, url);
    const value = JSON.stringify({ pool, url, state: 'added' } satisfies ServerEntry);
    const revision = await writing(async () => {
      for (let attempt = 0; attempt < 5; attempt++) {
        const cur = await this.ns.get(`state/${key}`).exec();
        const kv = cur.kvs[0];
        if (kv && (JSON.parse(kv.value.toString()) as ServerEntry).state === 'added') throw conflict(pool, url);
        // Compare-and-swap on the key's last change: two hosts adding the same origin, one wins, the other answers 409.
        const res = await this.ns.if(`state/${key}`, 'Mod', '==', kv ? kv.mod_revision : 0).then(this.ns.put(`state/${key}`).value(value)).commit();
        if (res.succeeded) return Number(res.header.revision);
      }
      throw conflict(pool, url);
    });
    await this.store.waitApplied(revision, APPLY_TIMEOUT_MS);
  }

  async remove(origins: Array<{ pool: string; url: string }>): Promise<void> {
    if (this.store.status !== 'ok') throw unreachable();
    const ops = origins.flatMap(({ pool, url }) => [
      this.ns.put(`state/${serverKey(pool, url)}`).value(JSON.stringify({ pool, url, state: 'removed' } satisfies ServerEntry)),
      this.ns.delete().key(`state/${healthKey(pool, url)}`),
    ]);
    // One transaction for all of them (etcd3 starts one with a compare: this one always holds).
    const res = await writing(() => this.ns.if('state/', 'Version', '>', -1).then(...ops).commit());
    await this.store.waitApplied(Number(res.header.revision), APPLY_TIMEOUT_MS);
  }

  /** The shared pool changes as an overlay (same shape as the single-host state file). */
  overlay(): Overlay {
    const out: Overlay = {};
    for (const [, v] of this.store.entries('servers/')) {
      const e = JSON.parse(v) as ServerEntry;
      const o = (out[e.pool] ??= { added: [], removed: [] });
      (e.state === 'added' ? o.added : o.removed).push(e.url);
    }
    for (const o of Object.values(out)) {
      o.added.sort();
      o.removed.sort();
    }
    return out;
  }

  verdicts(): SharedVerdicts {
    const out = new Map<string, Verdict>();
    for (const [k, v] of this.store.entries('health/')) {
      const [, pool, url] = k.split('/');
      out.set(`${pool} ${decodeURIComponent(url)}`, JSON.parse(v) as Verdict);
    }
    return out;
  }

  /**
   * The elected checker publishes the verdicts that differ from the shared ones,
   * in transactions that succeed only while `guardKey` (its election key) exists:
   * a checker that lost its lease writes nothing.
   */
  async publishVerdicts(guardKey: string): Promise<void> {
    const shared = this.verdicts();
    const puts = [];
    for (const p of this.upstreams.registry.all()) {
      for (const o of p.origins.values()) {
        const s = shared.get(`${p.name} ${o.url}`);
        if (s && s.healthy === o.healthy) continue;
        const v: Verdict = { healthy: o.healthy, detail: o.lastCheck?.detail ?? '', at: o.lastChange, by: this.member() };
        puts.push(this.ns.put(`state/${healthKey(p.name, o.url)}`).value(JSON.stringify(v)));
      }
    }
    for (let i = 0; i < puts.length; i += TXN_OPS) {
      const res = await this.ns.if(guardKey, 'Version', '>', 0).then(...puts.slice(i, i + TXN_OPS)).commit();
      if (!res.succeeded) throw new Error('no longer the elected health checker');
    }
  }
}

function conflict(pool: string, url: string): FlexiError {
  return new FlexiError('FLX_CLUSTER_CONFLICT', `origin ${url} is already in pool "${pool}" of the cluster`, { field: 'url' });
}
