/**
 * `[lambda.NAME]` sections of proxy.ini: an AWS Lambda function that routes
 * whose value is `lambda:NAME` invoke (docs/faas.md).
 *
 *   [lambda.hello]
 *   bootstrap = fns/hello/bootstrap   ; custom runtime (provided.al2023 style)
 *   interpreter = bash                ; optional: run the bootstrap with it
 *   runtime = nodejs                  ; or: flexilib's Node runtime, with `code = FOLDER`
 *   handler = function.handler        ; _HANDLER
 *   event = v2                        ; v2 | v1 | raw
 *   timeout = 3s  memory = 128m  concurrency = 4  queue = 100  idle = 5m
 *   env.GREETING = hi
 *
 * config.ts collects the section's lines; this file turns them into a
 * LambdaSpec, reporting each bad value or unknown key with its line. The
 * supervisor's CreateFunction uses the same limits.
 */
import path from 'node:path';
import { parseSize } from '../size.js';
import { parseDuration } from '../duration.js';

/** How an HTTP request reaches the function and its result maps back. */
export type LambdaEvent = 'v2' | 'v1' | 'raw';
export const LAMBDA_EVENTS: readonly LambdaEvent[] = ['v2', 'v1', 'raw'];

export interface LambdaSpec {
  name: string;
  /** Line of the section header (0: created on the admin API). */
  line: number;
  /** `provided`: a custom runtime's bootstrap; `nodejs`: flexilib's Node runtime loading `code`. */
  runtime: 'provided' | 'nodejs';
  /** Absolute path of the bootstrap (provided). */
  bootstrap?: string;
  /** Program that runs the bootstrap (e.g. bash); unset: the bootstrap is executed itself. */
  interpreter?: string;
  /** LAMBDA_TASK_ROOT and the working directory: the bootstrap's folder, or `code`. */
  taskRoot: string;
  handler: string;
  event: LambdaEvent;
  timeoutMs: number;
  memoryMb: number;
  /** Environments on this host at most; invocations beyond wait in a queue of `queue`, then get 429. */
  concurrency: number;
  queue: number;
  /** An environment idle this long is stopped (scale to zero). */
  idleMs: number;
  env: Record<string, string>;
}

/** Lambda's limits: 1-900 s, 128-10240 MB. */
export const LAMBDA_MAX_TIMEOUT_MS = 900_000;
export const LAMBDA_MIN_MEMORY_MB = 128;
export const LAMBDA_MAX_MEMORY_MB = 10_240;
const MAX_CONCURRENCY = 256;
const MAX_QUEUE = 100_000;

export const DEFAULT_LAMBDA = { timeoutMs: 3000, memoryMb: 128, concurrency: 4, queue: 100, idleMs: 300_000, event: 'v2' as LambdaEvent };

