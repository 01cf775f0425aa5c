/**
 * One Lambda function on this host: its environments, the invocations queued
 * for them, and Lambda's limits and records.
 *
 * - Concurrency: at most `concurrency` environments; an invocation with none
 *   free waits in a queue of `queue` entries, beyond which it is throttled (429).
 * - One event at a time per environment; a fresh environment is started only
 *   when a queued invocation has none ready, starting or about to ask for work
 *   (cold start).
 * - Timeout: the invocation fails with "Task timed out after N.NN seconds" and
 *   its environment is killed; the next invocation gets a fresh one.
 * - Memory: the environment's process tree is sampled (environment.ts); above
 *   the function's memory it is killed and the invocation fails.
 * - Init error, or an environment that dies before it is ready: the oldest
 *   queued invocation fails with it (Lambda reports an init error on the
 *   invoke that caused the init); the next one starts another environment.
 * - Idle: an environment without work for `idle` is stopped (scale to zero).
 * - Hot reload: `replace()` marks every environment outdated; idle ones stop
 *   at once, busy ones when their invocation finishes, so no invocation fails.
 * - Logs: START, the runtime's lines, END and REPORT per invocation go to the
 *   function's log stream; Tail invocations get their last 4 KB.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import type { LambdaSpec } from '@flexilib/contract';
import { Environment, type EnvironmentEvents } from './environment.js';

export const ACCOUNT = '123456789012';
export const REGION = 'us-east-1';
const TAIL_BYTES = 4096;

export interface InvokeOptions {
  /** Collect the invocation's log (X-Amz-Log-Type: Tail). */
  tail?: boolean;
  clientContext?: string;
}

export interface InvokeResult {
  requestId: string;
  payload: Buffer;
  contentType: string;
  /** Set when the function failed: `Unhandled` (X-Amz-Function-Error). */
  functionError?: 'Unhandled';
  /** The last 4 KB of the invocation's log, when asked for. */
  log?: string;
}

/** The function cannot take the invocation now (429 TooManyRequestsException). */
export class Throttled extends Error {
  constructor(name: string) {
    super(`function ${name}: all environments are busy and the queue is full (Rate Exceeded.)`);
    this.name = 'TooManyRequestsException';
  }
}

interface Invocation {
  id: string;
  payload: Buffer;
  opts: InvokeOptions;
  resolve(r: InvokeResult): void;
  env?: Environment;
  startedAt: number;
  timer?: NodeJS.Timeout;
  lines: string[];
  /** Init Duration of a cold start, ms. */
  initMs?: number;
  done: boolean;
}

/** Where a function's log records go (one line each). */
export type LogSink = (fn: string, line: string) => void;

export class LambdaFunction {
  private readonly envs = new Set<Environment>();
  private readonly queue: Invocation[] = [];
  private readonly running = new Map<string, Invocation>();
  private readonly idleTimers = new Map<Environment, NodeJS.Timeout>();
  private version = 0;
  private stopped = false;
  private readonly logStream: string;

  constructor(
    public spec: LambdaSpec,
    private readonly runtimeScript: string,
    private readonly sink: LogSink,
    private readonly log: Logger,
  ) {
    const d = new Date();
    this.logStream = `${d.toISOString().slice(0, 10).replaceAll('-', '/')}/[$LATEST]${randomBytes(16).toString('hex')}`;
  }

  get arn(): string {
    return `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${this.spec.name}`;
  }

  /** Environments alive now (tests and the status of GetFunction). */
  get environments(): number {
    return this.envs.size;
  }

  invoke(payload: Buffer, opts: InvokeOptions = {}): Promise<InvokeResult> {
    if (this.stopped) return Promise.reject(new Error(`function ${this.spec.name} was removed`));
    const ready = this.readyEnv();
    if (!ready && this.queue.length >= this.spec.queue + this.spareCapacity()) return Promise.reject(new Throttled(this.spec.name));
    return new Promise((resolve) => {
      const inv: Invocation = { id: randomUUID(), payload, opts, resolve, startedAt: 0, lines: [], done: false };
      this.queue.push(inv);
      this.pump();
    });
  }

