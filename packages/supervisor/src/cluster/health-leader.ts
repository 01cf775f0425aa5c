/**
 * One active health checker per cluster: an etcd election (etcd's recipe: the
 * candidate key with the lowest create revision leads) on a short lease. The
 * leader runs the active checks and publishes verdicts guarded by its own
 * election key; the others apply them. A lost lease (the leader cut off,
 * frozen or killed) frees the seat within LEASE_TTL_S; a graceful stop
 * resigns at once (revokes the lease).
 */
import type { Campaign, Election, Namespace } from 'etcd3';
import type { Logger } from 'pino';
import { clusterPrefix } from './options.js';

export const LEASE_TTL_S = 3;
const RETRY_MS = 1000;

export class HealthLeader {
  leading = false;
  /** The election key of this host while it leads, relative to the cluster prefix. */
  guardKey: string | undefined;
  private readonly election: Election;
  private campaign: Campaign | undefined;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(ns: Namespace, private readonly cluster: string, private readonly member: string, private readonly log: Logger, private readonly onChange: (leading: boolean) => void) {
    this.election = ns.election('health', LEASE_TTL_S);
  }

  start(): void {
    if (this.stopped || this.campaign) return;
    const c = this.election.campaign(this.member);
    this.campaign = c;
    c.on('elected', () => {
      void c.getCampaignKey().then(
        (key) => {
          if (this.campaign !== c || this.stopped) return;
          this.guardKey = key.slice(clusterPrefix(this.cluster).length);
          this.leading = true;
          this.log.info({ member: this.member }, 'elected as the cluster health checker');
          this.onChange(true);
        },
        (err: Error) => this.lost(c, err),
      );
    });
    c.on('error', (err: Error) => this.lost(c, err));
  }

  /** Who leads now (its member id), undefined when nobody does or etcd does not answer. */
  async leader(): Promise<string | undefined> {
    return this.election.leader().catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    const c = this.campaign;
    const was = this.leading;
    this.campaign = undefined;
    this.leading = false;
    await c?.resign().catch(() => undefined);
    if (was) this.log.info({ member: this.member }, 'resigned as the cluster health checker');
  }

  private lost(c: Campaign, err: Error): void {
    if (this.campaign !== c) return;
    this.campaign = undefined;
    void c.resign().catch(() => undefined);
    if (this.leading) {
      this.leading = false;
      this.guardKey = undefined;
      this.log.warn({ err: err.message }, 'no longer the cluster health checker');
      this.onChange(false);
    }
    if (!this.stopped) this.retry = setTimeout(() => this.start(), RETRY_MS);
  }
}
