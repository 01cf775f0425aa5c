// The inline route with the access log (JSON lines, to a file like every
// server's output here) and metrics on, said explicitly (ACCESS_LOG=1,
// METRICS=1) so that a change of defaults does not silently change what this
// measures. A flexilib without metrics ignores METRICS.
import { defineScenario } from '../lib/scenario.ts';
import { flexilibMissing, startFlexilib } from '../lib/servers/flexilib.ts';

export default defineScenario({
  id: 'flexilib-logs-metrics-on',
  title: 'flexilib, access log and metrics on',
  role: 'subject',
  conformance: 'identical',
  unavailable: flexilibMissing,
  start: (ctx) => startFlexilib(ctx, { ini: '/ = LIB', env: { ACCESS_LOG: '1', METRICS: '1' } }),
});
