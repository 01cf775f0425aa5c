/**
 * Every flexilib_ metric, on one prom-client Registry:
 *
 * - per-request metrics summed from the workers' shared metrics files
 *   (aggregator.ts), read afresh at each scrape through collect() callbacks;
 * - supervisor lifecycle metrics (restarts, exits, reloads, quarantine),
 *   counted from the Supervisor's events;
 * - prom-client's default process metrics for the supervisor process itself
 *   (process_*, nodejs_*: the names dashboards expect, hence no prefix).
 *
 * Labels stay bounded: `route` is the proxy.ini key (never the raw path),
 * `library` a configured library file, `status` a status class, `code` a
 * code of the error catalogue.
 */
import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { DURATION_BUCKETS, ERROR_CODES, L, R, STATUS_CLASSES } from '@flexilib/contract/metrics-layout';
import type { SupervisorEvents } from '../events.js';
import { MetricsAggregator, type Totals } from './aggregator.js';
import { SharedHistogram } from './shared-histogram.js';

export class FlexilibMetrics {
  readonly registry = new Registry();
  readonly aggregator: MetricsAggregator;
  /** Totals of the scrape in progress (taken once per scrape, read by every collect()). */
  private snap: Totals | undefined;

  constructor(supervisor: EventEmitter<SupervisorEvents>, runDir: string, log: Logger) {
    this.aggregator = new MetricsAggregator(runDir, log);
    const registers = [this.registry];
    // prom-client samples event-loop delay on a 10 ms timer by default: 100
    // wake-ups a second of an otherwise idle supervisor, on the cores the
    // workers serve from. 200 ms still catches a stalled supervisor.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 200 });
    // Gauges named like counters, which `promtool check metrics` rejects; each
    // is the sum of its labelled sibling (nodejs_active_handles etc.).
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      this.registry.removeSingleMetric(name);
    }
    const totals = (): Totals => (this.snap ??= this.aggregator.snapshot());

    // ---- per request, from the workers' files ----
    new Counter({
      name: 'flexilib_requests_total',
      help: 'Requests answered, by route (proxy.ini key; "(none)" when no route matched), executor kind and status class ("aborted": the client left before the response was complete).',
      labelNames: ['route', 'kind', 'status'] as const,
      registers,
      collect() {
        this.reset();
        for (const s of totals().routes.values()) {
          STATUS_CLASSES.forEach((status, i) => this.inc({ route: s.route, kind: s.kind, status }, s.v[R.requests + i]));
        }
      },
    });
    new SharedHistogram(
      {
        name: 'flexilib_request_duration_seconds',
        help: 'Time from the request to the end of its response, by route and executor kind.',
        labelNames: ['route', 'kind'] as const,
        buckets: DURATION_BUCKETS,
        registers,
      },
      function* () {
        for (const s of totals().routes.values()) {
          yield { labels: { route: s.route, kind: s.kind }, counts: s.v.subarray(R.buckets, R.buckets + DURATION_BUCKETS.length + 1), sum: s.v[R.durationSum] };
        }
      },
    );
    const perRoute = (name: string, help: string, field: number) =>
      new Counter({
        name,
        help,
        labelNames: ['route', 'kind'] as const,
        registers,
        collect() {
          this.reset();
          for (const s of totals().routes.values()) this.inc({ route: s.route, kind: s.kind }, s.v[field]);
        },
      });
    perRoute('flexilib_response_bytes_total', 'Response body bytes sent, by route and executor kind.', R.responseBytes);
    perRoute('flexilib_arena_overflow_bytes_total', 'Bytes native plugins allocated beyond the pre-allocated arena (RESPONSE_PREALLOCATION_KB), by route.', R.overflowBytes);
    perRoute('flexilib_arena_overflow_requests_total', 'Requests whose plugin needed memory beyond the pre-allocated arena, by route.', R.overflowRequests);
    perRoute('flexilib_fast_lane_requests_total', "Requests the fast lane answered without node:http's request and response objects (the rest of a route's requests went through node:http), by route.", R.fastLane);
    new Counter({
      name: 'flexilib_errors_total',
      help: "Error answers flexilib itself sent, by route, executor kind and the catalogue code of their x-flexilib-error header (a series appears with the code's first answer).",
      labelNames: ['route', 'kind', 'code'] as const,
      registers,
      collect() {
        this.reset();
        for (const s of totals().routes.values()) {
          for (let i = 0; i < ERROR_CODES.length; i++) if (s.errors[i] > 0) this.inc({ route: s.route, kind: s.kind, code: ERROR_CODES[i] }, s.errors[i]);
        }
      },
    });
    const wasmRoutes = function* () {
      for (const s of totals().routes.values()) if (s.kind === 'wasm') yield s;
    };
    new Gauge({
      name: 'flexilib_wasm_instances',
      help: "Live instances of a WASM route's module, across workers (routes sharing a module and limits share instances, counted on the first of them).",
      labelNames: ['route'] as const,
      registers,
      collect() {
        this.reset();
        for (const s of wasmRoutes()) this.set({ route: s.route }, s.v[R.wasmInstances]);
      },
    });
    const perWasmRoute = (name: string, help: string, field: number) =>
      new Counter({
        name,
        help,
        labelNames: ['route'] as const,
        registers,
        collect() {
          this.reset();
          for (const s of wasmRoutes()) this.inc({ route: s.route }, s.v[field]);
        },
      });
    perWasmRoute('flexilib_wasm_cold_starts_total', 'WASM instances started for a route (a thread and an instantiation, on a request no idle instance could take), across workers.', R.wasmColdStarts);
    perWasmRoute(
      'flexilib_wasm_cold_start_seconds_total',
      'Time WASM cold starts took (compiling the module when not cached, starting its thread, instantiating it), summed; divided by flexilib_wasm_cold_starts_total it is the mean.',
      R.wasmColdStartSeconds,
    );
    new Gauge({
      name: 'flexilib_requests_in_flight',
      help: 'Requests being answered now, across all workers.',
      registers,
      collect() {
        this.set(totals().inflight);
      },
    });
    const perLibrary = (name: string, help: string, field: number) =>
      new Counter({
        name,
        help,
        labelNames: ['library'] as const,
        registers,
        collect() {
          this.reset();
          for (const [library, v] of totals().libraries) this.inc({ library }, v[field]);
        },
      });
    perLibrary('flexilib_library_loads_total', 'Successful first loads of a plugin library, summed over workers.', L.loads);
    perLibrary('flexilib_library_reloads_total', 'Successful reloads of a changed plugin library, summed over workers.', L.reloads);
    perLibrary('flexilib_library_load_failures_total', 'Failed attempts to load a plugin library (missing, no handle_request, ABI mismatch, flexi_init failed), summed over workers.', L.loadFailures);
    perLibrary('flexilib_library_reload_failures_total', 'Failed reloads of a plugin library (the previous version kept serving), summed over workers.', L.reloadFailures);

