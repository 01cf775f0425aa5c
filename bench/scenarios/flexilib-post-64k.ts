// A native inline route reading a request body: POST /echo with 64 KiB, which
// the C example answers with "POST /echo\n" and the body. Against the bare
// node:http cluster reading the same body (baseline-node-http-post-64k).
import { defineScenario } from '../lib/scenario.ts';
import { flexilibMissing, startFlexilib } from '../lib/servers/flexilib.ts';

export default defineScenario({
  id: 'flexilib-post-64k',
  title: 'flexilib, inline route, POST /echo 64 KiB',
  role: 'subject',
  conformance: 'identical',
  workload: 'post-64k',
  against: 'baseline-node-http-post-64k',
  unavailable: flexilibMissing,
  start: (ctx) => startFlexilib(ctx, { ini: '/ = LIB' }),
});
