/**
 * Upstream metrics for Prometheus (prom-client), read at scrape time from the
 * service's records, so registering them costs nothing between scrapes:
 *
 *   flexilib_upstream_origin_healthy{pool,origin}                 1 up, 0 down
 *   flexilib_upstream_health_checks_total{pool,origin,result}     active checks, success|failure
 *   flexilib_upstream_health_changes_total{pool,origin,state}     transitions to up|down
 *   flexilib_upstream_passive_failures_total{pool,origin}         connection failures reported by workers
 *   flexilib_upstream_origin_requests_total{pool,origin,result}   proxy attempts, success|failure
 *   flexilib_upstream_client_requests_total{pool,result}          client requests, success|failure
 *
 * Usage: `upstreamMetrics(registry, supervisor.upstreams)` once, with the
 * Registry that serves /metrics.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { UpstreamService } from './upstream-service.js';

export function upstreamMetrics(registry: Registry, svc: UpstreamService): void {
  const origins = () => svc.registry.all().flatMap((p) => [...p.origins.values()]);
  const registers = [registry];

  new Gauge({
    name: 'flexilib_upstream_origin_healthy',
    help: 'Whether the supervisor considers the origin healthy (1) or down (0).',
    labelNames: ['pool', 'origin'] as const,
    registers,
    collect() {
      this.reset();
      for (const o of origins()) this.set({ pool: o.pool, origin: o.url }, o.healthy ? 1 : 0);
    },
  });

  new Counter({
    name: 'flexilib_upstream_health_checks_total',
    help: 'Active health checks by result.',
    labelNames: ['pool', 'origin', 'result'] as const,
    registers,
    collect() {
      this.reset();
      for (const o of origins()) {
        this.inc({ pool: o.pool, origin: o.url, result: 'success' }, o.totals.checksOk);
        this.inc({ pool: o.pool, origin: o.url, result: 'failure' }, o.totals.checksFailed);
      }
    },
  });

  new Counter({
    name: 'flexilib_upstream_health_changes_total',
    help: 'Health transitions of origins, by the state entered.',
    labelNames: ['pool', 'origin', 'state'] as const,
    registers,
    collect() {
      this.reset();
      for (const o of origins()) {
        this.inc({ pool: o.pool, origin: o.url, state: 'up' }, o.totals.wentUp);
        this.inc({ pool: o.pool, origin: o.url, state: 'down' }, o.totals.wentDown);
      }
    },
  });

  new Counter({
    name: 'flexilib_upstream_passive_failures_total',
    help: 'Connection failures to origins reported by workers while proxying.',
    labelNames: ['pool', 'origin'] as const,
    registers,
    collect() {
      this.reset();
      for (const o of origins()) this.inc({ pool: o.pool, origin: o.url }, o.totals.passiveFailures);
    },
  });

  new Counter({
    name: 'flexilib_upstream_origin_requests_total',
    help: 'Proxy attempts to origins: success = a response arrived, failure = connection error or timeout.',
    labelNames: ['pool', 'origin', 'result'] as const,
    registers,
    collect() {
      this.reset();
      for (const [pool, pc] of Object.entries(svc.stats.totals())) {
        for (const [origin, c] of Object.entries(pc.origins)) {
          this.inc({ pool, origin, result: 'success' }, c.success);
          this.inc({ pool, origin, result: 'failure' }, c.failed);
        }
      }
    },
  });

  new Counter({
    name: 'flexilib_upstream_client_requests_total',
    help: "Client requests on upstream routes: success = answered with an origin's response, failure = the proxy's own error or a cut connection.",
    labelNames: ['pool', 'result'] as const,
    registers,
    collect() {
      this.reset();
      for (const [pool, pc] of Object.entries(svc.stats.totals())) {
        this.inc({ pool, result: 'success' }, pc.client.success);
        this.inc({ pool, result: 'failure' }, pc.client.failed);
      }
    },
  });
}
