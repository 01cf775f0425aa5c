// The inline route with the access log (JSON lines, to a file like every
// server's output here) and metrics on, said explicitly so that a change of
// defaults does not silently change what this measures.
import { defineScenario } from '../lib/scenario.ts';
import { flexilibHasFlag, flexilibMissing, startFlexilib } from '../lib/servers/flexilib.ts';

export default defineScenario({
  id: 'flexilib-logs-metrics-on',
  title: 'flexilib, access log and metrics on',
  role: 'subject',
  conformance: 'identical',
  unavailable: flexilibMissing,
  start: (ctx) =>
    startFlexilib(ctx, {
      ini: '/ = LIB',
      flags: flexilibHasFlag(ctx.root, '--metrics') ? ['--metrics'] : [],
      env: { ACCESS_LOG: '1' },
    }),
});
