/**
 * `flexilib invoke LIB ...`: load a plugin and call handle_request once,
 * without a server, through the worker's own loader, call slot and response
 * rules, so what it prints is what the server would answer. For a plugin
 * author's edit–build–try loop and CI:
 *
 *   $ flexilib invoke build/libmine.so --path /echo -d hello
 *   HTTP/1.1 200 OK
 *   content-type: text/plain
 *   content-length: 17
 *
 *   POST /echo
 *   hello
 */
import { readFileSync } from 'node:fs';
import { STATUS_CODES, validateHeaderName, validateHeaderValue } from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { FlexiError, type PluginAbi } from '@flexilib/contract';
import { Library, MAX_HEADERS, Slot, applyResponseRules, checkFinalStatus, type RequestLike } from '@flexilib/worker';
import { EXIT } from './errors.js';
import { optionHelp, SUBCOMMAND_COLUMNS } from './settings/help.js';
import { ABI } from './settings/plugin-flags.js';
import { optionsOf, valuesOf } from './settings/read.js';
import { SETTINGS } from './settings/table.js';

/** The server's definitions of the flags invoke shares with it, and --abi shared with conformance. */
const SHARED = { arenaBytes: SETTINGS.arenaBytes, abi: ABI, help: SETTINGS.help };

export const INVOKE_HELP = `Usage: flexilib invoke LIB [options]

Loads the plugin LIB, calls handle_request once without a server, and prints
the response as the server would send it: status line, headers, blank line, body.

Options:
  -X, --method M        request method                 [default GET, POST with --data]
      --path P          request target, path and query [default /]
  -H, --header 'N: V'   a request header (repeatable); the plugin sees exactly
                        these, plus content-length when --data is given
  -d, --data D          request body; @FILE reads FILE, @- reads stdin
${optionHelp(SHARED.arenaBytes, SUBCOMMAND_COLUMNS)}
${optionHelp(SHARED.abi, SUBCOMMAND_COLUMNS)}
${optionHelp(SHARED.help, SUBCOMMAND_COLUMNS)}

Exit status: 0 for a response below 500; 1 when the library does not load,
handle_request returns nonzero, the response is invalid or its status is 5xx;
2 for a bad flag.
`;

interface InvokeArgs {
  library: string;
  method: string;
  path: string;
  headers: string[];
  body: Buffer | null;
  arenaBytes: number;
  /** The interface forced by --abi; undefined detects it. */
  abi?: PluginAbi;
  help: boolean;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Parse invoke's argv (after "invoke"). Throws FlexiError FLX_USAGE (exit 2) naming the bad flag. */
export function parseInvokeArgs(argv: string[], env: NodeJS.ProcessEnv): InvokeArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        method: { type: 'string', short: 'X' },
        path: { type: 'string' },
        header: { type: 'string', short: 'H', multiple: true },
        data: { type: 'string', short: 'd' },
        ...optionsOf(SHARED),
      },
    });
  } catch (err) {
    throw new FlexiError('FLX_USAGE', `invoke: ${(err as Error).message} (see flexilib invoke --help)`);
  }
  const v = parsed.values;
  const help = (v as { help?: boolean }).help ?? false;
  if (help) return { library: '', method: '', path: '', headers: [], body: null, arenaBytes: 0, help };
  if (parsed.positionals.length !== 1) {
    throw new FlexiError('FLX_USAGE', `invoke: expected one library path, got ${parsed.positionals.length === 0 ? 'none' : parsed.positionals.join(' ')} (see flexilib invoke --help)`);
  }
  const method = v.method ?? (v.data !== undefined ? 'POST' : 'GET');
  if (!TOKEN.test(method)) throw new FlexiError('FLX_USAGE', `invoke: --method "${method}" is not an HTTP method token`);
  const target = v.path ?? '/';
  if (!target.startsWith('/') && target !== '*' || /[\s\x00-\x1f\x7f]/.test(target)) {
    throw new FlexiError('FLX_USAGE', `invoke: --path "${target}" must start with "/" and hold no spaces or control characters`);
  }
  const headers: string[] = [];
  for (const h of v.header ?? []) {
    const colon = h.indexOf(':');
    const name = colon < 0 ? '' : h.slice(0, colon).trim();
    const value = colon < 0 ? '' : h.slice(colon + 1).trim();
    if (!TOKEN.test(name) || /[\x00-\x08\x0a-\x1f\x7f]/.test(value)) {
      throw new FlexiError('FLX_USAGE', `invoke: --header "${h}" is not "Name: value" with a valid header name and value`);
    }
    headers.push(name, value);
  }
  let body: Buffer | null = null;
  if (v.data !== undefined) {
    if (v.data.startsWith('@')) {
      const file = v.data.slice(1);
      try {
        body = readFileSync(file === '-' ? 0 : file);
      } catch (err) {
        throw new FlexiError('FLX_USAGE', `invoke: --data ${v.data}: cannot read ${file === '-' ? 'stdin' : file}: ${(err as Error).message}`);
      }
    } else {
      body = Buffer.from(v.data);
    }
    if (!headers.some((x, i) => i % 2 === 0 && x.toLowerCase() === 'content-length')) headers.push('content-length', String(body.length));
  }
  const { arenaBytes, abi } = valuesOf(SHARED, v, env, 'invoke');
  return { library: parsed.positionals[0], method, path: target, headers, body, arenaBytes, abi, help };
}

