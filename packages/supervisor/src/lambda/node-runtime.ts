/**
 * flexilib's Node.js runtime for `runtime = nodejs` functions: a bootstrap
 * process that speaks the Lambda Runtime API (AWS_LAMBDA_RUNTIME_API) exactly
 * as any custom runtime does, loading the handler named by _HANDLER from
 * LAMBDA_TASK_ROOT. It stands in for AWS's aws-lambda-ric, whose install
 * compiles libcurl and aws-lambda-cpp from source (see docs/faas.md).
 *
 * Handlers: `async (event, context)`, a function returning a promise, or
 * `(event, context, callback)`; CommonJS or ESM (`import()` loads both).
 * console.* lines are written as Lambda's Node runtime writes them:
 * `<ISO time>\t<request id>\t<LEVEL>\t<message>`.
 *
 * Runs as its own process with no flexilib imports: only node: modules.
 */
import net from 'node:net';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { format } from 'node:util';

const api = process.env.AWS_LAMBDA_RUNTIME_API ?? '';
const [host, port] = api.split(':');
const BASE = '/2018-06-01/runtime';
let requestId = '';

interface Reply {
  status: number;
  /** Lower-cased names. */
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * One keep-alive connection to the Runtime API, one request at a time, speaking
 * just the HTTP/1.1 the Runtime API needs (Content-Length bodies both ways).
 * node:http's client cost about 0.4 ms of CPU per invocation here (a GET and a
 * POST each), the largest share of a warm invocation's CPU.
 */
class RuntimeConnection {
  private socket: net.Socket | undefined;
  private buffered: Buffer = Buffer.alloc(0);
  private waiter: ((err?: Error) => void) | undefined;

  private connect(): net.Socket {
    const socket = net.connect({ host, port: Number(port), noDelay: true });
    socket.on('data', (chunk: Buffer) => {
      this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
      this.waiter?.();
    });
    const gone = (err?: Error) => {
      this.socket = undefined;
      this.waiter?.(err ?? new Error('the Runtime API closed the connection'));
    };
    socket.on('error', gone);
    socket.on('close', () => gone());
    this.socket = socket;
    return socket;
  }

  call(method: string, urlPath: string, body?: Buffer | string, headers: Record<string, string> = {}): Promise<Reply> {
    const socket = this.socket ?? this.connect();
    let head = `${method} ${BASE}${urlPath} HTTP/1.1\r\nHost: ${api}\r\n`;
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
    const payload = body === undefined ? undefined : typeof body === 'string' ? Buffer.from(body) : body;
    if (payload) head += `Content-Length: ${payload.length}\r\n`;
    socket.write(head + '\r\n');
    if (payload) socket.write(payload);
    return new Promise((resolve, reject) => {
      const tryParse = (err?: Error) => {
        if (err) {
          this.waiter = undefined;
          return reject(err);
        }
        const end = this.buffered.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = this.buffered.toString('latin1', 0, end).split('\r\n');
        const status = Number(lines[0].split(' ')[1]);
        const h: Record<string, string> = {};
        for (let i = 1; i < lines.length; i++) {
          const c = lines[i].indexOf(':');
          if (c > 0) h[lines[i].slice(0, c).trim().toLowerCase()] = lines[i].slice(c + 1).trim();
        }
        const length = Number(h['content-length'] ?? 0);
        if (this.buffered.length < end + 4 + length) return;
        const replyBody = this.buffered.subarray(end + 4, end + 4 + length);
        this.buffered = this.buffered.subarray(end + 4 + length);
        this.waiter = undefined;
        resolve({ status, headers: h, body: replyBody });
      };
      this.waiter = tryParse;
      tryParse();
    });
  }
}

const connection = new RuntimeConnection();
const call = connection.call.bind(connection);

function errorPayload(err: unknown): { errorType: string; errorMessage: string; trace: string[] } {
  const e = err instanceof Error ? err : new Error(typeof err === 'string' ? err : JSON.stringify(err));
  return { errorType: e.name || 'Error', errorMessage: e.message, trace: (e.stack ?? '').split('\n') };
}

function patchConsole(): void {
  const levels: Array<[keyof Console, string]> = [['log', 'INFO'], ['info', 'INFO'], ['warn', 'WARN'], ['error', 'ERROR'], ['debug', 'DEBUG'], ['trace', 'TRACE']];
  for (const [method, level] of levels) {
    (console as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
      process.stdout.write(`${new Date().toISOString()}\t${requestId || 'undefined'}\t${level}\t${format(...args).replaceAll('\n', '\r')}\n`);
    };
  }
}

