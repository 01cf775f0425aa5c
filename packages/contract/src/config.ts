/**
 * proxy.ini: FlexiLib's ordered route list, plus optional sections.
 *
 *   # comment                       (# or ; at line start)
 *   /path-prefix = lib.so           first match wins, in file order
 *   Header-Name: value-prefix /path-prefix = lib.so
 *
 *   [route /slow]                   options for the route whose key is "/slow"
 *   mode = threaded                 inline (default) | threaded
 *   threads = 4                     concurrent calls of a threaded route
 *   max_body = 4m                   request body limit for the route
 *   timeout = 5s                    a threaded call past it answers 504 (default --hang-timeout)
 *   abi = flexilib                  a native route's interface: v1 (flexilib.h) or
 *                                   flexilib (FlexiLib's); unset: detected per load
 *
 *   /api = upstream:api             proxy to the origin pool [upstream.api]
 *   [upstream.api]                  servers, balance, health checks, timeouts:
 *   servers = http://127.0.0.1:9001 see upstream/upstream-config.ts
 *   /w = worker:shop                a Cloudflare Worker on workerd, [worker.shop]:
 *   [worker.shop]                   see cf-workers/worker-config.ts
 *   [route /svc]                    a route to a .wasm module also takes:
 *   timeout = 10s                   per-request time limit (504 beyond)
 *   memory = 64m                    linear memory cap
 *   instances = 4                   instances per worker process
 *   idle = 60s                      release an idle instance after (scale to zero)
 *   run = auto                      where calls run: loop (event loop), thread, auto
 *
 * We scan lines ourselves because routes are ordered, their keys hold ':' and
 * spaces, and every problem must be reported with its line; the `ini` package
 * (which keeps no line numbers and drops malformed lines silently) gives the
 * value semantics: quoting and inline comments are the ini package's own.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import ini from 'ini';
import { ConfigError, FlexiError, type ConfigProblem } from './errors.js';
import { parseUpstreamSection, POOL_NAME, type UpstreamSpec } from './upstream/upstream-config.js';
import { CF_WORKER_NAME, parseCfWorkerSection, type CfWorkerSpec } from './cf-workers/worker-config.js';
import { parseSize } from './size.js';
import { LAMBDA_NAME, parseLambdaSection, type LambdaSpec } from './lambda/lambda-config.js';
import { WASM_LIMIT_OPTIONS, parseWasmLimit, type WasmLimitOption, type WasmLimits } from './wasm/limits.js';

export type RouteMode = 'inline' | 'threaded';

/** The interface a native library is called through: flexilib's ABI v1 or FlexiLib's (native/flexilib-interface.ts). */
export type PluginAbi = 'v1' | 'flexilib';
export const PLUGIN_ABIS: readonly PluginAbi[] = ['v1', 'flexilib'];

/** What a route's value names: a native library, an upstream pool, a WASM module, a Lambda function or a Cloudflare Worker. */
export type TargetSpec =
  | { kind: 'native'; library: string; configured: string }
  | { kind: 'upstream'; pool: string; configured: string }
  | { kind: 'wasm'; module: string; configured: string }
  | { kind: 'lambda'; function: string; configured: string }
  | { kind: 'worker'; worker: string; configured: string };

export interface RouteOptions {
  mode: RouteMode;
  threads: number;
  /** Request body limit in bytes; undefined means the server-wide limit. */
  maxBodyBytes?: number;
  /** Native threaded routes: time a call may take (504 beyond); undefined means the worker's
   * call timeout (--hang-timeout). */
  timeoutMs?: number;
  /** Native routes only: the interface forced for the library (native/flexilib-interface.ts); undefined detects it. */
  abi?: PluginAbi;
  /** WASM routes only: limits set in the route's section (the rest are defaults). */
  wasm?: Partial<WasmLimits>;
}

export interface RouteSpec {
  /** The key as written in proxy.ini; also the route's name in logs and metrics. */
  key: string;
  line: number;
  pathPrefix: string;
  /** Header match: name lower-cased, value compared as a prefix. */
  header?: { name: string; valuePrefix: string };
  /** Match the prefix only as whole path segments: "/svc" takes /svc, /svc/, /svc/x and
   * /svc?q but not /svcx (registered WASM services; proxy.ini keys are plain prefixes). */
  segmentPrefix?: boolean;
  target: TargetSpec;
  options: RouteOptions;
}

export interface Config {
  file: string;
  routes: RouteSpec[];
  /** `[upstream.NAME]` pools, in file order. */
  upstreams: UpstreamSpec[];
  /** `[lambda.NAME]` functions, in file order (absent in configs made before them). */
  lambdas?: LambdaSpec[];
  /** `[worker.NAME]` Cloudflare Workers, in file order. */
  workers: CfWorkerSpec[];
}

