export * from './config.js';
export * from './errors.js';
export * from './options.js';
export * from './protocol.js';
export { createLogger, LOG_LEVELS, type LogFormat, type LogOptions } from './logger.js';
export * from './marker-layout.js';
export { elfProblem } from './native/elf-check.js';
export * from './upstream/upstream-config.js';
export * from './upstream/upstream-state.js';
