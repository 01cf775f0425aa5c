/**
 * `@flexilib/contract`: what the supervisor and the workers agree on — the
 * message union between them (protocol.ts, checked on receipt by
 * message-check.ts), proxy.ini's types and parser, the settings handed to a
 * worker, the call marker's layout and the one error catalogue. The metrics file layout is `@flexilib/contract/metrics-layout`
 * (its short names would crowd this entry). No koffi, no node:http here.
 */
export * from './config.js';
export * from './errors.js';
export * from './options.js';
export * from './protocol.js';
export * from './message-check.js';
export * from './marker-layout.js';
export * from './upstream/upstream-config.js';
export * from './upstream/upstream-state.js';
export * from './upstream/counter-layout.js';
export * from './cf-workers/worker-config.js';
export { DEFAULT_WASM_LIMITS, WASM_LIMIT_OPTIONS, WASM_PAGE, WASM_RUNS, parseWasmLimit, resolveLimits, type WasmLimitOption, type WasmLimits, type WasmRun } from './wasm/limits.js';
export { parseDuration, type BareUnit } from './duration.js';
export * from './lambda/lambda-config.js';
