export { resolveSettings, HELP, type Settings } from './settings.js';
export { SupervisorError, ERRORS, EXIT } from './errors.js';
export { UpstreamService } from './upstream/upstream-service.js';
export { upstreamMetrics } from './upstream/metrics.js';