export const DEFAULT_ROUTE_OPTIONS: RouteOptions = { mode: 'inline', threads: 4 };
const MAX_THREADS = 64;

export { parseSize };

function parseTarget(value: string, baseDir: string): TargetSpec {
  if (value.startsWith('upstream:')) return { kind: 'upstream', pool: value.slice(9).trim(), configured: value };
  if (value.startsWith('lambda:')) return { kind: 'lambda', function: value.slice(7).trim(), configured: value };
  if (value.startsWith('worker:')) return { kind: 'worker', worker: value.slice(7).trim(), configured: value };
  const resolved = path.resolve(baseDir, value);
  if (value.endsWith('.wasm')) return { kind: 'wasm', module: resolved, configured: value };
  return { kind: 'native', library: resolved, configured: value };
}

type Problem = (line: number, message: string) => void;
type Entries = Array<[key: string, value: string, line: number]>;

/** A `[KIND.NAME]` section's lines, handed to its kind's own parser. The upstream, lambda and
 * worker section types share this shape. */
interface NamedSection {
  name: string;
  line: number;
  entries: Entries;
}

/** One kind of `[KIND.NAME]` section: its header prefix, what a valid name is, and its sections so far. */
interface NamedSectionKind {
  prefix: string;
  pattern: RegExp;
  /** Completes "[HEADER]: " when the name does not match `pattern`. */
  nameRule: string;
  sections: NamedSection[];
}

/** `[route KEY]` options, applied once every route line has been read (a section may precede nothing). */
interface RouteOptionsSection {
  key: string;
  line: number;
  entries: Entries;
}

/** What the line scan collects: routes in file order, route option sections and named sections. */
interface ScannedLines {
  routes: RouteSpec[];
  byKey: Map<string, RouteSpec>;
  routeOptions: RouteOptionsSection[];
  upstream: NamedSectionKind;
  lambda: NamedSectionKind;
  worker: NamedSectionKind;
}

const SECTION_KINDS = 'expected [route PATH-KEY], [upstream.NAME], [lambda.NAME] or [worker.NAME]';

/** Parse proxy.ini text. Throws ConfigError listing every problem with its line. */
export function parseConfig(text: string, file: string): Config {
  const problems: ConfigProblem[] = [];
  const problem: Problem = (line, message) => problems.push({ file, line, message });
  const baseDir = path.dirname(path.resolve(file));

  const scanned = scanLines(text, baseDir, problem);
  const { routes } = scanned;
  applyRouteOptions(scanned.routeOptions, scanned.byKey, problem);
  sameAbiPerLibrary(routes, problem);
  const upstreams = scanned.upstream.sections.map((s) => parseUpstreamSection(s, problem));
  const lambdas = scanned.lambda.sections.flatMap((s) => parseLambdaSection(s, baseDir, problem) ?? []);
  const workers = scanned.worker.sections.flatMap((s) => parseCfWorkerSection(s, baseDir, problem) ?? []);
  checkRouteTargets(routes, scanned, problem);

  if (routes.length === 0 && problems.length === 0) problem(1, 'no routes defined');
  if (problems.length) throw new ConfigError(problems.sort((a, b) => a.line - b.line));
  return { file: path.resolve(file), routes, upstreams, ...(lambdas.length ? { lambdas } : {}), workers };
}

/** Read the file line by line: route lines become routes, section lines go to the section they follow. */
function scanLines(text: string, baseDir: string, problem: Problem): ScannedLines {
  const scanned: ScannedLines = {
    routes: [],
    byKey: new Map(),
    routeOptions: [],
    upstream: { prefix: 'upstream.', pattern: POOL_NAME, nameRule: 'a pool name is letters, digits, "_" and "-"', sections: [] },
    lambda: { prefix: 'lambda.', pattern: LAMBDA_NAME, nameRule: 'a function name is 1 to 64 letters, digits, "_" and "-"', sections: [] },
    worker: { prefix: 'worker.', pattern: CF_WORKER_NAME, nameRule: 'a worker name is letters, digits, "_" and "-"', sections: [] },
  };
  // The entries of the section being read; null before the first section header (route lines).
  let section: Entries | null = null;

  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i].trim();
    if (raw === '' || raw.startsWith('#') || raw.startsWith(';')) continue;

    if (raw.startsWith('[')) {
      section = openSection(raw, lineNo, scanned, problem);
      continue;
    }

    const eq = raw.indexOf('=');
    if (eq < 0) {
      problem(lineNo, `malformed line "${raw}": expected KEY = VALUE`);
      continue;
    }
    const key = raw.slice(0, eq).trim();
    const value = String(ini.unsafe(raw.slice(eq + 1).trim())).trim();
    if (key === '') {
      problem(lineNo, `malformed line "${raw}": the key before "=" is empty`);
      continue;
    }
    if (section) {
      // Section keys validate their own values (an empty `servers =` is a pool filled through the API).
      section.push([key, value, lineNo]);
      continue;
    }
    const route = parseRouteLine(key, value, lineNo, baseDir, scanned.byKey, problem);
    if (route) {
      scanned.routes.push(route);
      scanned.byKey.set(key, route);
    }
  }
  return scanned;
}

