/**
 * The shared state of a cluster as this host applied it: every key under
 * `state/` (relative to /flexilib/NAME/v1/), its revision, and whether etcd
 * answers. It survives etcd's real failure modes:
 *
 *   list state/ ──> apply the difference ──> watch from revision+1 ──> apply each batch
 *        ^                                        │
 *        └── compacted watch, a revision that went back, a new cluster id,
 *            etcd answering again after an outage ────────────────────────┘
 *
 * A probe (one tiny read a second) decides `ok`/`unreachable`; while etcd is
 * unreachable the last applied state keeps serving. Every applied state is
 * written to a local snapshot (with its revision and cluster id), so a host
 * restarted while etcd is down starts from it.
 */
import { EventEmitter } from 'node:events';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Namespace, Watcher } from 'etcd3';
import type { Logger } from 'pino';
import { FlexiError } from '@flexilib/contract';
import { CALL_TIMEOUT_MS, isAuthError } from './etcd.js';

export const STATE = 'state/';
const PROBE_MS = 1000;

/** Applies a new state (keys relative to state/); `changed` are the keys that differ from the last one. */
export type Applier = (kvs: ReadonlyMap<string, string>, changed: ReadonlySet<string>) => Promise<void>;

export interface StoreEvents {
  /** etcd answers again (after start or an outage) and the state was re-listed. */
  up: [];
  /** etcd stopped answering. */
  down: [];
}

interface Snapshot {
  version: 1;
  cluster: string;
  clusterId: string;
  revision: number;
  state: Record<string, string>;
}

export class SharedStore extends EventEmitter<StoreEvents> {
  private kvs = new Map<string, string>();
  /** Revision of the state handed to the applier (and applied once `appliedRevision` reaches it). */
  private revision = 0;
  appliedRevision = 0;
  clusterId = '';
  status: 'starting' | 'ok' | 'unreachable' = 'starting';
  /** When etcd last answered (ms since epoch; 0: never in this process). */
  lastOkAt = 0;
  private watcher: Watcher | undefined;
  private watchGeneration = 0;
  private applying: Promise<void> = Promise.resolve();
  private waiters = new Set<{ revision: number; wake: () => void }>();
  private probeTimer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;
  private stopped = false;
  private snapshotDue: NodeJS.Timeout | undefined;

  constructor(
    private readonly ns: Namespace,
    private readonly name: string,
    private readonly snapshotFile: string,
    private readonly log: Logger,
    private readonly apply: Applier,
  ) {
    super();
  }

  get(key: string): string | undefined {
    return this.kvs.get(key);
  }

  entries(prefix: string): Array<[string, string]> {
    return [...this.kvs].filter(([k]) => k.startsWith(prefix));
  }

  /** Seconds since etcd last answered (0 while it answers). */
  staleSeconds(): number {
    if (this.status === 'ok') return 0;
    return this.lastOkAt ? Math.round((Date.now() - this.lastOkAt) / 100) / 10 : -1;
  }

  /** The state of the local snapshot, applied at once (before the workers fork). Throws FLX_CLUSTER_SNAPSHOT when it is corrupt. */
  async restoreSnapshot(): Promise<boolean> {
    let text: string;
    try {
      text = readFileSync(this.snapshotFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw new FlexiError('FLX_CLUSTER_SNAPSHOT', `cannot read the cluster snapshot ${this.snapshotFile}: ${(err as Error).message}`);
    }
    let snap: Snapshot;
    try {
      snap = JSON.parse(text) as Snapshot;
      if (snap.version !== 1 || typeof snap.state !== 'object' || typeof snap.revision !== 'number') throw new Error('unknown format');
    } catch (err) {
      throw new FlexiError('FLX_CLUSTER_SNAPSHOT', `the cluster snapshot ${this.snapshotFile} is unusable (${(err as Error).message}): delete it, the host re-reads etcd`);
    }
    if (snap.cluster !== this.name) return false;
    this.clusterId = snap.clusterId;
    this.replace(new Map(Object.entries(snap.state)), snap.revision);
    await this.applying;
    this.log.info({ revision: snap.revision, keys: this.kvs.size, file: this.snapshotFile }, 'cluster state restored from the local snapshot');
    return true;
  }

  /**
   * First sync (bounded by the call deadline), then the probe loop. An
   * unreachable etcd is no error (the snapshot serves); an authentication
   * failure is (FLX_CLUSTER_AUTH).
   */
  async start(): Promise<void> {
    try {
      await this.resync('start');
    } catch (err) {
      if (isAuthError(err)) throw new FlexiError('FLX_CLUSTER_AUTH', `etcd refused this host: ${(err as Error).message} (check --cluster-user/--cluster-password and the user's role on /flexilib/${this.name}/)`);
      this.markDown(err as Error);
    }
    this.probeTimer = setInterval(() => void this.probe(), PROBE_MS);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.probeTimer);
    if (this.snapshotDue) {
      clearTimeout(this.snapshotDue);
      this.writeSnapshot();
    }
    await this.watcher?.cancel().catch(() => undefined);
  }

