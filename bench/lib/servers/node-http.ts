/** Start the baseline node:http cluster (bench/servers/node-http-cluster.mjs). */
import path from 'node:path';
import { nodeCommand, spawnToFile, waitForLine } from '../proc.ts';
import type { RunningServer, ScenarioContext } from '../scenario.ts';
import { serverEnv } from './flexilib.ts';
import { runningServer } from './running.ts';

export const BASELINE_SERVER = 'bench/servers/node-http-cluster.mjs';

/** What the baseline answers (node-http-cluster.mjs): the header count, or the echo of the request. */
export type BaselineHandler = 'count' | 'echo';

export async function startNodeHttpCluster(
  ctx: ScenarioContext,
  script = BASELINE_SERVER,
  handler: BaselineHandler = 'count',
  extraEnv: Record<string, string> = {},
): Promise<RunningServer> {
  const p = spawnToFile(...nodeCommand(ctx, [path.join(ctx.root, script)]), {
    logFile: path.join(ctx.tmp, 'server.log'),
    // Anything a server writes to its working folder (V8 logs, say) goes with the temp folder.
    cwd: ctx.tmp,
    env: serverEnv(ctx, { BENCH_WORKERS: String(ctx.workers), BENCH_HANDLER: handler, ...extraEnv }),
  });
  const port = await waitForLine(
    p,
    (line) => (line.includes('"listening"') ? (JSON.parse(line) as { port: number }).port : undefined),
    'node:http cluster',
    ctx.startTimeoutMs,
  );
  const env = Object.entries(extraEnv).map(([k, v]) => `${k}=${v} `).join('');
  return runningServer(p, port, `BENCH_WORKERS=${ctx.workers} BENCH_HANDLER=${handler} ${env}node ${script}`);
}
