import { fileURLToPath } from 'node:url';

export * from './layout.js';
export { findZig, wasmCcArgs } from './wasm-toolchain.js';

/** Absolute path of the folder holding flexilib.h, for `cc -I`. */
export const includeDir: string = fileURLToPath(new URL('../include', import.meta.url));
