export * from './config.js';
export * from './errors.js';
export * from './options.js';
export * from './protocol.js';
export { createLogger, LOG_LEVELS, type LogFormat, type LogOptions } from './logger.js';
export { compileModule, mib, type CompiledModule, type ModuleInfo } from './wasm/module-check.js';
export { probeModule, type ProbeResult } from './wasm/probe.js';
export { DEFAULT_WASM_LIMITS, WASM_LIMIT_OPTIONS, parseDuration, parseWasmLimit, resolveLimits, type WasmLimitOption, type WasmLimits } from './wasm/limits.js';
