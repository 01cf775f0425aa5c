// The floor of any Node.js server here: bare node:net sockets answering the
// baseline's bytes, prepared in advance, parsing only the end of each request
// head (bench/servers/node-net-floor.mjs). Not a server anyone could run; it
// measures what node's sockets alone cost, so the ceiling goal (inline GET
// against nginx return 200) can be read against what Node.js can reach at all.
import { defineScenario } from '../lib/scenario.ts';
import { startNodeHttpCluster } from '../lib/servers/node-http.ts';

export const NODE_NET_FLOOR_SERVER = 'bench/servers/node-net-floor.mjs';

export default defineScenario({
  id: 'node-net-floor',
  title: 'bare node:net cluster, fixed answer (the Node.js floor)',
  role: 'ceiling',
  conformance: 'identical',
  // Compared with nginx return 200 and the inline route under plain wrk.
  plainWrk: true,
  start: (ctx) => startNodeHttpCluster(ctx, NODE_NET_FLOOR_SERVER),
});
