/**
 * The flexilib command: resolve settings, validate the config, start the
 * supervisor. Usage errors exit 2; an invalid config exits 1 with every
 * problem listed as file:line. Subcommands (`flexilib invoke`,
 * `flexilib conformance`) live in their own files and are loaded only when named.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, FlexiError, loadConfig, type Config } from '@flexilib/contract';
import { createLogger } from '@flexilib/worker';
import { EXIT } from './errors.js';
import { HELP, resolveSettings, type Settings } from './settings.js';
import { Supervisor } from './supervisor.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function main(): void {
  let settings: Settings;
  try {
    settings = resolveSettings(process.argv.slice(2), process.env, Boolean(process.stdout.isTTY));
  } catch (err) {
    if (err instanceof FlexiError) {
      process.stderr.write(`flexilib: ${err.message}\n`);
      process.exit(err.exitCode);
    }
    throw err;
  }
  if (settings.help) {
    process.stdout.write(HELP);
    return;
  }
  if (settings.version) {
    process.stdout.write(`flexilib ${version()}\n`);
    return;
  }
  const log = createLogger({ level: settings.worker.logLevel, format: settings.worker.logFormat }, { role: 'supervisor' });
  let config: Config;
  try {
    config = loadConfig(settings.configFile);
  } catch (err) {
    const e = err as ConfigError;
    log.fatal({ code: e.code, problems: e instanceof ConfigError ? e.problems : undefined }, 'invalid config, not starting');
    process.stderr.write(`flexilib: ${e.message}\n`);
    process.exit(e instanceof FlexiError ? e.exitCode : EXIT.failure);
  }
  new Supervisor(settings, config, log).start().catch((err: NodeJS.ErrnoException) => {
    const what = err.code === 'EADDRINUSE' ? `admin port ${settings.admin.host}:${settings.admin.port} is already in use (--admin-port)` : err.message;
    log.fatal({ code: err.code }, what);
    process.stderr.write(`flexilib: ${what}\n`);
    process.exit(EXIT.failure);
  });
}

const SUBCOMMANDS: Record<string, () => Promise<(argv: string[]) => number | Promise<number>>> = {
  invoke: async () => {
    const { runInvoke } = await import('./invoke.js');
    return (argv) => runInvoke(argv, process.env, process.stdout, process.stderr);
  },
  conformance: async () => {
    const { runConformance } = await import('./conformance.js');
    return (argv) => runConformance(argv, process.stdout, process.stderr);
  },
};

const sub = SUBCOMMANDS[process.argv[2] ?? ''];
if (sub) process.exitCode = await (await sub())(process.argv.slice(3));
else main();