    // ---- supervisor lifecycle, from its events ----
    const restarts = new Counter({ name: 'flexilib_worker_restarts_total', help: 'Workers that took over from one that exited (a spare, or a newly forked replacement).', registers });
    const exits = new Counter({
      name: 'flexilib_worker_exits_total',
      help: 'Worker exits, by reason (crash, killed, exited, hang, stopped) and how: the signal, or the exit code.',
      labelNames: ['reason', 'signal', 'code'] as const,
      registers,
    });
    const alive = new Set<number>();
    const listening = new Set<number>();
    new Gauge({ name: 'flexilib_workers', help: 'Worker processes alive.', registers, collect() { this.set(alive.size); } });
    new Gauge({ name: 'flexilib_workers_listening', help: 'Worker processes accepting requests.', registers, collect() { this.set(listening.size); } });
    const reloads = new Counter({
      name: 'flexilib_config_reloads_total',
      help: 'Config reloads, by result (success, failure: the previous config kept serving).',
      labelNames: ['result'] as const,
      registers,
    });
    reloads.inc({ result: 'success' }, 0);
    reloads.inc({ result: 'failure' }, 0);
    const quarantined = new Set<string>();
    new Gauge({ name: 'flexilib_quarantined_libraries', help: 'Plugin libraries quarantined now (not called after repeated crashes).', registers, collect() { this.set(quarantined.size); } });
    const quarantines = new Counter({ name: 'flexilib_library_quarantines_total', help: 'Times a plugin library was quarantined.', labelNames: ['library'] as const, registers });

    supervisor.on('worker-start', (e) => alive.add(e.id));
    supervisor.on('worker-listening', (e) => {
      listening.add(e.id);
      if (e.replaces) restarts.inc();
    });
    supervisor.on('worker-exit', (e) => {
      alive.delete(e.id);
      listening.delete(e.id);
      exits.inc({ reason: e.reason, signal: e.signal ?? '', code: e.code === null ? '' : String(e.code) });
      this.aggregator.workerExited(e.id);
    });
    supervisor.on('reloaded', () => reloads.inc({ result: 'success' }));
    supervisor.on('reload-failed', () => reloads.inc({ result: 'failure' }));
    supervisor.on('quarantine', (e) => {
      quarantined.add(e.library);
      quarantines.inc({ library: e.library });
    });
    supervisor.on('quarantine-lifted', (e) => quarantined.delete(e.library));
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition of everything, read now. */
  async render(): Promise<string> {
    this.snap = this.aggregator.snapshot();
    try {
      return await this.registry.metrics();
    } finally {
      this.snap = undefined;
    }
  }
}
