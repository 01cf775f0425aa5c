/**
 * AWS Lambda's API on the admin listener, so `aws lambda ... --endpoint-url`
 * and `@aws-sdk/client-lambda` (any region, dummy credentials: any SigV4
 * signature is accepted) work unchanged:
 *
 *   POST   /2015-03-31/functions/{name}/invocations   Invoke (RequestResponse, Event, DryRun; Tail logs)
 *   POST   /2015-03-31/functions                      CreateFunction (Code.ZipFile)
 *   GET    /2015-03-31/functions                      ListFunctions
 *   GET    /2015-03-31/functions/{name}               GetFunction
 *   PUT    /2015-03-31/functions/{name}/code          UpdateFunctionCode (Code.ZipFile)
 *   DELETE /2015-03-31/functions/{name}               DeleteFunction
 *
 * Errors answer in AWS's shape: the `x-amzn-errortype` header and a JSON
 * body with `Type` and `message`, which the SDK turns into its exceptions.
 * Created functions persist in a FunctionStore and are served by the same
 * function host as proxy.ini's (so any worker's `lambda:` route and every
 * Invoke reach the same environments).
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { DEFAULT_LAMBDA, LAMBDA_NAME, RESERVED_ENV, type LambdaSpec } from '@flexilib/contract';
import type { AdminReply, AdminRequest, AdminServer } from '../admin/admin-server.js';
import { NoSuchFunction, type FunctionHost } from './function-host.js';
import { ACCOUNT, REGION, Throttled } from './lambda-function.js';
import { ZipError, type FunctionStore, type StoredFunction } from './function-store.js';

const BASE = '/2015-03-31/functions';
/** Lambda's payload limits: 6 MB synchronous, 1 MB asynchronous (Event). */
export const SYNC_LIMIT = 6 * 1024 * 1024;
export const ASYNC_LIMIT = 1024 * 1024;
/** CreateFunction's request limit (a 50 MB zip, base64 in JSON). */
const CREATE_LIMIT = 70 * 1024 * 1024;