/** Start the section a `[...]` header opens and return where its lines go. A bad header still
 * opens a section (whose lines are dropped) so they are not read as routes. */
function openSection(raw: string, lineNo: number, scanned: ScannedLines, problem: Problem): Entries {
  const m = /^\[([^\]]*)\]$/.exec(raw);
  if (!m) {
    problem(lineNo, `malformed section header "${raw}": ${SECTION_KINDS}`);
    return [];
  }
  const name = m[1].trim();
  for (const kind of [scanned.upstream, scanned.lambda, scanned.worker]) {
    if (name.startsWith(kind.prefix)) return openNamedSection(kind, name, lineNo, problem);
  }
  const rm = /^route\s+(.+)$/.exec(name);
  if (!rm) {
    problem(lineNo, `unknown section [${name}]: ${SECTION_KINDS}`);
    return [];
  }
  const options: RouteOptionsSection = { key: rm[1].trim(), line: lineNo, entries: [] };
  scanned.routeOptions.push(options);
  return options.entries;
}

/** `[KIND.NAME]`: kept when the name is valid and new; otherwise reported, and its lines dropped. */
function openNamedSection(kind: NamedSectionKind, header: string, lineNo: number, problem: Problem): Entries {
  const name = header.slice(kind.prefix.length);
  const valid = kind.pattern.test(name);
  const previous = kind.sections.find((s) => s.name === name);
  if (!valid) problem(lineNo, `[${header}]: ${kind.nameRule}`);
  else if (previous) problem(lineNo, `[${header}] is defined twice (first at line ${previous.line})`);
  const s: NamedSection = { name, line: lineNo, entries: [] };
  if (valid && !previous) kind.sections.push(s);
  return s.entries;
}

/** A route line `[Header: value-prefix] /path-prefix = target`; undefined (reported) when it is not one. */
function parseRouteLine(key: string, value: string, lineNo: number, baseDir: string, byKey: Map<string, RouteSpec>, problem: Problem): RouteSpec | undefined {
  if (value === '') {
    problem(lineNo, `route "${key}" has no value: expected a library path after "="`);
    return undefined;
  }
  let pathPrefix = key;
  let header: RouteSpec['header'];
  const colon = key.indexOf(':');
  if (colon >= 0) {
    const name = key.slice(0, colon).trim();
    const parts = key.slice(colon + 1).trim().split(/\s+/).filter(Boolean);
    if (name === '' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || parts.length !== 2) {
      problem(lineNo, `malformed header route "${key}": expected "Header-Name: value-prefix /path-prefix"`);
      return undefined;
    }
    header = { name: name.toLowerCase(), valuePrefix: parts[0] };
    pathPrefix = parts[1];
  }
  if (!pathPrefix.startsWith('/')) {
    problem(lineNo, `route "${key}": the path prefix must start with "/"`);
    return undefined;
  }
  const previous = byKey.get(key);
  if (previous) {
    problem(lineNo, `duplicate route "${key}" (first defined at line ${previous.line}); it could never match`);
    return undefined;
  }
  const target = parseTarget(value, baseDir);
  const unnamed = unnamedTarget(target);
  if (unnamed) {
    problem(lineNo, `route "${key}": "${unnamed}:" needs a ${TARGET_NAME[unnamed]} name`);
    return undefined;
  }
  return { key, line: lineNo, pathPrefix, header, target, options: { ...DEFAULT_ROUTE_OPTIONS } };
}

/** What the name after each named target's prefix names. */
const TARGET_NAME = { upstream: 'pool', lambda: 'function', worker: 'worker' } as const;

/** The prefix of a `upstream:`, `lambda:` or `worker:` target written without a name. */
function unnamedTarget(t: TargetSpec): keyof typeof TARGET_NAME | undefined {
  if (t.kind === 'lambda' && t.function === '') return 'lambda';
  if (t.kind === 'upstream' && t.pool === '') return 'upstream';
  if (t.kind === 'worker' && t.worker === '') return 'worker';
  return undefined;
}

