// The inline route (defaults) held by 1,000 keep-alive connections: as fast
// as they go (throughput), then paced to the same offered rate as every
// other target's latency run, spread over the 1,000 (plan.ts). The issue's
// goal: no errors, p99 at most 20 ms, and the workers' RSS reported.
import { defineScenario } from '../lib/scenario.ts';
import { flexilibMissing, startFlexilib } from '../lib/servers/flexilib.ts';

export default defineScenario({
  id: 'flexilib-inline-c1000',
  title: 'flexilib, inline route, 1,000 connections',
  role: 'subject',
  conformance: 'identical',
  connections: 1000,
  against: 'baseline-node-http-c1000',
  unavailable: flexilibMissing,
  start: (ctx) => startFlexilib(ctx, { ini: '/ = LIB' }),
});
