// The C example on a threaded route: every call goes to one of the route's own
// native threads and back through its call ring (for plugins that block).
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
