/**
 * The origin both proxy scenarios forward to: nginx answering `return 200`
 * with the ceiling's status, headers and body, one worker process, so the
 * two proxies (flexilib's upstream route, nginx's proxy_pass) differ in
 * nothing but themselves. Its processes are not counted as the server's.
 */
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { WRK_REQUEST_HEADERS } from '../probe.ts';
import type { RunningServer, ScenarioContext } from '../scenario.ts';
import { findNginx, startNginx } from './nginx.ts';

export function originUnavailable(): string | undefined {
  return findNginx() ? undefined : 'nginx not installed: the upstream scenarios use it as their origin (apt-get install -y nginx-light)';
}

/** Start the origin in its own folder under the scenario's temp folder. */
export async function startOrigin(ctx: ScenarioContext): Promise<RunningServer> {
  const tmp = path.join(ctx.tmp, 'origin');
  mkdirSync(tmp, { recursive: true });
  return startNginx({ ...ctx, tmp, workers: 1 }, ` ${WRK_REQUEST_HEADERS}`);
}

/** A server whose processes are the proxy's, and whose stop() also stops the origin. */
export function withOrigin(proxy: RunningServer, origin: RunningServer): RunningServer {
  return {
    port: proxy.port,
    config: `${proxy.config}\norigin: ${origin.config}`,
    processes: () => proxy.processes(),
    async stop() {
      await proxy.stop();
      await origin.stop();
    },
  };
}

/** Start the origin, then the proxy in front of it (given the origin's port); the origin stops if the proxy fails to start. */
export async function withOriginStarted(ctx: ScenarioContext, startProxy: (originPort: number) => Promise<RunningServer>): Promise<RunningServer> {
  const origin = await startOrigin(ctx);
  try {
    return withOrigin(await startProxy(origin.port), origin);
  } catch (err) {
    await origin.stop();
    throw err;
  }
}
