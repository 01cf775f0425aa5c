// flexilib's upstream route: every request proxied over the lean origin
// client's keep-alive connections to one origin (nginx `return 200`, the
// ceiling's answer), access log off as nginx's. Compare with nginx-proxy-pass
// (same origin, same workers; goal 0.75x) and node-net-proxy-floor (what
// Node.js sockets alone cost for a proxy).
//
// The proxy path takes several seconds of load to reach optimised JIT tiers
// on two busy cores, longer than the harness's common warm-up, so the
// scenario warms its own server for 5 s before handing it over.
import { defineScenario } from '../lib/scenario.ts';
import { runWrk } from '../lib/wrk.ts';
import { flexilibMissing, startFlexilib } from '../lib/servers/flexilib.ts';
import { originUnavailable, withOriginStarted } from '../lib/servers/upstream-origin.ts';

export default defineScenario({
  id: 'flexilib-upstream',
  title: 'flexilib, upstream route (proxy to nginx origin)',
  role: 'subject',
  conformance: 'same-content',
  unavailable: (root) => flexilibMissing(root) ?? originUnavailable(),
  start: (ctx) =>
    withOriginStarted(ctx, async (originPort) => {
      const proxy = await startFlexilib(ctx, {
        ini: `/ = upstream:origin\n\n[upstream.origin]\nservers = http://127.0.0.1:${originPort}\nhealth_interval = 30s`,
        flags: ['--no-access-log'],
      });
      await runWrk(proxy.port, { connections: 32, threads: 2, seconds: 5, delayMs: 0 }).catch(async (err: unknown) => {
        await proxy.stop();
        throw err;
      });
      return proxy;
    }),
});