  /** Resolves once the state of `revision` (or later) is applied on this host; false after timeoutMs. */
  waitApplied(revision: number, timeoutMs: number): Promise<boolean> {
    if (this.appliedRevision >= revision) return Promise.resolve(true);
    return new Promise((resolve) => {
      const w = {
        revision,
        wake: () => {
          clearTimeout(t);
          this.waiters.delete(w);
          resolve(true);
        },
      };
      const t = setTimeout(() => {
        this.waiters.delete(w);
        resolve(false);
      }, timeoutMs);
      this.waiters.add(w);
    });
  }

  /** Re-list state/ and apply only the difference, then watch from there. One at a time. */
  resync(reason: string): Promise<void> {
    this.syncing ??= this.relist(reason).finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  private async relist(reason: string): Promise<void> {
    const res = await this.ns.getAll().prefix(STATE).exec();
    const next = new Map<string, string>();
    for (const kv of res.kvs) next.set(kv.key.toString().slice(STATE.length), kv.value.toString());
    const revision = Number(res.header.revision);
    const clusterId = String(res.header.cluster_id);
    if (this.clusterId && clusterId !== this.clusterId) this.log.warn({ was: this.clusterId, now: clusterId }, 'etcd has a new cluster id: taking its state as a whole');
    this.clusterId = clusterId;
    const changed = this.replace(next, revision);
    if (reason !== 'start' || changed) this.log.info({ reason, revision, keys: next.size, changed }, 'cluster state re-listed');
    await this.watchFrom(revision + 1);
    this.markUp();
  }

  /** Take `next` as the whole state; the applier gets only the keys that differ. */
  private replace(next: Map<string, string>, revision: number): number {
    const changed = new Set<string>();
    for (const [k, v] of next) if (this.kvs.get(k) !== v) changed.add(k);
    for (const k of this.kvs.keys()) if (!next.has(k)) changed.add(k);
    this.kvs = next;
    // A listing sets the revision as it is, even lower than before (a new or restored etcd cluster).
    this.revision = revision;
    this.commit(changed, revision);
    return changed.size;
  }

  private commit(changed: Set<string>, revision: number): void {
    this.revision = Math.max(revision, this.revision);
    const rev = this.revision;
    const view = new Map(this.kvs);
    this.applying = this.applying
      .then(() => (changed.size ? this.apply(view, changed) : undefined))
      .catch((err: Error) => this.log.error({ err: err.message, stack: err.stack }, 'applying the cluster state failed'))
      .then(() => {
        this.appliedRevision = rev;
        for (const w of [...this.waiters]) if (w.revision <= rev) w.wake();
        if (changed.size) this.snapshotSoon();
      });
  }

  private async watchFrom(revision: number): Promise<void> {
    const old = this.watcher;
    this.watcher = undefined;
    void old?.cancel().catch(() => undefined); // never awaited: a cancel on a dead stream may wait for its reconnection
    if (this.stopped) return;
    const gen = ++this.watchGeneration;
    const pending = this.ns.watch().prefix(STATE).startRevision(String(revision)).create();
    // A watch that connects after its deadline, or after a newer one, is cancelled.
    pending.then((late) => setImmediate(() => this.watcher !== late && void late.cancel().catch(() => undefined)), () => undefined);
    let timer: NodeJS.Timeout | undefined;
    const w = await Promise.race([
      pending,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no watch within ${CALL_TIMEOUT_MS} ms`)), CALL_TIMEOUT_MS))),
    ]).finally(() => clearTimeout(timer));
    if (gen !== this.watchGeneration || this.stopped) return;
    this.watcher = w;
    w.on('data', (res) => {
      if (this.watcher !== w) return;
      // The watch reconnects by itself to whatever answers on the endpoints:
      // another cluster's events are not applied onto this one's state (the
      // probe would notice the new id only on its next round); re-list it whole.
      const id = res.header?.cluster_id;
      if (id !== undefined && String(id) !== this.clusterId) {
        this.watcher = undefined;
        void w.cancel().catch(() => undefined);
        void this.resync('new cluster id').catch((e: Error) => this.markDown(e));
        return;
      }
      const changed = new Set<string>();
      let rev = 0;
      for (const ev of res.events) {
        const key = ev.kv.key.toString().slice(STATE.length);
        if (ev.type === 'Put') this.kvs.set(key, ev.kv.value.toString());
        else this.kvs.delete(key);
        changed.add(key);
        rev = Math.max(rev, Number(ev.kv.mod_revision));
      }
      if (changed.size) this.commit(changed, rev);
    });
    w.on('error', (err) => {
      if (this.watcher !== w || this.stopped) return;
      // A compacted start revision cancels the watch: re-list and apply the difference.
      this.log.warn({ err: err.message }, 'cluster watch ended; re-listing');
      this.watcher = undefined;
      void this.resync('watch ended').catch((e: Error) => this.markDown(e));
    });
  }

  /** One small read: is etcd there, is it still the same cluster, did its revision go back? */
  private async probe(): Promise<void> {
    if (this.stopped || this.syncing) return;
    try {
      const res = await this.ns.get('probe').exec();
      const revision = Number(res.header.revision);
      const clusterId = String(res.header.cluster_id);
      if (this.status !== 'ok') await this.resync('etcd answers again');
      else if (clusterId !== this.clusterId) await this.resync('new cluster id');
      else if (revision < this.revision) await this.resync(`revision went back from ${this.revision} to ${revision}`);
      else if (!this.watcher) await this.resync('no watch');
      else this.lastOkAt = Date.now();
    } catch (err) {
      this.markDown(err as Error);
    }
  }

  private markUp(): void {
    this.lastOkAt = Date.now();
    if (this.status === 'ok') return;
    const was = this.status;
    this.status = 'ok';
    if (was === 'unreachable') this.log.info({ revision: this.revision }, 'etcd reachable again; cluster state re-synced');
    this.emit('up');
  }

  private markDown(err: Error): void {
    if (this.stopped) return;
    if (this.status === 'unreachable') return;
    this.status = 'unreachable';
    this.log.error({ code: 'FLX_CLUSTER_UNREACHABLE', err: err.message, revision: this.revision }, 'etcd is unreachable: serving the last cluster state; shared changes answer 503 until it is back');
    this.emit('down');
  }

  private snapshotSoon(): void {
    if (this.snapshotDue) return;
    this.snapshotDue = setTimeout(() => {
      this.snapshotDue = undefined;
      this.writeSnapshot();
    }, 200);
  }

  private writeSnapshot(): void {
    const snap: Snapshot = { version: 1, cluster: this.name, clusterId: this.clusterId, revision: this.appliedRevision, state: Object.fromEntries(this.kvs) };
    const tmp = `${this.snapshotFile}.${process.pid}.tmp`;
    try {
      mkdirSync(path.dirname(this.snapshotFile), { recursive: true });
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, JSON.stringify(snap) + '\n');
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.snapshotFile);
    } catch (err) {
      this.log.error({ code: 'FLX_CLUSTER_SNAPSHOT', err: (err as Error).message, file: this.snapshotFile }, 'cannot write the cluster snapshot');
    }
  }
}
