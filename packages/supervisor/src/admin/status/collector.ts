/**
 * The data behind GET /status and the status page: one JSON snapshot of the
 * workers, the routes in match order, the upstream pools and the WASM
 * services, read from the supervisor's own records at call time (nothing is
 * kept up to date in the background).
 *
 * Sources are passed in as an interface, not the Supervisor, so this module
 * depends on what it reads, not on the supervisor. Functions and cluster
 * members are not reported here: their fields are null (a stable shape for
 * clients) and the page says so.
 */
import type { EventEmitter } from 'node:events';
import type { Config, RouteSpec, WasmServiceSpec } from '@flexilib/contract';
import type { ConfigGenerations } from '../../config-generations.js';
import type { CrashLedger, QuarantineRecord } from '../../crash-ledger.js';
import type { SupervisorEvents } from '../../events.js';
import type { MetricsAggregator } from '../../metrics/aggregator.js';
import type { UpstreamService } from '../../upstream/upstream-service.js';
import type { WorkerPool } from '../../worker-pool.js';
import { LibraryVersions, type LibraryVersion } from './library-versions.js';
import { RequestRates, rssOf } from './worker-usage.js';

export interface StatusSources {
  events: EventEmitter<SupervisorEvents>;
  pool: WorkerPool;
  ledger: CrashLedger;
  generations: ConfigGenerations;
  upstreams: UpstreamService;
  /** The WASM services as workers route them (most specific prefix first). */
  services: () => WasmServiceSpec[];
  aggregator: MetricsAggregator;
  /** The traffic port once a worker listens. */
  port: () => number | undefined;
}

/** How a quarantine ends: the ledger has no timer (see crash-ledger.ts). */
export const QUARANTINE_UNTIL = 'the library file changes or the server is sent SIGHUP';

const iso = (ms: number) => new Date(ms).toISOString();
const seconds = (ms: number) => Math.round(ms / 100) / 10;

export class StatusCollector {
  private readonly libraries: LibraryVersions;
  private readonly rates = new RequestRates();

  constructor(private readonly src: StatusSources) {
    this.libraries = new LibraryVersions(src.events, nativeLibraries(src.generations.current));
  }

  snapshot() {
    const now = Date.now();
    const config = this.src.generations.current;
    const quarantined = new Map(this.src.ledger.list().map((q) => [q.library, q]));
    return {
      time: iso(now),
      supervisor: {
        pid: process.pid,
        uptime_s: seconds(process.uptime() * 1000),
        rss_bytes: process.memoryUsage.rss(),
        config: config.file,
        generation: this.src.generations.generation,
        port: this.src.port() ?? null,
      },
      workers: this.workers(now),
      routes: [...this.src.services().map((s) => serviceRoute(s)), ...config.routes.map((r) => this.route(r, quarantined, now))],
      quarantined: [...quarantined.values()].map((q) => quarantineView(q, now)),
      upstreams: this.upstreams(),
      wasm_services: this.src.services().map((s) => ({ name: s.name, prefix: s.prefix, sha256: s.sha256, module: s.module })),
      /** Lambda and worker functions: not reported (null). */
      functions: null,
      /** Cluster members: not reported (null). */
      cluster: null,
    };
  }

  private workers(now: number) {
    const requests = this.src.aggregator.requestsByWorker();
    const all = this.src.pool.all();
    this.rates.keepOnly(new Set(all.map((w) => w.id)));
    return all.map((w) => {
      const count = requests.get(w.id) ?? 0;
      return {
        id: w.id,
        pid: w.pid,
        state: w.listening ? 'listening' : w.standby ? 'spare' : 'starting',
        uptime_s: seconds(now - w.startedAt),
        rss_bytes: rssOf(w.pid),
        requests: count,
        requests_per_s: this.rates.rate(w.id, count, now),
        generation: w.generation,
      };
    });
  }

  private route(r: RouteSpec, quarantined: Map<string, QuarantineRecord>, now: number) {
    const base = { key: r.key, source: 'config' as const, line: r.line, match: matchOf(r) };
    const t = r.target;
    if (t.kind === 'native') {
      const q = quarantined.get(t.library);
      const v: LibraryVersion | undefined = this.libraries.get(t.library);
      return {
        ...base,
        executor: { kind: 'native', mode: r.options.mode, ...(r.options.mode === 'threaded' ? { threads: r.options.threads } : {}) },
        target: t.configured,
        state: q ? 'quarantined' : 'serving',
        library: { file: t.library, sha256: v?.sha256 ?? null, bytes: v?.bytes ?? null, loaded_at: v?.loadedAt ?? null, ...(v?.error ? { error: v.error } : {}) },
        quarantine: q ? quarantineView(q, now) : null,
      };
    }
    if (t.kind === 'upstream') {
      const pool = this.src.upstreams.registry.get(t.pool);
      const healthy = pool ? [...pool.origins.values()].filter((o) => o.healthy).length : 0;
      return { ...base, executor: { kind: 'upstream', pool: t.pool }, target: t.configured, state: healthy > 0 ? 'serving' : 'no healthy origin', quarantine: null };
    }
    if (t.kind === 'lambda') return { ...base, executor: { kind: 'lambda', function: t.function }, target: t.configured, state: 'serving', quarantine: null };
    if (t.kind === 'worker') return { ...base, executor: { kind: 'worker', worker: t.worker }, target: t.configured, state: 'serving', quarantine: null };
    return { ...base, executor: { kind: 'wasm', module: t.module }, target: t.configured, state: 'serving', quarantine: null };
  }

  private upstreams() {
    const totals = this.src.upstreams.stats.totals();
    return this.src.upstreams.registry.all().map((p) => {
      const counts = totals[p.name];
      const origins = [...p.origins.values()].map((o) => ({
        url: o.url,
        healthy: o.healthy,
        source: o.source,
        consecutive_failures: o.failures,
        last_change: o.lastChange,
        last_check: o.lastCheck ?? null,
        requests: counts?.origins[o.url] ?? { success: 0, failed: 0 },
        checks: { ok: o.totals.checksOk, failed: o.totals.checksFailed },
        passive_failures: o.totals.passiveFailures,
      }));
      return {
        name: p.name,
        balance: p.settings.balance,
        healthy: origins.filter((o) => o.healthy).length,
        origins,
        client_requests: counts?.client ?? { success: 0, failed: 0 },
      };
    });
  }
}

function nativeLibraries(config: Config): string[] {
  return [...new Set(config.routes.flatMap((r) => (r.target.kind === 'native' ? [r.target.library] : [])))];
}

function matchOf(r: RouteSpec) {
  return { path_prefix: r.pathPrefix, ...(r.header ? { header: `${r.header.name}: ${r.header.valuePrefix}` } : {}) };
}

function serviceRoute(s: WasmServiceSpec) {
  return {
    key: s.prefix,
    source: 'service' as const,
    line: null,
    match: { path_prefix: s.prefix },
    executor: { kind: 'wasm', module: s.module, service: s.name },
    target: s.name,
    state: 'serving',
    quarantine: null,
  };
}

function quarantineView(q: QuarantineRecord, now: number) {
  return {
    library: q.library,
    since: iso(q.since),
    for_s: seconds(now - q.since),
    crashes: q.crashes,
    reason: q.reason,
    retry_after_s: q.retryAfterS,
    until: QUARANTINE_UNTIL,
  };
}
