/**
 * Start the real flexilib command (packages/supervisor/dist/cli.js) on a
 * generated proxy.ini, bound to loopback on a port the kernel picks, and wait
 * for its "flexilib listening" line.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SETTING_ENV_VARS } from '../../../packages/supervisor/dist/settings/table.js';
import { nodeCommand, spawnToFile, waitForLine } from '../proc.ts';
import type { RunningServer, ScenarioContext } from '../scenario.ts';
import { runningServer } from './running.ts';

/** The C example plugin, relative to the repository root. */
export const EXAMPLE_PLUGIN = 'examples/c-plugin/build/libflexi_example.so';
export const FLEXILIB_CLI = 'packages/supervisor/dist/cli.js';

/**
 * Environment variables that would change a server's behaviour: every one
 * flexilib's settings table reads (so only the bench's flags decide), and node's own.
 */
export const SCRUBBED_ENV: readonly string[] = [...SETTING_ENV_VARS, 'NODE_OPTIONS'];

/** The server's environment: the harness's, less anything that would change the server's behaviour. */
export function serverEnv(ctx: ScenarioContext, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of SCRUBBED_ENV) delete env[k];
  return { ...env, ...ctx.env, ...extra };
}

export interface FlexilibOptions {
  /** proxy.ini text; the word LIB stands for the C example plugin, ROOT/ for the repository. */
  ini: string;
  flags?: string[];
  env?: NodeJS.ProcessEnv;
}

/** Why flexilib cannot be started from `root`, or undefined. */
export function flexilibMissing(root: string): string | undefined {
  for (const f of [FLEXILIB_CLI, EXAMPLE_PLUGIN]) {
    if (!existsSync(path.join(root, f))) return `${f} is missing: run pnpm build first`;
  }
  return undefined;
}

const helpCache = new Map<string, string>();
/** flexilib --help of the build under `root` (to detect flags that later issues add). */
export function flexilibHelp(root: string): string {
  let help = helpCache.get(root);
  if (help === undefined) {
    const r = spawnSync(process.execPath, [path.join(root, FLEXILIB_CLI), '--help'], { encoding: 'utf8' });
    help = r.stdout ?? '';
    helpCache.set(root, help);
  }
  return help;
}

/** Whether this build's flexilib has `flag` (e.g. --no-metrics). */
export function flexilibHasFlag(root: string, flag: string): boolean {
  return new RegExp(`(^|\\s)${flag.replace(/[-]/g, '\\-')}(\\s|,|$)`, 'm').test(flexilibHelp(root));
}

export async function startFlexilib(ctx: ScenarioContext, opts: FlexilibOptions): Promise<RunningServer> {
  const missing = flexilibMissing(ctx.root);
  if (missing) throw new Error(missing);
  const iniFile = path.join(ctx.tmp, 'proxy.ini');
  writeFileSync(iniFile, opts.ini.replaceAll('LIB', path.join(ctx.root, EXAMPLE_PLUGIN)).replaceAll('ROOT/', `${ctx.root}/`) + '\n');
  // No spare worker: it is idle until a worker dies, and without it the process
  // tree holds exactly the workers the baseline cluster has (RSS per worker,
  // CPU per request compare like for like).
  const spare = flexilibHasFlag(ctx.root, '--spare-workers') ? ['--spare-workers', '0'] : [];
  const flags = ['--host', '127.0.0.1', '--port', '0', '--admin-port', '0', '--workers', String(ctx.workers), '--log-format', 'json', ...spare, ...(opts.flags ?? [])];
  const p = spawnToFile(...nodeCommand(ctx, [path.join(ctx.root, FLEXILIB_CLI), '--config', iniFile, ...flags]), {
    logFile: path.join(ctx.tmp, 'server.log'),
    // Anything a server writes to its working folder (V8 logs, say) goes with the temp folder.
    cwd: ctx.tmp,
    env: serverEnv(ctx, opts.env),
  });
  const port = await waitForLine(
    p,
    (line) => {
      if (!line.includes('"flexilib listening"')) return undefined;
      return (JSON.parse(line) as { port: number }).port;
    },
    'flexilib',
    ctx.startTimeoutMs,
  );
  const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v} `).join('');
  const config = `${env}flexilib ${flags.join(' ')}\nproxy.ini:\n${opts.ini.replaceAll('LIB', EXAMPLE_PLUGIN).replaceAll('ROOT/', '')}`;
  return runningServer(p, port, config);
}
