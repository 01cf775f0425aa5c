/**
 * The native plugin machinery for tools outside the server (`flexilib invoke`):
 * the same loader, call slot and response rules the worker serves with.
 */
export { Library, LoadedVersion } from './library.js';
export { Slot, MAX_HEADERS, type RequestLike, type PluginResponse } from './slot.js';
export { applyResponseRules } from './response-rules.js';
export { ABI_NAMES, type PluginAbi } from './flexilib-interface.js';
