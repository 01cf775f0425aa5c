// flexilib's upstream route: every request proxied over undici keep-alive
// connections to one origin (nginx `return 200`, the ceiling's answer),
// access log off as nginx's. Compare with nginx-proxy-pass (same origin, same
// workers); the goal is at least half of nginx's requests/s.
import { defineScenario } from '../lib/scenario.ts';
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
      return withOrigin(proxy, origin);
    } catch (err) {
      await origin.stop();
      throw err;
    }
  },
});
