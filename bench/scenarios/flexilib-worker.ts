// A trivial Cloudflare Worker on a route of its own (docs/faas.md): every request
// goes from the flexilib worker to one of the Worker's workerd processes over a
// loopback keep-alive connection and back. It answers what the baseline answers;
// the body counts the client's headers, not the ones flexilib adds on the way
// as Cloudflare's edge would (cf-*, x-forwarded-*, forwarded; connection: the hop to workerd).
// instances = 4 per flexilib worker, one request at a time each (requests beyond
// wait for a free isolate); idle far beyond the run. The processes start on the
// first requests (cold starts) and undici's client code takes seconds of load to
// reach optimised tiers (see flexilib-upstream), so the scenario warms its own
// server for 5 s first.
// The workerd processes are children of the flexilib workers: RSS and CPU per
// request below count the flexilib processes only.
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { defineScenario } from '../lib/scenario.ts';
import { runWrk } from '../lib/wrk.ts';
import { flexilibMissing, startFlexilib } from '../lib/servers/flexilib.ts';

const WORKERD = 'packages/worker/node_modules/workerd/package.json';
const WORKER = `export default {
  fetch(request) {
    let n = 0;
    for (const [name] of request.headers) if (!name.startsWith('cf-') && !name.startsWith('x-forwarded-') && name !== 'forwarded' && name !== 'connection') n++;
    return new Response(' ' + n, { headers: { 'X-custom-foo': 'bar', 'content-type': 'text/plain' } });
  },
};
`;

export default defineScenario({
  id: 'flexilib-worker',
  title: 'flexilib, Cloudflare Worker route (workerd)',
  role: 'subject',
  conformance: 'same-content',
  unavailable: (root) => flexilibMissing(root) ?? (existsSync(path.join(root, WORKERD)) ? undefined : 'the npm package "workerd" is missing: run pnpm install'),
  async start(ctx) {
    // Beside the generated proxy.ini, named relative to it: no machine path in the recorded config.
    writeFileSync(path.join(ctx.tmp, 'trivial-worker.mjs'), WORKER);
    const server = await startFlexilib(ctx, { ini: `/ = worker:trivial\n\n[worker.trivial]\nmodule = trivial-worker.mjs\ninstances = 4\nidle = 10m`, flags: ['--no-access-log'] });
    await runWrk(server.port, { connections: 32, threads: 2, seconds: 5, delayMs: 0 }).catch(async (err: unknown) => {
      await server.stop();
      throw err;
    });
    return server;
  },
});