  /** New code or settings: environments are replaced once their invocation finishes. */
  replace(spec?: LambdaSpec): void {
    if (spec) this.spec = spec;
    this.version++;
    // A copy: stopping one pumps the queue, which may start new environments (of the new version).
    for (const env of [...this.envs]) if (env.busy === undefined) this.stopEnv(env);
    this.pump();
  }

  /** Stop every environment; queued invocations fail. */
  stop(): void {
    this.stopped = true;
    for (const inv of this.queue.splice(0)) this.fail(inv, 'Runtime.Unavailable', `the function ${this.spec.name} was removed`);
    for (const env of [...this.envs]) this.stopEnv(env);
  }

  /** Environments that could still start (their first invocations need no queue slot). */
  private spareCapacity(): number {
    return Math.max(0, this.spec.concurrency - this.envs.size);
  }

  private readyEnv(): Environment | undefined {
    for (const env of this.envs) if (env.ready && env.version === this.version) return env;
    return undefined;
  }

  private pump(): void {
    while (this.queue.length) {
      const env = this.readyEnv();
      if (!env) break;
      this.assign(this.queue.shift()!, env);
    }
    if (!this.queue.length || this.stopped) return;
    // Environments about to ask for work: starting ones, and those that just answered and
    // have not asked `next` yet (a few hundred microseconds): they take queued invocations
    // before a new environment would be ready, so they are not cold-started for.
    let coming = 0;
    for (const env of this.envs) if (!env.dead && env.busy === undefined && !env.ready && env.version === this.version) coming++;
    while (coming < this.queue.length && this.envs.size < this.spec.concurrency) {
      this.spawn();
      coming++;
    }
  }

  private assign(inv: Invocation, env: Environment): void {
    const idle = this.idleTimers.get(env);
    if (idle) {
      clearTimeout(idle);
      this.idleTimers.delete(env);
    }
    inv.env = env;
    inv.startedAt = performance.now();
    if (env.initMs !== undefined && !env.reported) {
      inv.initMs = env.initMs;
      env.reported = true;
    }
    this.running.set(inv.id, inv);
    this.record(inv, `START RequestId: ${inv.id} Version: $LATEST`);
    const timeoutMs = this.spec.timeoutMs;
    inv.timer = setTimeout(() => this.timedOut(inv), timeoutMs);
    env.assign({
      requestId: inv.id,
      payload: inv.payload,
      deadlineMs: Date.now() + timeoutMs,
      arn: this.arn,
      traceId: traceId(),
      clientContext: inv.opts.clientContext,
    });
  }

  private spawn(): void {
    const spec = this.spec;
    const env = new Environment(spec, this.version, this.events, this.command(spec), (e, mb) => this.overMemory(e, mb));
    this.envs.add(env);
    env.start().catch((err: Error) => {
      this.log.error({ code: 'FLX_LAMBDA_SPAWN', function: spec.name, err: err.message }, `function ${spec.name}: cannot start an environment: ${err.message}`);
      env.kill();
    });
  }

