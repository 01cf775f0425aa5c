/**
 * One Lambda execution environment: a real process (the function's bootstrap,
 * or flexilib's Node runtime) and the Runtime API server it alone talks to.
 *
 * Each environment gets its own loopback port in AWS_LAMBDA_RUNTIME_API, so a
 * request on it needs no identification: the port says which environment
 * asks. The Runtime API is served as Lambda documents it:
 *
 *   GET  /2018-06-01/runtime/invocation/next          long poll; the event and its Lambda-Runtime-* headers
 *   POST /2018-06-01/runtime/invocation/{id}/response  202 (buffered or streamed with chunked encoding;
 *                                                      a streamed failure names itself in trailers)
 *   POST /2018-06-01/runtime/invocation/{id}/error     202
 *   POST /2018-06-01/runtime/init/error                202
 *
 * Payloads are raw bytes: whatever content type the runtime posts is kept.
 * The environment runs in its own process group so a kill takes its children
 * (curl, handlers' subprocesses) too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import type { LambdaSpec } from '@flexilib/contract';

const BASE = '/2018-06-01/runtime';
/** Lambda's synchronous response limit. */
export const MAX_RESPONSE_BYTES = 6 * 1024 * 1024;

/** What an environment reports to its function. */
export interface EnvironmentEvents {
  /** The runtime asked for work (its first ask ends init). */
  next(env: Environment): void;
  response(env: Environment, requestId: string, payload: Buffer, contentType: string): void;
  error(env: Environment, requestId: string, payload: Buffer, errorType: string): void;
  initError(env: Environment, payload: Buffer, errorType: string): void;
  /** A line the runtime wrote (stdout or stderr). */
  line(env: Environment, line: string): void;
  exit(env: Environment, how: string): void;
}

/** What the environment hands its runtime with an event. */
export interface Assignment {
  requestId: string;
  payload: Buffer;
  deadlineMs: number;
  arn: string;
  traceId: string;
  clientContext?: string;
}

let seq = 0;