export class AwsError extends Error {
  constructor(readonly status: number, readonly type: string, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

/**
 * Cluster mode (cluster/function-sharing.ts): Create, UpdateFunctionCode and
 * Delete go to the shared state instead of this host's store; every host
 * (this one included) then gets the set through applyShared(). Throws
 * AwsError (409, 404, 503 while etcd is unreachable).
 */
export interface FunctionSharing {
  put(f: StoredFunction, zip: Uint8Array, mode: 'create' | 'update'): Promise<void>;
  remove(name: string): Promise<void>;
}

const RUNTIMES: Record<string, 'provided' | 'nodejs'> = {
  'provided.al2023': 'provided',
  'provided.al2': 'provided',
  provided: 'provided',
  'nodejs18.x': 'nodejs',
  'nodejs20.x': 'nodejs',
  'nodejs22.x': 'nodejs',
};

function awsReply(err: AwsError): AdminReply {
  return { status: err.status, json: { Type: 'User', message: err.message }, headers: { ...err.headers, 'x-amzn-errortype': err.type, 'x-amzn-requestid': randomId() } };
}

function randomId(): string {
  return randomUUID();
}

/** name, NAME:QUALIFIER, 123456789012:function:NAME, or the full ARN; ?Qualifier= too. Only $LATEST exists. */
export function functionName(raw: string, qualifier: string | null): string {
  let name = raw;
  let q = qualifier;
  const arn = /^(?:arn:aws[a-z-]*:lambda:[a-z0-9-]+:)?(\d{12}):function:([^:]+)(?::([^:]+))?$/.exec(raw);
  if (arn) {
    name = arn[2];
    q = arn[3] ?? q;
  } else if (raw.includes(':')) {
    [name, q] = [raw.slice(0, raw.indexOf(':')), raw.slice(raw.indexOf(':') + 1)];
  }
  if (q && q !== '$LATEST') throw new AwsError(404, 'ResourceNotFoundException', `Function not found: arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}:${q} (only $LATEST exists here)`);
  return name;
}

function readRaw(req: IncomingMessage, limit: number, what: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    const chunks: Buffer[] = [];
    let size = 0;
    let over = declared > limit;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) over = true;
      else chunks.push(c);
    });
    req.on('end', () => {
      if (over) reject(new AwsError(413, 'RequestTooLargeException', `Request must be smaller than ${limit} bytes for the ${what} operation`));
      else resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
}

export interface LambdaApiDeps {
  host: FunctionHost;
  store: FunctionStore;
  log: Logger;
}

export class LambdaApi {
  private functions: StoredFunction[] = [];
  private sharing: FunctionSharing | undefined;

  constructor(admin: AdminServer, private readonly deps: LambdaApiDeps) {
    const wrap = (fn: (req: AdminRequest) => Promise<AdminReply>) => async (req: AdminRequest) => {
      try {
        return await fn(req);
      } catch (err) {
        if (err instanceof AwsError) return awsReply(err);
        throw err;
      }
    };
    admin.route('POST', `${BASE}/:name/invocations`, wrap((r) => this.invoke(r)));
    admin.route('POST', BASE, wrap((r) => this.create(r)));
    admin.route('GET', BASE, wrap(async () => ({ json: { Functions: this.deps.host.names().map((n) => this.configuration(n)) } })));
    admin.route('GET', `${BASE}/:name`, wrap(async (r) => {
      const name = this.existing(r);
      return { json: { Configuration: this.configuration(name), Code: { RepositoryType: 'S3', Location: '' } } };
    }));
    admin.route('PUT', `${BASE}/:name/code`, wrap((r) => this.updateCode(r)));
    admin.route('DELETE', `${BASE}/:name`, wrap(async (r) => this.remove(r)));
  }

  /** Cluster mode: changes go through `sharing`. */
  share(sharing: FunctionSharing): void {
    this.sharing = sharing;
  }

  /**
   * Cluster mode: the shared set, as applied from etcd. Packages missing here
   * are fetched (`fetch`) and unpacked; a function whose package cannot be
   * had is left out, logged. Unchanged functions keep their environments.
   */
  async applyShared(shared: StoredFunction[], fetch: (f: StoredFunction) => Promise<Uint8Array>): Promise<void> {
    const next: StoredFunction[] = [];
    for (const s of shared) {
      const { chunks: _chunks, ...f } = s as StoredFunction & { chunks?: number };
      if (this.deps.host.isFromConfig(f.FunctionName)) {
        this.deps.log.warn({ function: f.FunctionName }, `function ${f.FunctionName} of the cluster is shadowed by proxy.ini's [lambda.${f.FunctionName}]`);
        continue;
      }
      if (!this.deps.store.hasCode(f.sha256)) {
        try {
          this.deps.store.putCode(await fetch(s));
        } catch (err) {
          this.deps.log.error({ code: 'FLX_CLUSTER_MODULE', function: f.FunctionName, sha256: f.sha256, err: (err as Error).message }, 'Lambda function of the cluster not served here: its package cannot be fetched');
          continue;
        }
      }
      const was = this.functions.find((x) => x.FunctionName === f.FunctionName);
      if (!was || JSON.stringify(was) !== JSON.stringify(f) || !this.deps.host.get(f.FunctionName)) this.deps.host.put(this.spec(f), 'api');
      next.push(f);
    }
    for (const f of this.functions) {
      if (!next.some((n) => n.FunctionName === f.FunctionName) && !this.deps.host.isFromConfig(f.FunctionName)) this.deps.host.remove(f.FunctionName);
    }
    this.functions = next;
    // No prune here: environments being replaced may still run on the old folders (load() prunes at start).
    this.deps.store.save(next);
  }

  /** Serve the persisted functions (at start). */
  load(): void {
    this.functions = this.deps.store.load();
    this.deps.store.prune(this.functions);
    for (const f of this.functions) {
      if (this.deps.host.get(f.FunctionName)) {
        this.deps.log.warn({ function: f.FunctionName }, `created function ${f.FunctionName} is shadowed by proxy.ini's [lambda.${f.FunctionName}]`);
        continue;
      }
      this.deps.host.put(this.spec(f), 'api');
    }
  }

  private spec(f: StoredFunction): LambdaSpec {
    const dir = this.deps.store.codeDir(f.sha256);
    const runtime = RUNTIMES[f.Runtime] ?? 'provided';
    return {
      ...DEFAULT_LAMBDA,
      name: f.FunctionName,
      line: 0,
      runtime,
      ...(runtime === 'provided' ? { bootstrap: path.join(dir, 'bootstrap') } : {}),
      taskRoot: dir,
      handler: f.Handler,
      timeoutMs: f.Timeout * 1000,
      memoryMb: f.MemorySize,
      env: f.Variables,
    };
  }

  private existing(req: AdminRequest): string {
    const name = functionName(req.params.name, req.query.get('Qualifier'));
    if (!this.deps.host.get(name)) throw new AwsError(404, 'ResourceNotFoundException', new NoSuchFunction(name).message);
    return name;
  }

  private configuration(name: string): object {
    const fn = this.deps.host.get(name)!;
    const s = fn.spec;
    const stored = this.functions.find((f) => f.FunctionName === name);
    return {
      FunctionName: name,
      FunctionArn: fn.arn,
      Runtime: stored?.Runtime ?? (s.runtime === 'nodejs' ? 'nodejs20.x' : 'provided.al2023'),
      Role: stored?.Role ?? `arn:aws:iam::${ACCOUNT}:role/flexilib`,
      Handler: s.handler,
      CodeSize: stored?.CodeSize ?? 0,
      Description: stored?.Description ?? (s.line ? `proxy.ini [lambda.${name}] (line ${s.line})` : ''),
      Timeout: Math.ceil(s.timeoutMs / 1000),
      MemorySize: s.memoryMb,
      LastModified: stored?.LastModified ?? new Date(0).toISOString().replace('Z', '+0000'),
      CodeSha256: stored ? Buffer.from(stored.sha256, 'hex').toString('base64') : '',
      Version: '$LATEST',
      Environment: { Variables: s.env },
      State: 'Active',
      LastUpdateStatus: 'Successful',
      PackageType: 'Zip',
      Architectures: ['x86_64'],
    };
  }

  private async invoke(req: AdminRequest): Promise<AdminReply> {
    const name = functionName(req.params.name, req.query.get('Qualifier'));
    const type = String(req.headers['x-amz-invocation-type'] ?? 'RequestResponse');
    if (type !== 'RequestResponse' && type !== 'Event' && type !== 'DryRun') throw new AwsError(400, 'InvalidParameterValueException', `X-Amz-Invocation-Type "${type}": expected RequestResponse, Event or DryRun`);
    const payload = await readRaw(req.raw, type === 'Event' ? ASYNC_LIMIT : SYNC_LIMIT, 'Invoke');
    const fn = this.deps.host.get(name);
    if (!fn) throw new AwsError(404, 'ResourceNotFoundException', new NoSuchFunction(name).message);
    const headers: Record<string, string> = { 'x-amz-executed-version': '$LATEST' };
    if (type === 'DryRun') return { status: 204, text: '', headers };
    const cc = req.headers['x-amz-client-context'];
    const clientContext = typeof cc === 'string' ? Buffer.from(cc, 'base64').toString('utf8') : undefined;
    const tail = String(req.headers['x-amz-log-type'] ?? '') === 'Tail';
    const pending = fn.invoke(payload, { tail: tail && type === 'RequestResponse', clientContext });
    if (type === 'Event') {
      // Queued: the caller does not wait. A throttle would be retried by Lambda; here it is logged.
      pending.catch((err: Error) => this.deps.log.warn({ function: name, err: err.message }, `asynchronous invocation of ${name} dropped: ${err.message}`));
      return { status: 202, text: '', headers: { ...headers, 'x-amzn-requestid': randomId() } };
    }
    let r;
    try {
      r = await pending;
    } catch (err) {
      if (err instanceof Throttled) throw new AwsError(429, 'TooManyRequestsException', 'Rate Exceeded.');
      throw err;
    }
    headers['x-amzn-requestid'] = r.requestId;
    if (r.functionError) headers['x-amz-function-error'] = r.functionError;
    if (r.log !== undefined) headers['x-amz-log-result'] = Buffer.from(r.log).toString('base64');
    return { status: 200, body: r.payload, contentType: r.contentType, headers };
  }

  private async create(req: AdminRequest): Promise<AdminReply> {
    const body = (await readJson(req.raw, CREATE_LIMIT)) as Record<string, unknown>;
    const name = body.FunctionName;
    if (typeof name !== 'string' || !LAMBDA_NAME.test(name)) throw invalid('FunctionName', 'is required: 1 to 64 letters, digits, "-" and "_"');
    if (this.deps.host.get(name)) throw new AwsError(409, 'ResourceConflictException', `Function already exist: ${name}`);
    const f = this.validate(body, name);
    const code = body.Code as { ZipFile?: unknown } | undefined;
    if (typeof code?.ZipFile !== 'string') throw invalid('Code.ZipFile', 'is required (the package as a base64 zip); S3 and image packages are not simulated');
    const zip = this.putCode(f, code.ZipFile);
    if (this.sharing) {
      await this.sharing.put(f, zip, 'create');
      // Written to etcd; this host applies it from the watch (within the sharing's wait, normally).
      if (!this.deps.host.get(name)) return { status: 201, json: { FunctionName: name, CodeSha256: Buffer.from(f.sha256, 'hex').toString('base64'), State: 'Pending' } };
      return { status: 201, json: this.configuration(name) };
    }
    this.functions.push(f);
    this.commit(f);
    return { status: 201, json: this.configuration(name) };
  }

  private async updateCode(req: AdminRequest): Promise<AdminReply> {
    const name = this.existing(req);
    const f = this.functions.find((x) => x.FunctionName === name);
    if (!f) throw new AwsError(409, 'ResourceConflictException', `function ${name} is defined in proxy.ini ([lambda.${name}]): change its folder or the config instead`);
    const body = (await readJson(req.raw, CREATE_LIMIT)) as Record<string, unknown>;
    if (typeof body.ZipFile !== 'string') throw invalid('ZipFile', 'is required (the package as a base64 zip)');
    if (this.sharing) {
      const next = { ...f, LastModified: now() };
      await this.sharing.put(next, this.putCode(next, body.ZipFile), 'update');
      return { status: 200, json: this.configuration(name) };
    }
    this.putCode(f, body.ZipFile);
    f.LastModified = now();
    this.commit(f);
    return { status: 200, json: this.configuration(name) };
  }

  private async remove(req: AdminRequest): Promise<AdminReply> {
    const name = this.existing(req);
    if (this.deps.host.isFromConfig(name)) throw new AwsError(409, 'ResourceConflictException', `function ${name} is defined in proxy.ini ([lambda.${name}]): remove it there and SIGHUP`);
    if (this.sharing) {
      await this.sharing.remove(name);
      return { status: 204, text: '' };
    }
    this.deps.host.remove(name);
    this.functions = this.functions.filter((f) => f.FunctionName !== name);
    this.deps.store.save(this.functions);
    return { status: 204, text: '' };
  }

  /** Unpack the package here (a bad zip answers 400 before anything is shared) and name it in `f`. */
  private putCode(f: StoredFunction, base64: string): Buffer {
    const zip = Buffer.from(base64, 'base64');
    try {
      const { sha256 } = this.deps.store.putCode(zip);
      f.sha256 = sha256;
      f.CodeSize = zip.length;
      return zip;
    } catch (err) {
      if (err instanceof ZipError) throw new AwsError(400, 'InvalidParameterValueException', err.message);
      throw err;
    }
  }

  private commit(f: StoredFunction): void {
    this.deps.store.save(this.functions);
    this.deps.host.put(this.spec(f), 'api');
  }

  private validate(body: Record<string, unknown>, name: string): StoredFunction {
    const runtime = body.Runtime;
    if (typeof runtime !== 'string' || !RUNTIMES[runtime]) throw invalid('Runtime', `must be one of ${Object.keys(RUNTIMES).join(', ')}`);
    const handler = body.Handler ?? (RUNTIMES[runtime] === 'provided' ? 'function.handler' : undefined);
    if (typeof handler !== 'string' || handler === '') throw invalid('Handler', 'is required, such as index.handler');
    const timeout = body.Timeout ?? DEFAULT_LAMBDA.timeoutMs / 1000;
    if (!Number.isInteger(timeout) || (timeout as number) < 1 || (timeout as number) > 900) throw invalid('Timeout', 'must be an integer from 1 to 900 (seconds)');
    const memory = body.MemorySize ?? DEFAULT_LAMBDA.memoryMb;
    if (!Number.isInteger(memory) || (memory as number) < 128 || (memory as number) > 10240) throw invalid('MemorySize', 'must be an integer from 128 to 10240 (MB)');
    const vars = ((body.Environment as { Variables?: unknown } | undefined)?.Variables ?? {}) as Record<string, unknown>;
    if (typeof vars !== 'object' || vars === null) throw invalid('Environment.Variables', 'must be an object of strings');
    for (const [k, v] of Object.entries(vars)) {
      if (typeof v !== 'string') throw invalid(`Environment.Variables.${k}`, 'must be a string');
      if (RESERVED_ENV.has(k)) throw invalid(`Environment.Variables.${k}`, 'is reserved by Lambda');
    }
    return {
      FunctionName: name,
      Runtime: runtime,
      Handler: handler,
      Timeout: timeout as number,
      MemorySize: memory as number,
      Description: typeof body.Description === 'string' ? body.Description : '',
      Role: typeof body.Role === 'string' ? body.Role : `arn:aws:iam::${ACCOUNT}:role/flexilib`,
      Variables: vars as Record<string, string>,
      sha256: '',
      CodeSize: 0,
      LastModified: now(),
    };
  }
}

function invalid(field: string, what: string): AwsError {
  return new AwsError(400, 'InvalidParameterValueException', `${field} ${what}`);
}

function now(): string {
  return new Date().toISOString().replace('Z', '+0000');
}

async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const raw = await readRaw(req, limit, 'CreateFunction');
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new AwsError(400, 'InvalidRequestContentException', `Could not parse request body into json: ${(err as Error).message}`);
  }
}
