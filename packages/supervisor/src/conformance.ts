/**
 * `flexilib conformance`: run a table of requests and expected responses
 * (JSON, see @flexilib/plugin-abi/conformance) against a plugin through a real
 * server started for the purpose, or against any running server with --url.
 *
 *   $ flexilib conformance build/libmine.so --cases my-cases.json
 *   ok 1 - counts the request headers
 *   not ok 2 - x-status sets the status
 *     # status: expected 404, got 200
 *   1 passed, 1 failed
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { exampleCasesFile, loadCases, runCases, startFlexilib, type ConformanceCase, type Flexilib, type ServerAddress } from '@flexilib/plugin-abi/conformance';
import { FlexiError, type PluginAbi } from '@flexilib/contract';
import { EXIT } from './errors.js';
import { optionHelp, SUBCOMMAND_COLUMNS } from './settings/help.js';
import { ABI } from './settings/plugin-flags.js';
import { optionsOf, valuesOf } from './settings/read.js';
import { SETTINGS } from './settings/table.js';

/** This command's own entry script: the server under test is the same build. */
const CLI = fileURLToPath(new URL('./cli.js', import.meta.url));

/** The definitions of the flags conformance shares with invoke and the server. */
const SHARED = { abi: ABI, help: SETTINGS.help };

export const CONFORMANCE_HELP = `Usage: flexilib conformance LIB [options]
       flexilib conformance --url http://HOST:PORT [options]

Runs a table of requests and expected responses against the plugin LIB, served
by a flexilib server started on a free loopback port with "/ = LIB" as its only
route; or, with --url, against a server that is already running.

Options:
      --cases FILE      the table (JSON; format in docs/plugins.md)  [default: the example plugins' table]
      --mode MODE       inline|threaded, the route mode for LIB        [default inline]
      --threads N       calls at once on a threaded route             [default 4]
${optionHelp(SHARED.abi, SUBCOMMAND_COLUMNS)}
      --url URL         test a running server instead of starting one
${optionHelp(SHARED.help, SUBCOMMAND_COLUMNS)}

Prints "ok N - name" or "not ok N - name" with every difference, then
"P passed, F failed". Exit status: 0 when every case passed, 1 otherwise,
2 for a bad flag or table.
`;

interface Target {
  library?: string;
  url?: ServerAddress;
  cases: ConformanceCase[];
  mode: 'inline' | 'threaded';
  threads: number;
  abi?: PluginAbi;
}

function parse(argv: string[]): Target | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        cases: { type: 'string' },
        mode: { type: 'string' },
        threads: { type: 'string' },
        url: { type: 'string' },
        ...optionsOf(SHARED),
      },
    });
  } catch (err) {
    throw new FlexiError('FLX_USAGE', `conformance: ${(err as Error).message} (see flexilib conformance --help)`);
  }
  const v = parsed.values;
  if ((v as { help?: boolean }).help) return 'help';
  const pos = parsed.positionals;
  if ((v.url === undefined) === (pos.length !== 1) || pos.length > 1) {
    throw new FlexiError('FLX_USAGE', 'conformance: give either one library path or --url (see flexilib conformance --help)');
  }
  let url: ServerAddress | undefined;
  if (v.url !== undefined) {
    let u: URL;
    try {
      u = new URL(v.url);
    } catch {
      throw new FlexiError('FLX_USAGE', `conformance: --url "${v.url}" is not a URL such as http://127.0.0.1:8069`);
    }
    if (u.protocol !== 'http:') throw new FlexiError('FLX_USAGE', `conformance: --url "${v.url}" must be http://`);
    url = { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 80) };
  }
  const mode = v.mode ?? 'inline';
  if (mode !== 'inline' && mode !== 'threaded') throw new FlexiError('FLX_USAGE', `conformance: --mode "${mode}" is not inline or threaded`);
  const threads = Number(v.threads ?? 4);
  if (!/^\d+$/.test(v.threads ?? '4') || threads < 1 || threads > 64) throw new FlexiError('FLX_USAGE', `conformance: --threads "${v.threads}" is not an integer from 1 to 64`);
  const { abi } = valuesOf(SHARED, v, {}, 'conformance');
  let cases: ConformanceCase[];
  try {
    cases = loadCases(v.cases ?? exampleCasesFile);
  } catch (err) {
    throw new FlexiError('FLX_USAGE', `conformance: ${(err as Error).message}`);
  }
  return { library: pos[0] === undefined ? undefined : path.resolve(pos[0]), url, cases, mode, threads, abi };
}

/** proxy.ini routing everything to `library`, with the route mode (and interface) asked for. */
export function singleRouteConfig(library: string, mode: 'inline' | 'threaded', threads: number, abi?: PluginAbi): string {
  const quoted = JSON.stringify(library);
  const options = `${mode === 'threaded' ? `mode = threaded\nthreads = ${threads}\n` : ''}${abi ? `abi = ${abi}\n` : ''}`;
  return `/ = ${quoted}\n${options ? `\n[route /]\n${options}` : ''}`;
}

/** Run `flexilib conformance`; resolves to the exit code. */
export async function runConformance(argv: string[], out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  let t: Target | 'help';
  try {
    t = parse(argv);
  } catch (e) {
    if (!(e instanceof FlexiError)) throw e;
    err.write(`flexilib ${e.message}\n`);
    return e.exitCode;
  }
  if (t === 'help') {
    out.write(CONFORMANCE_HELP);
    return EXIT.ok;
  }
  let server: Flexilib | undefined;
  let dir: string | undefined;
  let address = t.url;
  if (!address) {
    dir = mkdtempSync(path.join(os.tmpdir(), 'flexilib-conformance-'));
    const config = path.join(dir, 'proxy.ini');
    try {
      writeFileSync(config, singleRouteConfig(t.library!, t.mode, t.threads, t.abi));
      server = await startFlexilib({ bin: CLI, config, workers: 1, accessLog: false });
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      err.write(`flexilib conformance: ${(e as Error).message}\n`);
      return EXIT.failure;
    }
    address = { host: '127.0.0.1', port: server.port };
  }
  try {
    const results = await runCases(address, t.cases);
    let failed = 0;
    results.forEach((r, i) => {
      if (r.mismatches.length === 0) {
        out.write(`ok ${i + 1} - ${r.name}\n`);
      } else {
        failed++;
        out.write(`not ok ${i + 1} - ${r.name}\n${r.mismatches.map((m) => `  # ${m}\n`).join('')}`);
      }
    });
    out.write(`${results.length - failed} passed, ${failed} failed\n`);
    if (failed && server) {
      const errors = server.output().split('\n').filter((l) => /"level":(40|50|60)/.test(l));
      if (errors.length) err.write(`server warnings and errors:\n${errors.join('\n')}\n`);
    }
    return failed ? EXIT.failure : EXIT.ok;
  } finally {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}