/** Run `flexilib invoke`; resolves to the exit code. Output goes to the given streams. */
export function runInvoke(argv: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream, err: NodeJS.WritableStream): number {
  let args: InvokeArgs;
  try {
    args = parseInvokeArgs(argv, env);
  } catch (e) {
    if (!(e instanceof FlexiError)) throw e;
    err.write(`flexilib ${e.message}\n`);
    return e.exitCode;
  }
  if (args.help) {
    out.write(INVOKE_HELP);
    return EXIT.ok;
  }

  const library = new Library(path.resolve(args.library), undefined, args.abi);
  let version;
  try {
    version = library.load();
  } catch (e) {
    if (!(e instanceof FlexiError)) throw e;
    err.write(`flexilib invoke: ${e.code}: ${e.message}\n`);
    return EXIT.failure;
  }
  const headerBytes = args.headers.reduce((n, s) => n + s.length, 0) + args.method.length + args.path.length;
  const slot = new Slot(args.arenaBytes, Math.max(16 * 1024, headerBytes));
  try {
    const req: RequestLike = {
      method: args.method,
      url: args.path,
      rawHeaders: args.headers,
      httpVersionMajor: 1,
      httpVersionMinor: 1,
      socket: { remoteAddress: '127.0.0.1', remotePort: 0 },
    };
    if (!slot.fillRequest(req, args.body)) {
      err.write(`flexilib invoke: the request has more than the ${MAX_HEADERS} headers a call can carry\n`);
      return EXIT.usage;
    }
    slot.resetResponse();
    const rc = version.handleRequest(slot.req.ptr, slot.resp.ptr);
    const res = slot.readResponse();
    version.requestDeinit?.();
    applyResponseRules(res, rc);

    const problem = invalidResponse(res.status, res.headers);
    if (problem) {
      err.write(`flexilib invoke: ${args.library} produced an invalid response (the server answers 502): ${problem}\n`);
      return EXIT.failure;
    }
    let head = `HTTP/1.1 ${res.status} ${res.reason ?? STATUS_CODES[res.status] ?? ''}\n`;
    for (let i = 0; i < res.headers.length; i += 2) head += `${res.headers[i]}: ${res.headers[i + 1]}\n`;
    out.write(`${head}\n`);
    out.write(typeof res.body === 'string' ? Buffer.from(res.body, 'latin1') : res.body);
    if (rc !== 0) {
      err.write(`flexilib invoke: handle_request returned ${rc} (status ${res.status})\n`);
      return EXIT.failure;
    }
    if (res.status >= 500) {
      err.write(`flexilib invoke: status ${res.status}\n`);
      return EXIT.failure;
    }
    return EXIT.ok;
  } finally {
    slot.close();
    library.close();
  }
}

/** What the server would refuse (a status outside 200-599, what node:http's writeHead refuses: it answers 502 then), or undefined. */
function invalidResponse(status: number, headers: string[]): string | undefined {
  try {
    checkFinalStatus(status);
  } catch (e) {
    return (e as Error).message;
  }
  for (let i = 0; i < headers.length; i += 2) {
    try {
      validateHeaderName(headers[i]);
      validateHeaderValue(headers[i], headers[i + 1]);
    } catch (e) {
      return (e as Error).message;
    }
  }
  return undefined;
}
