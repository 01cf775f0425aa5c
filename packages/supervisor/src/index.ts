export { resolveSettings, HELP, type Settings, type SupervisionSettings } from './settings.js';
export { EXIT } from './errors.js';
export { Supervisor } from './supervisor.js';
export type * from './events.js';
export { UpstreamService } from './upstream/upstream-service.js';
export { upstreamMetrics } from './upstream/metrics.js';
