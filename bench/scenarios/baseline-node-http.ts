// The baseline: a bare node:http cluster with the same worker count, answering
// the same bytes as the C example plugin (bench/servers/node-http-cluster.mjs).
import { defineScenario } from '../lib/scenario.ts';
import { startNodeHttpCluster } from '../lib/servers/node-http.ts';

export default defineScenario({
  id: 'baseline-node-http',
  title: 'bare node:http cluster',
  role: 'baseline',
  conformance: 'identical',
  // Also driven by plain wrk: the ceiling comparison (inline against nginx return 200).
  plainWrk: true,
  start: (ctx) => startNodeHttpCluster(ctx),
});
