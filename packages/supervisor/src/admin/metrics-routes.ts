/** GET /metrics: the Prometheus text exposition, aggregated across all workers. */
import type { FlexilibMetrics } from '../metrics/flexilib-metrics.js';
import type { AdminServer } from './admin-server.js';

export function registerMetricsRoutes(admin: AdminServer, metrics: FlexilibMetrics): void {
  admin.route('GET', '/metrics', async () => ({ text: await metrics.render(), contentType: metrics.contentType }));
}
