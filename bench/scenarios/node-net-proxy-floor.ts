// The floor of any Node.js proxy here: bare node:net sockets forwarding bytes
// between each client connection and its own connection to the same origin
// as the upstream scenarios (bench/servers/node-net-proxy-floor.mjs). Not a
// proxy anyone could run (no HTTP at all); it measures what two node sockets
// per request cost, so the upstream goal (against nginx proxy_pass) can be
// read against what Node.js can reach at all.
import { defineScenario } from '../lib/scenario.ts';
import { startNodeHttpCluster } from '../lib/servers/node-http.ts';
import { originUnavailable, withOriginStarted } from '../lib/servers/upstream-origin.ts';

export const NODE_NET_PROXY_FLOOR_SERVER = 'bench/servers/node-net-proxy-floor.mjs';

export default defineScenario({
  id: 'node-net-proxy-floor',
  title: 'bare node:net cluster forwarding bytes to the origin (the Node.js proxy floor)',
  role: 'ceiling',
  conformance: 'same-content',
  unavailable: originUnavailable,
  start: (ctx) =>
    withOriginStarted(ctx, (originPort) => startNodeHttpCluster(ctx, NODE_NET_PROXY_FLOOR_SERVER, 'count', { BENCH_ORIGIN_PORT: String(originPort) })),
});
