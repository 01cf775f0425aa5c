// The inline route with the access log off and, where this build has the
// flag, metrics off: what observability costs is the ratio to the "on" twin.
import { defineScenario } from '../lib/scenario.ts';
import { flexilibHasFlag, flexilibMissing, startFlexilib } from '../lib/servers/flexilib.ts';

export default defineScenario({
  id: 'flexilib-logs-metrics-off',
  title: 'flexilib, access log and metrics off',
  role: 'subject',
  conformance: 'identical',
  unavailable: flexilibMissing,
  note: (root) =>
    flexilibHasFlag(root, '--no-metrics') ? undefined : 'this flexilib has no --no-metrics flag yet: "logs and metrics off/on" compare the access log alone',
  start: (ctx) =>
    startFlexilib(ctx, {
      ini: '/ = LIB',
      flags: ['--no-access-log', ...(flexilibHasFlag(ctx.root, '--no-metrics') ? ['--no-metrics'] : [])],
    }),
});