type Handler = (event: unknown, context: object, callback?: (err: unknown, result?: unknown) => void) => unknown;

async function loadHandler(): Promise<Handler> {
  const spec = process.env._HANDLER ?? '';
  const root = process.env.LAMBDA_TASK_ROOT ?? process.cwd();
  const slash = spec.lastIndexOf('/');
  const dot = spec.indexOf('.', slash + 1);
  if (dot < 0) throw Object.assign(new Error(`Bad handler ${spec}: expected FILE.EXPORT`), { name: 'Runtime.MalformedHandlerName' });
  const moduleName = spec.slice(0, dot);
  const exportPath = spec.slice(dot + 1).split('.');
  const file = ['.js', '.mjs', '.cjs'].map((ext) => path.resolve(root, moduleName + ext)).find((f) => existsSync(f));
  if (!file) throw Object.assign(new Error(`Cannot find module '${moduleName}'`), { name: 'Runtime.ImportModuleError' });
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    const e = err as Error;
    throw Object.assign(new Error(`${e.name}: ${e.message}`), { name: e instanceof SyntaxError ? 'Runtime.UserCodeSyntaxError' : 'Runtime.ImportModuleError', stack: e.stack });
  }
  let fn: unknown = mod;
  for (const key of exportPath) fn = (fn as Record<string, unknown> | undefined)?.[key] ?? (fn as { default?: Record<string, unknown> } | undefined)?.default?.[key];
  if (typeof fn !== 'function') throw Object.assign(new Error(`${moduleName}.${exportPath.join('.')} is undefined or not exported`), { name: 'Runtime.HandlerNotFound' });
  return fn as Handler;
}

function run(handler: Handler, event: unknown, context: Record<string, unknown>): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const callback = (err: unknown, result?: unknown) => {
      if (settled) return;
      settled = true;
      if (err !== null && err !== undefined) reject(err);
      else resolve(result);
    };
    context.done = callback;
    context.succeed = (r: unknown) => callback(null, r);
    context.fail = (e: unknown) => callback(e ?? new Error('handled'));
    try {
      const out = handler(event, context, handler.length >= 3 ? callback : undefined);
      if (handler.length < 3 || (out && typeof (out as Promise<unknown>).then === 'function')) {
        Promise.resolve(out).then((r) => callback(null, r), (e: unknown) => callback(e ?? new Error('rejected')));
      }
    } catch (err) {
      callback(err);
    }
  });
}

async function main(): Promise<void> {
  patchConsole();
  let handler: Handler;
  try {
    handler = await loadHandler();
  } catch (err) {
    const p = errorPayload(err);
    console.error(`${p.errorType}: ${p.errorMessage}`);
    await call('POST', '/init/error', JSON.stringify(p), { 'content-type': 'application/json', 'lambda-runtime-function-error-type': p.errorType });
    process.exit(1);
  }
  const memory = process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? '128';
  for (;;) {
    const next = await call('GET', '/invocation/next');
    requestId = String(next.headers['lambda-runtime-aws-request-id'] ?? '');
    const deadline = Number(next.headers['lambda-runtime-deadline-ms'] ?? 0);
    const trace = next.headers['lambda-runtime-trace-id'];
    if (trace) process.env._X_AMZN_TRACE_ID = String(trace);
    else delete process.env._X_AMZN_TRACE_ID;
    const text = next.body.toString('utf8');
    let event: unknown;
    try {
      event = JSON.parse(text);
    } catch {
      event = text; // a raw (non-JSON) payload reaches the handler as a string
    }
    const cc = next.headers['lambda-runtime-client-context'];
    const context: Record<string, unknown> = {
      awsRequestId: requestId,
      invokedFunctionArn: String(next.headers['lambda-runtime-invoked-function-arn'] ?? ''),
      functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
      functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
      memoryLimitInMB: memory,
      logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
      clientContext: cc ? JSON.parse(String(cc)) : undefined,
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    };
    const id = encodeURIComponent(requestId);
    try {
      const result = await run(handler, event, context);
      await call('POST', `/invocation/${id}/response`, JSON.stringify(result === undefined ? null : result), { 'content-type': 'application/json' });
    } catch (err) {
      const p = errorPayload(err);
      console.error(`Invoke Error \t${JSON.stringify(p)}`);
      await call('POST', `/invocation/${id}/error`, JSON.stringify(p), { 'content-type': 'application/json', 'lambda-runtime-function-error-type': p.errorType });
    }
  }
}

main().catch((err: Error) => {
  process.stderr.write(`flexilib node runtime: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
