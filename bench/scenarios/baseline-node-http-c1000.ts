// The baseline at 1,000 keep-alive connections: the bare node:http cluster
// answering wrk's GET, for flexilib-inline-c1000.
import { defineScenario } from '../lib/scenario.ts';
import { startNodeHttpCluster } from '../lib/servers/node-http.ts';

export default defineScenario({
  id: 'baseline-node-http-c1000',
  title: 'bare node:http cluster, 1,000 connections',
  role: 'baseline',
  conformance: 'identical',
  connections: 1000,
  start: (ctx) => startNodeHttpCluster(ctx),
});
