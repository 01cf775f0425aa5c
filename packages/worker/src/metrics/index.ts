/** `@flexilib/worker/metrics`: the metrics file layout and its reader, for the supervisor. */
export * from './layout.js';
export { MappedMetricsFile, readMetricsFile, type MetricsData, type MetricsFileInfo } from './metrics-file.js';
