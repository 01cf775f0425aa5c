// A native inline route reading a request body: POST /echo with 1 KiB, which
// the C example answers with "POST /echo\n" and the body. Against the bare
// node:http cluster reading the same body (baseline-node-http-post-1k).
import { defineScenario } from '../lib/scenario.ts';
import { flexilibMissing, startFlexilib } from '../lib/servers/flexilib.ts';

export default defineScenario({
  id: 'flexilib-post-1k',
  title: 'flexilib, inline route, POST /echo 1 KiB',
  role: 'subject',
  conformance: 'identical',
  workload: 'post-1k',
  against: 'baseline-node-http-post-1k',
  unavailable: flexilibMissing,
  start: (ctx) => startFlexilib(ctx, { ini: '/ = LIB' }),
});
