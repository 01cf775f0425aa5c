// flexilib's upstream route: every request proxied over undici keep-alive
// connections to one origin (nginx `return 200`, the ceiling's answer),
// access log off as nginx's. Compare with nginx-proxy-pass (same origin, same
// workers); the goal is at least half of nginx's requests/s.
//
// undici's client code is large and takes several seconds of load to reach
// optimised JIT tiers on two busy cores (measured: the first 3-6 s run at a
// third of steady-state speed), longer than the harness's common warm-up, so
// the scenario warms its own server for 5 s before handing it over.
import { defineScenario } from '../lib/scenario.ts';
import { runWrk } from '../lib/wrk.ts';
import { flexilibMissing, startFlexilib } from '../lib/servers/flexilib.ts';
import { originUnavailable, startOrigin, withOrigin } from '../lib/servers/upstream-origin.ts';

export default defineScenario({
  id: 'flexilib-upstream',
  title: 'flexilib, upstream route (proxy to nginx origin)',
  role: 'subject',
  conformance: 'same-content',
  unavailable: (root) => flexilibMissing(root) ?? originUnavailable(),
  async start(ctx) {
    const origin = await startOrigin(ctx);
    try {
      const proxy = await startFlexilib(ctx, {
        ini: `/ = upstream:origin\n\n[upstream.origin]\nservers = http://127.0.0.1:${origin.port}\nhealth_interval = 30s`,
        flags: ['--no-access-log'],
      });
      const server = withOrigin(proxy, origin);
      await runWrk(proxy.port, { connections: 32, threads: 2, seconds: 5, delayMs: 0 }).catch(async (err: unknown) => {
        await proxy.stop();
        throw err;
      });
      return server;
    } catch (err) {
      await origin.stop();
      throw err;
    }
  },
});