/** AWS's function name rule (letters, digits, hyphens, underscores; 1-64). */
export const LAMBDA_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const ENV_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
/** Variables Lambda reserves; a function may not set them. */
export const RESERVED_ENV = new Set(['_HANDLER', 'AWS_REGION', 'AWS_EXECUTION_ENV', 'AWS_LAMBDA_FUNCTION_NAME', 'AWS_LAMBDA_FUNCTION_MEMORY_SIZE', 'AWS_LAMBDA_FUNCTION_VERSION', 'AWS_LAMBDA_LOG_GROUP_NAME', 'AWS_LAMBDA_LOG_STREAM_NAME', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_LAMBDA_RUNTIME_API', 'LAMBDA_TASK_ROOT', 'LAMBDA_RUNTIME_DIR']);

export interface LambdaSection {
  name: string;
  line: number;
  entries: Array<[string, string, number]>;
}

const KNOWN = 'bootstrap, interpreter, runtime, code, handler, event, timeout, memory, concurrency, queue, idle, env.NAME';

/** Parse a timeout (1 ms to 900 s); a string naming the problem when bad. */
export function parseLambdaTimeout(v: string): number | string {
  const ms = parseDuration(v);
  if (ms === undefined || ms < 1 || ms > LAMBDA_MAX_TIMEOUT_MS) return `timeout = "${v}": expected a duration from 1ms to 900s, such as 3s`;
  return ms;
}

/** Parse a memory size into MB (128 MB to 10240 MB, Lambda's range); a string naming the problem when bad. */
export function parseLambdaMemory(v: string): number | string {
  const bytes = /^\d+$/.test(v.trim()) ? Number(v) * 1024 * 1024 : parseSize(v);
  const mb = bytes === undefined ? NaN : bytes / (1024 * 1024);
  if (!Number.isInteger(mb) || mb < LAMBDA_MIN_MEMORY_MB || mb > LAMBDA_MAX_MEMORY_MB) return `memory = "${v}": expected a size from 128m to 10240m (a plain number is MB)`;
  return mb;
}

export function parseLambdaSection(s: LambdaSection, baseDir: string, problem: (line: number, message: string) => void): LambdaSpec | undefined {
  const spec: LambdaSpec = { name: s.name, line: s.line, runtime: 'provided', taskRoot: '', handler: '', env: {}, ...DEFAULT_LAMBDA };
  let runtimeLine = 0;
  let code: string | undefined;
  let handlerLine = 0;
  let bad = false;
  const fail = (line: number, message: string) => {
    bad = true;
    problem(line, message);
  };
  for (const [k, v, line] of s.entries) {
    if (k === 'bootstrap') spec.bootstrap = path.resolve(baseDir, v);
    else if (k === 'interpreter') {
      if (v === '') fail(line, 'interpreter = "": expected a program such as bash');
      else spec.interpreter = v;
    } else if (k === 'runtime') {
      runtimeLine = line;
      if (v !== 'nodejs' && v !== 'provided') fail(line, `runtime = "${v}": expected nodejs (flexilib's Node runtime) or provided (a bootstrap)`);
      else spec.runtime = v;
    } else if (k === 'code') code = path.resolve(baseDir, v);
    else if (k === 'handler') {
      handlerLine = line;
      spec.handler = v;
    }
    else if (k === 'event') {
      if (!(LAMBDA_EVENTS as readonly string[]).includes(v)) fail(line, `event = "${v}": expected ${LAMBDA_EVENTS.join(', ')}`);
      else spec.event = v as LambdaEvent;
    } else if (k === 'timeout') {
      const r = parseLambdaTimeout(v);
      if (typeof r === 'string') fail(line, r);
      else spec.timeoutMs = r;
    } else if (k === 'memory') {
      const r = parseLambdaMemory(v);
      if (typeof r === 'string') fail(line, r);
      else spec.memoryMb = r;
    } else if (k === 'concurrency' || k === 'queue') {
      const n = Number(v);
      const max = k === 'queue' ? MAX_QUEUE : MAX_CONCURRENCY;
      const min = k === 'queue' ? 0 : 1;
      if (!Number.isInteger(n) || n < min || n > max) fail(line, `${k} = "${v}": expected an integer from ${min} to ${max}`);
      else spec[k] = n;
    } else if (k === 'idle') {
      const ms = parseDuration(v);
      if (ms === undefined) fail(line, `idle = "${v}": expected a duration such as 30s or 5m`);
      else spec.idleMs = ms;
    } else if (k.startsWith('env.')) {
      const name = k.slice(4);
      if (!ENV_NAME.test(name)) fail(line, `${k}: an environment variable name is a letter then letters, digits and "_"`);
      else if (RESERVED_ENV.has(name)) fail(line, `${k}: ${name} is reserved by Lambda and set by flexilib`);
      else spec.env[name] = v;
    } else fail(line, `unknown [lambda.${s.name}] key "${k}" (known: ${KNOWN})`);
  }
  if (spec.runtime === 'nodejs') {
    if (spec.bootstrap) fail(s.line, `[lambda.${s.name}]: runtime = nodejs takes code = FOLDER, not bootstrap`);
    if (!code) fail(runtimeLine || s.line, `[lambda.${s.name}]: runtime = nodejs needs code = FOLDER (the folder holding the handler's module)`);
    spec.taskRoot = code ?? '';
  } else {
    if (code) fail(s.line, `[lambda.${s.name}]: code = applies to runtime = nodejs; a custom runtime names its bootstrap = FILE`);
    if (!spec.bootstrap) fail(s.line, `[lambda.${s.name}]: needs bootstrap = FILE (a custom runtime) or runtime = nodejs with code = FOLDER`);
    spec.taskRoot = spec.bootstrap ? path.dirname(spec.bootstrap) : '';
  }
  if (spec.handler === '' && spec.runtime === 'nodejs') fail(s.line, `[lambda.${s.name}]: runtime = nodejs needs handler = FILE.EXPORT, such as index.handler`);
  if (spec.runtime === 'nodejs' && spec.handler !== '' && !/^[^.]+(\.[^.]+)+$/.test(spec.handler)) fail(handlerLine, `[lambda.${s.name}]: handler = "${spec.handler}": expected FILE.EXPORT, such as index.handler`);
  return bad ? undefined : spec;
}
