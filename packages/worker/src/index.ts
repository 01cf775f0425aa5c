/**
 * `@flexilib/worker`'s public entry: what runs outside a worker process and is
 * the worker's own code, for the supervisor and its tools. The contract both
 * sides share (messages, config, layouts, errors) is `@flexilib/contract`; the
 * worker process itself is started from `@flexilib/worker/worker-main`.
 */
// `flexilib invoke`: the same loader, call slot and response rules the worker serves with.
export { Library, LoadedVersion } from './native/library.js';
export { Slot, MAX_HEADERS, type RequestLike, type PluginResponse } from './native/slot.js';
export { applyResponseRules } from './http/response-rules.js';
export { checkFinalStatus } from './http/final-status.js';
// The library reloader's check that a changed file is a complete ELF before it is announced.
export { elfArchProblem, elfProblem } from './native/elf-check.js';
// Plugin files are read only when regular and within a size limit (admin API, reload check, loaders).
export { MAX_LIBRARY_BYTES, MAX_MODULE_BYTES, PluginFileError, readPluginFile, type PluginFile, type PluginFileProblem } from './plugin-file.js';
// systemd notify (the primary has no unix datagram client of its own).
export { sendUnixDatagram } from './native/ffi.js';
// The WASM services API tries a module before accepting it.
// The supervisor reads the workers' upstream counter files; tests write one as a worker does.
export { mapSharedFile, unmapShared } from './native/ffi.js';
export { UpstreamCounterFile } from './upstream/counter-file.js';
export { compileModule, mib, type CompiledModule, type ModuleInfo } from './wasm/module-check.js';
export { probeModule, type ProbeResult } from './wasm/probe.js';
// The supervisor logs in the workers' format and reads their metrics files.
export { createLogger, LOG_LEVELS, type LogFormat, type LogOptions } from './observe/logger.js';
export { MappedMetricsFile, readMetricsFile, type MetricsData, type MetricsFileInfo } from './observe/metrics/metrics-file.js';
export { workerdBinary } from './cf-workers/workerd-binary.js';
