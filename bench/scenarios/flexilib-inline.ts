// flexilib as it starts by default: the C example on an inline route (the
// call runs on the event loop), access log on.
import { defineScenario } from '../lib/scenario.ts';
import { flexilibMissing, startFlexilib } from '../lib/servers/flexilib.ts';

export default defineScenario({
  id: 'flexilib-inline',
  title: 'flexilib, inline route (defaults)',
  role: 'subject',
  conformance: 'identical',
  // Also driven by plain wrk: the ceiling comparison (inline against nginx return 200).
  plainWrk: true,
  unavailable: flexilibMissing,
  start: (ctx) => startFlexilib(ctx, { ini: '/ = LIB' }),
});