  private command(spec: LambdaSpec): { file: string; args: string[]; env: Record<string, string> } {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      LANG: 'en_US.UTF-8',
      TZ: ':UTC',
      LAMBDA_TASK_ROOT: spec.taskRoot,
      LAMBDA_RUNTIME_DIR: spec.runtime === 'nodejs' ? path.dirname(this.runtimeScript) : spec.taskRoot,
      _HANDLER: spec.handler,
      AWS_REGION: REGION,
      AWS_DEFAULT_REGION: REGION,
      AWS_EXECUTION_ENV: spec.runtime === 'nodejs' ? 'AWS_Lambda_nodejs20.x' : 'AWS_Lambda_provided.al2023',
      AWS_LAMBDA_FUNCTION_NAME: spec.name,
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(spec.memoryMb),
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${spec.name}`,
      AWS_LAMBDA_LOG_STREAM_NAME: this.logStream,
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      AWS_ACCESS_KEY_ID: 'AKIAFLEXILIBLOCAL000',
      AWS_SECRET_ACCESS_KEY: 'flexilib-local-secret-not-a-credential',
      AWS_SESSION_TOKEN: 'flexilib-local-session',
      ...spec.env,
    };
    if (spec.runtime === 'nodejs') return { file: process.execPath, args: [this.runtimeScript], env };
    if (spec.interpreter) return { file: spec.interpreter, args: [spec.bootstrap!], env };
    return { file: spec.bootstrap!, args: [], env };
  }

  private readonly events: EnvironmentEvents = {
    next: (env) => {
      env.flushed();
      if (env.busy !== undefined) return;
      if (env.version !== this.version) return this.stopEnv(env);
      this.pump();
      if (env.ready) this.armIdle(env);
    },
    response: (env, id, payload, contentType) => this.finish(env, id, { payload, contentType }),
    error: (env, id, payload, errorType) => {
      this.finish(env, id, { payload: payload.length ? payload : errorBody(errorType, 'the runtime reported an error without a body'), contentType: 'application/json', functionError: 'Unhandled' });
    },
    initError: (env, payload, errorType) => {
      const inv = this.queue.shift();
      this.log.error({ code: 'FLX_LAMBDA_INIT', function: this.spec.name, errorType }, `function ${this.spec.name}: init error ${errorType}: ${payload.toString('utf8', 0, 512)}`);
      this.sink(this.spec.name, `INIT_REPORT Init Duration: ${(performance.now() - env.spawnedAt).toFixed(2)} ms\tPhase: init\tStatus: error\tError Type: ${errorType}`);
      if (inv) this.complete(inv, { payload: payload.length ? payload : errorBody(errorType, 'init failed'), contentType: 'application/json', functionError: 'Unhandled' });
      this.stopEnv(env);
    },
    line: (env, line) => {
      const inv = env.busy ? this.running.get(env.busy) : undefined;
      if (inv) inv.lines.push(line);
      this.sink(this.spec.name, line);
    },
    exit: (env, how) => this.envGone(env, how),
  };

  private envGone(env: Environment, how: string): void {
    env.flushed();
    this.envs.delete(env);
    clearTimeout(this.idleTimers.get(env));
    this.idleTimers.delete(env);
    const inv = env.busy ? this.running.get(env.busy) : undefined;
    if (inv && !inv.done) {
      this.log.warn({ code: 'FLX_LAMBDA_EXIT', function: this.spec.name, requestId: inv.id, how }, `function ${this.spec.name}: the environment exited during invocation ${inv.id} (${how})`);
      this.fail(inv, 'Runtime.ExitError', `RequestId: ${inv.id} Error: Runtime exited with error: ${how}`);
    } else if (env.initMs === undefined && !env.retired && !this.stopped) {
      // Died before its first `next`: the invocation that caused the cold start gets the error.
      const first = this.queue.shift();
      this.log.warn({ code: 'FLX_LAMBDA_EXIT', function: this.spec.name, how }, `function ${this.spec.name}: the environment exited during init (${how})`);
      if (first) this.fail(first, 'Runtime.ExitError', `RequestId: ${first.id} Error: Runtime exited without providing a reason (${how})`);
    }
    if (!this.stopped) this.pump();
  }

  private finish(env: Environment, id: string, r: Omit<InvokeResult, 'requestId'>): void {
    const inv = this.running.get(id);
    if (!inv || inv.done) return;
    this.complete(inv, r);
    if (env.version !== this.version) this.stopEnv(env);
  }

  private timedOut(inv: Invocation): void {
    if (inv.done) return;
    const seconds = (this.spec.timeoutMs / 1000).toFixed(2);
    const message = `${new Date().toISOString()} ${inv.id} Task timed out after ${seconds} seconds`;
    this.log.warn({ code: 'FLX_LAMBDA_TIMEOUT', function: this.spec.name, requestId: inv.id }, `function ${this.spec.name}: ${message}`);
    const env = inv.env;
    this.record(inv, message);
    this.complete(inv, { payload: Buffer.from(JSON.stringify({ errorMessage: message })), contentType: 'application/json', functionError: 'Unhandled' });
    if (env) this.stopEnv(env);
  }

  private overMemory(env: Environment, mb: number): void {
    const inv = env.busy ? this.running.get(env.busy) : undefined;
    this.log.warn({ code: 'FLX_LAMBDA_MEMORY', function: this.spec.name, rssMb: Math.round(mb), limitMb: this.spec.memoryMb }, `function ${this.spec.name}: the environment uses ${Math.round(mb)} MB, above its ${this.spec.memoryMb} MB: killed`);
    if (inv && !inv.done) {
      env.maxRssMb = this.spec.memoryMb;
      this.record(inv, `Error: Runtime exited with error: signal: killed Runtime.OutOfMemory (${Math.round(mb)} MB used, ${this.spec.memoryMb} MB allowed)`);
      this.complete(inv, { payload: errorBody('Runtime.OutOfMemory', `RequestId: ${inv.id} Error: Runtime exited with error: signal: killed`), contentType: 'application/json', functionError: 'Unhandled' });
    }
    this.stopEnv(env);
  }

  private fail(inv: Invocation, errorType: string, message: string): void {
    this.complete(inv, { payload: errorBody(errorType, message), contentType: 'application/json', functionError: 'Unhandled' });
  }

  /** Settle an invocation: END and REPORT records, then its caller's result. */
  private complete(inv: Invocation, r: Omit<InvokeResult, 'requestId'>): void {
    if (inv.done) return;
    inv.done = true;
    clearTimeout(inv.timer);
    this.running.delete(inv.id);
    const env = inv.env;
    if (env && env.busy === inv.id) env.busy = undefined;
    if (!env) {
      // Failed before it ran (init error, removed function): no START was written.
      this.record(inv, `START RequestId: ${inv.id} Version: $LATEST`);
    }
    const settle = () => {
      const ms = env ? performance.now() - inv.startedAt : 0;
      this.record(inv, `END RequestId: ${inv.id}`);
      this.record(
        inv,
        `REPORT RequestId: ${inv.id}\tDuration: ${ms.toFixed(2)} ms\tBilled Duration: ${Math.max(1, Math.ceil(ms))} ms\tMemory Size: ${this.spec.memoryMb} MB\tMax Memory Used: ${Math.max(1, Math.round(env?.maxRssMb ?? 0))} MB` +
          (inv.initMs !== undefined ? `\tInit Duration: ${inv.initMs.toFixed(2)} ms` : '') +
          (r.functionError ? '\tStatus: error' : ''),
      );
      inv.resolve({ requestId: inv.id, ...r, ...(inv.opts.tail ? { log: tail(inv.lines) } : {}) });
    };
    // A runtime's last lines may still be in its pipe when its response arrives: a Tail
    // invocation is settled when the runtime asks for its next event (its lines were written
    // before that) or exits, or after 1 s (only Tail: the hot path answers at once).
    if (inv.opts.tail && env && !env.dead) {
      let once = false;
      const go = () => {
        if (once) return;
        once = true;
        clearTimeout(cap);
        setImmediate(settle);
      };
      const cap = setTimeout(go, 1000);
      env.afterWork = go;
    } else settle();
    if (env && !env.dead && env.version === this.version) queueMicrotask(() => this.pump());
  }

  private record(inv: Invocation, line: string): void {
    inv.lines.push(line);
    this.sink(this.spec.name, line);
  }

  private armIdle(env: Environment): void {
    clearTimeout(this.idleTimers.get(env));
    const t = setTimeout(() => {
      if (env.ready) this.stopEnv(env);
    }, this.spec.idleMs);
    t.unref();
    this.idleTimers.set(env, t);
  }

  private stopEnv(env: Environment): void {
    env.retired = true;
    env.kill();
  }
}

/** X-Ray's trace id shape; unique per invocation from a random process prefix and a counter
 * (no random bytes drawn per invocation: they showed in the host's profile). */
const TRACE_PREFIX = randomBytes(8).toString('hex');
let traceSeq = 0;
function traceId(): string {
  const n = (++traceSeq).toString(16).padStart(8, '0');
  return `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${TRACE_PREFIX}${n};Parent=${n}${TRACE_PREFIX.slice(0, 8)};Sampled=0`;
}

function errorBody(errorType: string, errorMessage: string): Buffer {
  return Buffer.from(JSON.stringify({ errorType, errorMessage }));
}

function tail(lines: string[]): string {
  const text = lines.join('\n') + '\n';
  const buf = Buffer.from(text);
  return buf.length <= TAIL_BYTES ? text : buf.subarray(buf.length - TAIL_BYTES).toString('utf8');
}