export class Environment {
  readonly id = ++seq;
  private readonly server: http.Server;
  private proc: ChildProcess | undefined;
  /** The pending `next` long poll, when the runtime waits for work. */
  private waiting: ServerResponse | undefined;
  readonly spawnedAt = performance.now();
  /** Milliseconds from spawn to the runtime's first `next`; set once. */
  initMs: number | undefined;
  /** The invocation the runtime works on (set by the function). */
  busy: string | undefined;
  dead = false;
  /** Stopped on purpose (idle, replaced, timeout): its exit is no error of its own. */
  retired = false;
  /** Its Init Duration went into a REPORT already. */
  reported = false;
  /** Called once when the runtime next asks for work or exits (a Tail invocation waits for its lines). */
  afterWork: (() => void) | undefined;
  /** Largest resident set seen of the process tree, MB. */
  maxRssMb = 0;
  private rssTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly spec: LambdaSpec,
    /** The code version it runs (hot reload replaces older ones). */
    readonly version: number,
    private readonly events: EnvironmentEvents,
    private readonly command: { file: string; args: string[]; env: Record<string, string> },
    /** Memory beyond which the environment is killed (spec.memoryMb unless testing). */
    private readonly onOverMemory: (env: Environment, rssMb: number) => void,
  ) {
    this.server = http.createServer((req, res) => this.serve(req, res));
    this.server.requestTimeout = 0;
    this.server.keepAliveTimeout = 0;
    this.server.timeout = 0;
  }

  flushed(): void {
    const f = this.afterWork;
    this.afterWork = undefined;
    f?.();
  }

  get ready(): boolean {
    return this.waiting !== undefined && this.busy === undefined && !this.dead;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Listen on a loopback port and start the runtime process. */
  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
    });
    if (this.dead) return this.closeServer();
    const port = (this.server.address() as { port: number }).port;
    const proc = spawn(this.command.file, this.command.args, {
      cwd: this.spec.taskRoot,
      env: { ...this.command.env, AWS_LAMBDA_RUNTIME_API: `127.0.0.1:${port}` },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.proc = proc;
    proc.on('error', (err) => this.died(`spawn failed: ${err.message}`));
    proc.on('exit', (code, signal) => this.died(signal ? `signal: ${signal === 'SIGKILL' ? 'killed' : signal}` : `exit status ${code}`));
    splitLines(proc.stdout!, (l) => this.events.line(this, l));
    splitLines(proc.stderr!, (l) => this.events.line(this, l));
    // Sampled while initialising or busy (an idle runtime allocates nothing): 10 times a second.
    this.rssTimer = setInterval(() => this.sampleMemory(), 100);
    this.rssTimer.unref();
  }

  /** Hand an event to the runtime waiting in `next`. */
  assign(a: Assignment): void {
    const res = this.waiting!;
    this.waiting = undefined;
    this.busy = a.requestId;
    const headers: Record<string, string | number> = {
      'content-type': 'application/json',
      'content-length': a.payload.length,
      'lambda-runtime-aws-request-id': a.requestId,
      'lambda-runtime-deadline-ms': a.deadlineMs,
      'lambda-runtime-invoked-function-arn': a.arn,
      'lambda-runtime-trace-id': a.traceId,
    };
    if (a.clientContext) headers['lambda-runtime-client-context'] = a.clientContext;
    res.writeHead(200, headers);
    res.end(a.payload);
  }

  /** Kill the process tree and close the Runtime API. */
  kill(): void {
    if (this.proc?.pid !== undefined && this.proc.exitCode === null && this.proc.signalCode === null) {
      try {
        process.kill(-this.proc.pid, 'SIGKILL');
      } catch {
        this.proc.kill('SIGKILL');
      }
    }
    this.died('signal: killed');
  }

  private died(how: string): void {
    if (this.dead) return;
    this.dead = true;
    clearInterval(this.rssTimer);
    this.closeServer();
    this.events.exit(this, how);
  }

  private closeServer(): void {
    this.waiting = undefined;
    this.server.close();
    this.server.closeAllConnections();
  }

  private sampleMemory(): void {
    const pid = this.proc?.pid;
    if (pid === undefined || this.dead || (this.busy === undefined && this.initMs !== undefined)) return;
    const mb = treeRssKb(pid) / 1024;
    if (mb > this.maxRssMb) this.maxRssMb = mb;
    if (mb > this.spec.memoryMb) this.onOverMemory(this, mb);
  }

  private serve(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '';
    if (req.method === 'GET' && url === `${BASE}/invocation/next`) {
      if (this.dead) return void res.destroy();
      if (this.initMs === undefined) this.initMs = performance.now() - this.spawnedAt;
      this.waiting = res;
      // A runtime that asks while still busy abandoned its invocation: treat it as done by the function.
      this.events.next(this);
      return;
    }
    if (req.method !== 'POST') return reply(res, 405, 'InvalidRequest', `${req.method} is not part of the Runtime API`);
    const m = /^\/2018-06-01\/runtime\/invocation\/([^/]+)\/(response|error)$/.exec(url);
    if (!m && url !== `${BASE}/init/error`) return reply(res, 404, 'InvalidRequest', `no Runtime API endpoint ${url}`);
    readBody(req, MAX_RESPONSE_BYTES, (body, tooLarge) => {
      if (tooLarge) {
        reply(res, 413, 'RequestEntityTooLarge', `the response exceeds Lambda's ${MAX_RESPONSE_BYTES} bytes`);
        if (m) this.events.error(this, decodeURIComponent(m[1]), Buffer.from(JSON.stringify({ errorType: 'Function.ResponseSizeTooLarge', errorMessage: `Response payload size exceeded maximum allowed payload size (${MAX_RESPONSE_BYTES} bytes).` })), 'Function.ResponseSizeTooLarge');
        return;
      }
      const errorType = String(req.headers['lambda-runtime-function-error-type'] ?? 'Runtime.Unknown');
      if (!m) {
        reply(res, 202, '', '');
        return this.events.initError(this, body, errorType);
      }
      const id = decodeURIComponent(m[1]);
      if (id !== this.busy) return reply(res, 400, 'InvalidRequestID', `invocation ${id} is not the one this environment works on`);
      reply(res, 202, '', '');
      // A streamed response that failed midway reports its error in trailers.
      const trailerError = req.trailers?.['lambda-runtime-function-error-type'];
      const trailerBody = req.trailers?.['lambda-runtime-function-error-body'];
      if (trailerError) this.events.error(this, id, trailerBody ? Buffer.from(trailerBody, 'base64') : Buffer.alloc(0), trailerError);
      else if (m[2] === 'error') this.events.error(this, id, body, errorType);
      else this.events.response(this, id, body, String(req.headers['content-type'] ?? 'application/json'));
    });
  }
}

function reply(res: ServerResponse, status: number, errorType: string, message: string): void {
  const body = status === 202 ? '{"status":"OK"}' : JSON.stringify({ errorType, errorMessage: message });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function readBody(req: IncomingMessage, limit: number, done: (body: Buffer, tooLarge: boolean) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size > limit) over = true;
    else chunks.push(c);
  });
  req.on('end', () => done(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks), over));
  req.on('error', () => {});
}

function splitLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const text = rest + chunk;
    const lines = text.split('\n');
    rest = lines.pop()!;
    for (const l of lines) onLine(l);
  });
  stream.on('end', () => {
    if (rest) onLine(rest);
  });
}

/** Resident set of a process and its descendants, kB (/proc; children listed by the kernel). */
export function treeRssKb(pid: number): number {
  let kb = 0;
  const stack = [pid];
  let guard = 0;
  while (stack.length && guard++ < 256) {
    const p = stack.pop()!;
    try {
      const status = readFileSync(`/proc/${p}/status`, 'latin1');
      const m = /VmRSS:\s+(\d+)/.exec(status);
      if (m) kb += Number(m[1]);
      const kids = readFileSync(`/proc/${p}/task/${p}/children`, 'latin1').trim();
      if (kids) for (const k of kids.split(' ')) stack.push(Number(k));
    } catch {
      // gone meanwhile
    }
  }
  return kb;
}
