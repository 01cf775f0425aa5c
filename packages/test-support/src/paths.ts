/** Where things are in the workspace under test. */
import path from 'node:path';

export const repoRoot = path.resolve(import.meta.dirname, '../../..');
/** The flexilib launcher; run it with `node` (process.execPath). */
export const flexilibBin = path.join(repoRoot, 'packages/supervisor/bin/flexilib');
/** The folder holding flexilib.h, for cc -I. */
export const includeDir = path.join(repoRoot, 'packages/plugin-abi/include');
/** The C example (FlexiLib's sample behaviour), compiled by many tests. */
export const exampleSource = path.join(repoRoot, 'examples/c-plugin/flexi_example.c');
