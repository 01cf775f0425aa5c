/**
 * Each host registers `members/<id>` under its own lease: its addresses,
 * version, applied revision and state digest, and the sha256 of every native
 * library its config serves. The key vanishes with the lease when the host
 * dies; GET /cluster lists them and names hosts whose libraries differ.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Lease, Namespace } from 'etcd3';
import type { Logger } from 'pino';
import { memberKey } from './keys.js';

const MEMBER_TTL_S = 5;
const REFRESH_MS = 1500;

export interface MemberRecord {
  id: string;
  admin: string;
  port: number | undefined;
  pid: number;
  version: string;
  revision: number;
  digest: string;
  /** Library path -> sha256 of its file ('' when unreadable). */
  libraries: Record<string, string>;
  startedAt: string;
}

export interface LibraryMismatch {
  member: string;
  library: string;
  sha256: string;
  /** What most members serve under that file name. */
  others: string;
}

export class Membership {
  private lease: Lease | undefined;
  private timer: NodeJS.Timeout | undefined;
  private last = '';
  private readonly hashes = new Map<string, { stamp: string; sha256: string }>();

  constructor(private readonly ns: Namespace, readonly id: string, private readonly describe: () => Omit<MemberRecord, 'libraries'>, private readonly libraries: () => string[], private readonly log: Logger) {}

  start(): void {
    this.timer = setInterval(() => void this.refresh(), REFRESH_MS);
    void this.refresh();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    const l = this.lease;
    this.lease = undefined;
    await l?.revoke().catch(() => undefined);
  }

  /** Register (again, after a lost lease) and update the record when it changed. */
  async refresh(): Promise<void> {
    const rec: MemberRecord = { ...this.describe(), libraries: this.hashLibraries() };
    const value = JSON.stringify(rec);
    try {
      if (!this.lease || this.lease.revoked()) {
        const lease = this.ns.lease(MEMBER_TTL_S, { autoKeepAlive: true });
        lease.on('lost', () => {
          if (this.lease === lease) this.lease = undefined;
        });
        this.lease = lease;
        this.last = '';
      }
      if (value === this.last) return;
      await this.lease.put(memberKey(this.id)).value(value).exec();
      this.last = value;
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'cluster membership not refreshed');
      void this.lease?.revoke().catch(() => undefined);
      this.lease = undefined;
    }
  }

  async list(): Promise<MemberRecord[]> {
    const res = await this.ns.getAll().prefix('members/').exec();
    return res.kvs.map((kv) => JSON.parse(kv.value.toString()) as MemberRecord).sort((a, b) => a.id.localeCompare(b.id));
  }

  private hashLibraries(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const file of this.libraries()) {
      try {
        const st = statSync(file);
        const stamp = `${st.size}:${st.mtimeMs}:${st.ino}`;
        let h = this.hashes.get(file);
        if (h?.stamp !== stamp) {
          h = { stamp, sha256: createHash('sha256').update(readFileSync(file)).digest('hex') };
          this.hashes.set(file, h);
        }
        out[file] = h.sha256;
      } catch {
        out[file] = '';
      }
    }
    return out;
  }
}

/** Members whose library (by file name) hashes differently from what most members serve. */
export function libraryMismatches(members: MemberRecord[]): LibraryMismatch[] {
  const byName = new Map<string, Array<{ member: string; library: string; sha256: string }>>();
  for (const m of members) {
    for (const [library, sha256] of Object.entries(m.libraries)) {
      const name = path.basename(library);
      if (!byName.has(name)) byName.set(name, []);
      byName.get(name)!.push({ member: m.id, library, sha256 });
    }
  }
  const out: LibraryMismatch[] = [];
  for (const list of byName.values()) {
    const counts = new Map<string, number>();
    for (const e of list) counts.set(e.sha256, (counts.get(e.sha256) ?? 0) + 1);
    if (counts.size < 2) continue;
    const majority = [...counts].sort((a, b) => b[1] - a[1])[0][0];
    for (const e of list) if (e.sha256 !== majority) out.push({ ...e, others: majority });
  }
  return out;
}
