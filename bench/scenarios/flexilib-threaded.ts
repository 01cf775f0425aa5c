// The C example on a threaded route: every call hops to one of koffi's async
// threads and back (for plugins that block).
import { defineScenario } from '../lib/scenario.ts';
import { flexilibMissing, startFlexilib } from '../lib/servers/flexilib.ts';

export default defineScenario({
  id: 'flexilib-threaded',
  title: 'flexilib, threaded route',
  role: 'subject',
  conformance: 'identical',
  unavailable: flexilibMissing,
  start: (ctx) => startFlexilib(ctx, { ini: '/ = LIB\n\n[route /]\nmode = threaded' }),
});
