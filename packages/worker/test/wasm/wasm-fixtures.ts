/** This folder's C fixtures (modules that misbehave on purpose), compiled by the WASM tests with compileWasm. */
import path from 'node:path';

export const FIXTURES = path.join(import.meta.dirname, 'fixtures');