/** Apply each `[route KEY]` section to the route it names, in file order. */
function applyRouteOptions(sections: RouteOptionsSection[], byKey: Map<string, RouteSpec>, problem: Problem): void {
  for (const s of sections) {
    const route = byKey.get(s.key);
    if (!route) {
      problem(s.line, `[route ${s.key}] names no route defined above`);
      continue;
    }
    let timeoutLine = 0;
    for (const [k, v, lineNo] of s.entries) {
      if (applyRouteOption(route, k, v, lineNo, problem) && k === 'timeout') timeoutLine = lineNo;
    }
    if (timeoutLine && route.target.kind === 'native' && route.options.mode !== 'threaded') {
      problem(timeoutLine, `timeout applies to threaded native routes (mode = threaded): an inline call blocks its worker, which --hang-timeout kills`);
    }
  }
}

/** One `k = v` of a route's section; true when it was applied. */
function applyRouteOption(route: RouteSpec, k: string, v: string, lineNo: number, problem: Problem): boolean {
  const options = route.options;
  const fail = (message: string) => {
    problem(lineNo, message);
    return false;
  };
  if (k === 'mode') {
    if (v !== 'inline' && v !== 'threaded') return fail(`mode = "${v}": expected inline or threaded`);
    options.mode = v;
  } else if (k === 'threads') {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS) return fail(`threads = "${v}": expected an integer from 1 to ${MAX_THREADS}`);
    options.threads = n;
  } else if (k === 'max_body') {
    const n = parseSize(v);
    if (n === undefined) return fail(`max_body = "${v}": expected a size such as 1048576, 512k or 4m`);
    options.maxBodyBytes = n;
  } else if (k === 'timeout' && route.target.kind === 'native') {
    const r = parseWasmLimit('timeout', v);
    if ('error' in r) return fail(r.error);
    options.timeoutMs = r.value as number;
  } else if (k === 'abi') {
    if (route.target.kind !== 'native') return fail(`abi = "${v}": applies to routes to native libraries only, and "${route.key}" is a ${route.target.kind} route`);
    if (!(PLUGIN_ABIS as readonly string[]).includes(v)) return fail(`abi = "${v}": expected ${PLUGIN_ABIS.join(' or ')}`);
    options.abi = v as PluginAbi;
  } else if ((WASM_LIMIT_OPTIONS as readonly string[]).includes(k)) {
    if (route.target.kind !== 'wasm') return fail(`${k} = "${v}": applies to routes to .wasm modules only, and "${route.key}" is a ${route.target.kind} route`);
    const r = parseWasmLimit(k as WasmLimitOption, v);
    if ('error' in r) return fail(r.error);
    Object.assign((options.wasm ??= {}), { [r.key]: r.value });
  } else {
    return fail(`unknown route option "${k}" (known: mode, threads, max_body, timeout, abi; for .wasm routes also ${WASM_LIMIT_OPTIONS.join(', ')})`);
  }
  return true;
}

/** Every `upstream:`, `lambda:` and `worker:` route names a section that exists. */
function checkRouteTargets(routes: RouteSpec[], scanned: ScannedLines, problem: Problem): void {
  const defined = (kind: NamedSectionKind, name: string) => kind.sections.some((s) => s.name === name);
  for (const r of routes) {
    const t = r.target;
    if (t.kind === 'upstream' && !defined(scanned.upstream, t.pool)) {
      problem(r.line, `route "${r.key}": upstream pool "${t.pool}" is not defined (add an [upstream.${t.pool}] section)`);
    }
    if (t.kind === 'lambda' && !defined(scanned.lambda, t.function)) {
      problem(r.line, `route "${r.key}": lambda function "${t.function}" is not defined (add a [lambda.${t.function}] section)`);
    }
    if (t.kind === 'worker' && !defined(scanned.worker, t.worker)) {
      problem(r.line, `route "${r.key}": worker "${t.worker}" is not defined (add a [worker.${t.worker}] section)`);
    }
  }
}

/**
 * A library is loaded once for every route naming it, so its interface is one:
 * a route's `abi =` applies to every route to the same file, and two routes
 * forcing different ones are a problem.
 */
function sameAbiPerLibrary(routes: RouteSpec[], problem: Problem): void {
  const forced = new Map<string, RouteSpec>();
  for (const r of routes) {
    if (r.target.kind !== 'native' || r.options.abi === undefined) continue;
    const first = forced.get(r.target.library);
    if (!first) forced.set(r.target.library, r);
    else if (first.options.abi !== r.options.abi) {
      problem(r.line, `route "${r.key}": abi = ${r.options.abi} conflicts with abi = ${first.options.abi} of route "${first.key}" (line ${first.line}), which names the same library ${r.target.configured}`);
    }
  }
  for (const r of routes) {
    const abi = r.target.kind === 'native' ? forced.get(r.target.library)?.options.abi : undefined;
    if (abi) r.options.abi = abi;
  }
}

/** Read and parse a proxy.ini file. */
export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new FlexiError('FLX_CONFIG_READ', `cannot read config ${file}: ${(err as Error).message}`, { cause: err });
  }
  return parseConfig(text, file);
}
