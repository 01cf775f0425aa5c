// The baseline for POST with a body: the bare node:http cluster reading the
// whole 1 KiB body and answering what the C example answers on /echo
// ("POST /echo\n" and the body), same headers.
import { defineScenario } from '../lib/scenario.ts';
import { startNodeHttpCluster } from '../lib/servers/node-http.ts';

export default defineScenario({
  id: 'baseline-node-http-post-1k',
  title: 'bare node:http cluster, POST /echo 1 KiB',
  role: 'baseline',
  conformance: 'identical',
  workload: 'post-1k',
  start: (ctx) => startNodeHttpCluster(ctx, undefined, 'echo'),
});
