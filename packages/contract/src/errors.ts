/**
 * flexilib's one error catalogue: every operator-facing code, with the HTTP
 * status it answers with (`status`, where it answers HTTP), the exit code of
 * the command it ends (`exit`) and what it means (`text`; each occurrence's
 * message names the file:line, route, library or field). Every code is
 * documented in docs/errors.md (contract/test/errors-catalogue.test.ts).
 *
 * Match on `error.code`, not on the class: codes survive the
 * supervisor<->worker IPC and reach clients in `x-flexilib-error`.
 * One code per line, grouped by where it shows; add new codes to their group.
 */
export const ERRORS = {
  // Traffic port: the worker's own answers (each with x-flexilib-error: CODE)
  FLX_BAD_REQUEST: { status: 400, text: 'the request is malformed (llhttp refused it, or it has no Host header (HTTP/1.1) or more than one); the connection closes' },
  FLX_REQUEST_TIMEOUT: { status: 408, text: 'the request head or body did not arrive within --headers-timeout / --request-timeout; the connection closes' },
  FLX_HEADERS_TOO_LARGE: { status: 431, text: 'the request head exceeds --max-header-size; the connection closes' },
  FLX_NO_ROUTE: { status: 404, text: 'no route (WASM service prefix or proxy.ini route) matches the request path' },
  FLX_BODY_TOO_LARGE: { status: 413, text: "a request body for a native or WASM route exceeds the route's max_body (or --max-body); the connection closes" },
  FLX_INTERNAL: { status: 500, text: 'an executor threw, or a threaded route could not start a thread: a flexilib bug or a host out of threads; the worker log has the stack' },
  FLX_EXECUTOR_UNSUPPORTED: { status: 501, text: 'the route names an executor kind this build does not provide (or whose modules failed to load)' },
  FLX_PLUGIN_HEADERS_TOO_LARGE: { status: 431, text: "the request's headers do not fit the plugin call's request area (431)" },
  FLX_PLUGIN_BAD_RESPONSE: { status: 502, text: 'the plugin produced a response node:http refuses (bad header, or a status outside 200-599)' },
  FLX_PLUGIN_BUSY: { status: 503, text: 'the threaded route queue is full (503 with retry-after: 1)' },
  FLX_PLUGIN_TIMEOUT: { status: 504, text: "a threaded plugin call ran past its route's timeout (answered 504) and cannot be cancelled: the worker is replaced once its other requests finish" },
  FLX_SEND_TIMEOUT: { text: 'a client took none of its pending answer for --send-timeout: its connection was closed' },
  // Traffic port: native libraries (each answers 502 naming the route, until the file changes)
  FLX_LIB_NOT_FOUND: { status: 502, text: 'the library file does not exist' },
  FLX_LIB_LOAD: { status: 502, text: 'the library could not be read, copied or loaded (dlopen failed)' },
  FLX_LIB_INCOMPLETE: { status: 502, text: 'the library file is truncated or not yet completely written (checked before dlopen); after a change, the old version keeps serving until the next change' },
  FLX_LIB_WRONG_ARCH: { status: 502, text: 'the library is built for another CPU architecture, ELF class or byte order than this host (checked before dlopen)' },
  FLX_LIB_NO_HANDLER: { status: 502, text: 'the library does not export handle_request' },
  FLX_LIB_ABI: { status: 502, text: "the library was built for another major ABI version, or exports neither flexi_abi_version nor FlexiLib's zigInit (set abi = flexilib for a C library written for FlexiLib)" },
  FLX_THREAD_RING_HELPER: { status: 500, text: 'a threaded route cannot call its plugin: the helper that runs its threads (dist/native/thread-ring.so, built by pnpm build) is missing or does not load' },
  FLX_LIB_FLEXILIB_ADAPTER: { status: 502, text: "the library speaks FlexiLib's interface and the adapter for it (dist/native/flexilib-adapter.so, built by pnpm build with Zig 0.11) is missing or does not load" },
  FLX_LIB_INIT: { status: 502, text: 'flexi_init returned nonzero' },
  FLX_LIB_QUARANTINED: { status: 503, text: 'the library crashed workers --quarantine-crashes times within --quarantine-window seconds; its routes answer 503 until the file changes or SIGHUP' },
  // Traffic port: upstream routes
  FLX_UPSTREAM_UNAVAILABLE: { status: 503, text: 'an upstream pool has no healthy origin (503, answered at once)' },
  FLX_UPSTREAM_CONNECT: { status: 502, text: 'an origin refused, reset or could not be reached, or failed mid-response (502, or a cut connection)' },
  FLX_UPSTREAM_TIMEOUT: { status: 504, text: 'an origin exceeded connect_timeout or header_timeout (504), or idle_timeout mid-response (cut)' },
  FLX_UPSTREAM_BAD_RESPONSE: { status: 502, text: 'an origin answered a status outside 200-599 or a head node:http refuses (502)' },
  FLX_UPSTREAM_BODY_TOO_LARGE: { status: 413, text: "a proxied request body exceeds its route's max_body (413)" },
  FLX_UPSTREAM_BAD_REQUEST: { status: 400, text: 'the client sent a body shorter or longer than its Content-Length; or a management API call on /servers is malformed (names the field)' },
  // Traffic port: WASM routes and services
  FLX_WASM_NOT_FOUND: { status: 502, text: 'the .wasm module file does not exist or cannot be read' },
  FLX_WASM_COMPILE: { status: 502, text: 'the file is not a valid WebAssembly module' },
  FLX_WASM_EXPORTS: { status: 502, text: 'the module lacks a required export (handle_request, memory, flexi_wasm_alloc/free/release, flexi_abi_version)' },
  FLX_WASM_IMPORTS: { status: 502, text: 'the module imports something the sandbox does not provide (only WASI preview1 functions are)' },
  FLX_WASM_ABI: { status: 502, text: 'the module was built for another major ABI version' },
  FLX_WASM_MEMORY: { status: 500, text: 'the module needs or reached more linear memory than its cap' },
  FLX_WASM_INIT: { status: 502, text: 'instantiating the module, _initialize or flexi_init failed' },
  FLX_WASM_TRAP: { status: 500, text: 'the module trapped during a request (answered 500; the instance is replaced)' },
  FLX_WASM_EXIT: { status: 500, text: 'the module called proc_exit during a request (answered 500; the instance is replaced)' },
  FLX_WASM_TIMEOUT: { status: 504, text: 'the module did not answer within its time limit (answered 504; the instance is stopped)' },
  FLX_WASM_BAD_RESPONSE: { status: 502, text: 'the module returned a response pointing outside its memory (answered 502)' },
  FLX_WASM_CRASHED: { status: 502, text: 'the thread running the module died (answered 502)' },
  FLX_WASM_NOT_INTERRUPTIBLE: { status: 502, text: 'run = loop, and the module cannot be made interruptible (an instruction the rewrite does not know, or a start function): use run = auto or thread' },
  // Traffic port: lambda routes (answered as API Gateway does: {"message": ...} JSON, plus x-flexilib-error)
  FLX_LAMBDA_FUNCTION_ERROR: { status: 502, text: 'a Lambda function failed (its error, a timeout, the memory limit, an init error): the route answers 502 as API Gateway does; the error is in the log stream' },
  FLX_LAMBDA_THROTTLED: { status: 429, text: "a Lambda function's environments are all busy and its queue is full (429)" },
  FLX_LAMBDA_BODY_TOO_LARGE: { status: 413, text: "a request to a lambda route exceeds the route's max_body or Lambda's 6 MB payload (413)" },
  FLX_LAMBDA_BAD_RESPONSE: { status: 502, text: "a Lambda function's result cannot be mapped to HTTP (v1 without statusCode, a bad status or header): 502" },
  FLX_LAMBDA_HOST: { status: 502, text: "the supervisor's Lambda function host cannot be reached (502)" },
  // Traffic port: Cloudflare Workers routes ([worker.NAME])
  FLX_WORKERD_MISSING: { status: 502, text: 'the workerd binary that runs Cloudflare Workers is missing: install the npm package "workerd" (answered 502)' },
  FLX_CFW_BUNDLE: { status: 500, text: "a Worker's module could not be read or bundled (answered 500 until it is fixed; the last good version keeps serving after a reload)" },
  FLX_CFW_START: { status: 502, text: 'a workerd process did not start or rejected its config (answered 502)' },
  FLX_CFW_CPU: { status: 503, text: "a Worker request used more CPU than its cpu_ms (answered 503, Cloudflare's error 1102; the isolate is recycled)" },
  FLX_CFW_MEMORY: { status: 503, text: "a Worker's isolate exceeded its memory (answered 503, Cloudflare's error 1102; the isolate is recycled)" },
  FLX_CFW_CRASHED: { status: 502, text: 'a workerd process died or cut the connection during a request (answered 502; it is replaced)' },
  FLX_CFW_LOOP: { status: 508, text: "a request that already passed through one of this server's Workers reached a Worker route again, as passThroughOnException to this server does (answered 508, Cloudflare's error 1019)" },
  // Admin listener: its own answers ({"error": {"code", "message", "field"?}}, x-flexilib-error: CODE)
  FLX_ADMIN_BAD_TARGET: { status: 400, text: 'the request target is not a path, or a path segment has malformed percent-encoding' },
  FLX_ADMIN_NOT_FOUND: { status: 404, text: 'no admin endpoint has this path' },
  FLX_ADMIN_METHOD: { status: 405, text: 'the endpoint exists but not for this method (the message lists the allowed ones)' },
  FLX_ADMIN_UNAUTHORIZED: { status: 401, text: 'a mutating endpoint was called without Authorization: Bearer <ADMIN_TOKEN>, or with another token' },
  FLX_ADMIN_BODY_TOO_LARGE: { status: 413, text: 'the JSON request body exceeds the admin body limit; the connection closes' },
  FLX_ADMIN_BAD_JSON: { status: 400, text: 'the request body is empty or not JSON' },
  FLX_ADMIN_BAD_BODY: { status: 400, text: 'the request body could not be read (the client aborted it)' },
  FLX_ADMIN_INTERNAL: { status: 500, text: 'an admin handler failed unexpectedly: a flexilib bug; the supervisor log has the stack' },
  FLX_ADMIN_NO_TOKEN: { exit: 1, text: 'the admin listener would bind beyond loopback without ADMIN_TOKEN; the server does not start' },
  // Admin listener: upstream pools (/servers)
  FLX_UPSTREAM_BAD_URL: { status: 400, text: 'an origin URL is not http(s)://host:port (400, field url)' },
  FLX_UPSTREAM_UNKNOWN_POOL: { status: 400, text: 'the named pool has no [upstream.NAME] section (400, field pool)' },
  FLX_UPSTREAM_NOT_FOUND: { status: 404, text: 'DELETE /servers/:ip/:port named no origin of any pool (404)' },
  FLX_UPSTREAM_STATE: { status: 500, text: 'the upstream state file (beside the config) cannot be read or parsed (the server does not start), or written (the API call fails with 500 and changes nothing)' },
  // Admin listener: WASM services (/services)
  FLX_SERVICE_INVALID: { status: 400, text: 'POST /services: a field is missing or malformed (400; `field` names it)' },
  FLX_SERVICE_PATH_REFUSED: { status: 400, text: 'POST /services: "path" is outside the modules folder (the config\'s, or --modules-dir), missing, not a regular file, or over the module size limit (400, field path)' },
  FLX_SERVICE_MODULE_INVALID: { status: 400, text: 'POST /services: the module was refused: not WebAssembly, missing exports, foreign imports, ABI, flexi_init (400)' },
  FLX_SERVICE_EXISTS: { status: 409, text: 'POST /services: a service with this name is already registered (409)' },
  FLX_SERVICE_PREFIX_TAKEN: { status: 409, text: 'POST /services: another service serves this prefix (409)' },
  FLX_SERVICE_NOT_FOUND: { status: 404, text: 'no service with this name is registered (404)' },
  // Admin listener: cluster mode (etcd)
  FLX_CLUSTER_UNREACHABLE: { status: 503, text: 'cluster mode: etcd cannot be reached; traffic keeps the last state, shared mutations answer 503 with Retry-After' },
  FLX_CLUSTER_CONFLICT: { status: 409, text: 'cluster mode: the change conflicts with the shared state (the origin or service already exists) (409)' },
  FLX_CLUSTER_AUTH: { exit: 1, text: 'cluster mode: etcd refused the user or password (--cluster-user/--cluster-password), or the user may not use the cluster prefix; the server does not start' },
  FLX_CLUSTER_SNAPSHOT: { text: 'cluster mode: the local snapshot of the shared state (beside the config) cannot be read or written' },
  FLX_CLUSTER_MODULE: { text: 'cluster mode: a WASM module named by the shared state is missing or its chunks do not match its sha256; the service is not served on this host' },
  FLX_SERVICE_STATE: { exit: 1, text: 'the WASM services state file (.flexilib/services.json beside the config) is unreadable; the server does not start' },
  // The flexilib command and the supervisor's log lines
  FLX_USAGE: { exit: 2, text: 'a command-line flag or environment variable is invalid (exit code 2)' },
  FLX_CONFIG_INVALID: { exit: 1, text: 'the config file has errors (each as file:line); the server does not start (exit code 1), or a SIGHUP reload is refused and the old config keeps serving' },
  FLX_CONFIG_READ: { exit: 1, text: 'the config file cannot be read; the server does not start (exit code 1), or a SIGHUP reload is refused' },
  FLX_LISTEN: { exit: 1, text: 'the traffic address cannot be listened on (port in use, host unknown); the server does not start (exit code 1)' },
  FLX_WORKER_FORK: { text: 'a worker process could not be started (spawn failed: E2BIG, ENOMEM, ...); retried with growing delays while the other workers keep serving' },
  FLX_WORKER_EXIT: { text: 'a worker died (signal or exit code, and the route and library it was calling); it is replaced' },
  FLX_WORKER_NO_REPLY: { text: 'a worker did not answer a request (config switch, library reload, WASM services) in time; the outcome leaves it out' },
  FLX_WORKER_GONE: { text: 'a worker died before answering a request; the outcome leaves it out (its replacement starts with the current state)' },
  FLX_WORKER_HANG: { text: 'an inline plugin call ran past --hang-timeout; its worker is killed and replaced' },
  FLX_LIB_RELOAD_FAILED: { text: 'a changed library failed to load in a worker (wrong ABI, missing symbol, ...); the old version keeps serving' },
  FLX_LIB_STORE: { text: "the supervisor cannot write a library's verified copy in its run folder; workers loading it next read the file itself" },
  FLX_WATCH_FAILED: { text: 'a library folder cannot be watched; changes to its files need a SIGHUP' },
  FLX_NOTIFY_FAILED: { text: 'a systemd notification could not be sent to NOTIFY_SOCKET' },
  FLX_DRAIN_TIMEOUT: { exit: 1, text: 'requests were still in flight at --drain-timeout; their workers were killed (exit code 1)' },
  // The supervisor's Lambda function host (log lines; the invocation gets AWS's own error)
  FLX_LAMBDA_SPAWN: { text: "a Lambda function's environment could not be started (bootstrap missing or not executable, interpreter not found)" },
  FLX_LAMBDA_INIT: { text: "a Lambda function's runtime reported an init error (its first invocation gets it as a function error)" },
  FLX_LAMBDA_EXIT: { text: "a Lambda function's environment exited during an invocation or before it was ready (Runtime.ExitError)" },
  FLX_LAMBDA_TIMEOUT: { text: 'a Lambda invocation ran past its timeout ("Task timed out after N.NN seconds"); its environment is killed, the next invocation gets a fresh one' },
  FLX_LAMBDA_MEMORY: { text: "a Lambda environment's processes used more memory than the function's memory setting: it is killed (Runtime.OutOfMemory)" },
  FLX_LAMBDA_STATE: { exit: 1, text: 'the Lambda functions state (.flexilib/lambda/functions.json beside the config) is unreadable; the server does not start' },
  FLX_LAMBDA_WATCH: { text: "a Lambda function's folder cannot be watched: its changes need a SIGHUP" },
  // pnpm run release (packages/release)
  FLX_RELEASE_NOT_BUILT: { exit: 1, text: 'compiled JS or an example plugin is missing: run `pnpm build` first (`pnpm run release` does)' },
  FLX_RELEASE_DEPLOY: { exit: 1, text: '`pnpm deploy` of the production dependencies failed' },
  FLX_RELEASE_PLUGIN_CLASH: { exit: 1, text: 'two examples build a library with the same file name' },
  FLX_RELEASE_CONFIG: { exit: 1, text: 'the bundled proxy.ini is invalid or names a library the tarball lacks' },
  FLX_RELEASE_TAR: { exit: 1, text: 'tar failed' },
  FLX_RELEASE_SIGN: { exit: 1, text: 'the signing key is missing or ssh-keygen -Y sign failed (or is not installed)' },
  FLX_RELEASE_USAGE: { exit: 2, text: 'bad command-line argument' },
} as const satisfies Record<string, ErrorSpec>;

/** How a code shows: the HTTP status it answers with, the exit code it ends a command with. */
export interface ErrorSpec {
  readonly status?: number;
  readonly exit?: number;
  readonly text: string;
}

export type ErrorCode = keyof typeof ERRORS;

/** Codes that answer HTTP, and those that do not. */
export type HttpErrorCode = { [C in ErrorCode]: (typeof ERRORS)[C] extends { status: number } ? C : never }[ErrorCode];

/** The HTTP status a code answers with (one status per code). */
export function statusOf(code: HttpErrorCode): number {
  return (ERRORS[code] as ErrorSpec).status!;
}

/** Whether a code answers HTTP (has a status). */
export function answersHttp(code: ErrorCode): code is HttpErrorCode {
  return (ERRORS[code] as ErrorSpec).status !== undefined;
}

/** The header every error answer of flexilib's own carries: its code. */
export const ERROR_HEADER = 'x-flexilib-error';

/** What an error names beyond its message: the field of an API call, the route and library of a plugin failure. */
export interface ErrorDetails {
  field?: string;
  route?: string;
  library?: string;
  /** Extra headers of its HTTP answer (Retry-After). */
  headers?: Record<string, string>;
  cause?: unknown;
}

/** The one error class: a stable code (status and exit code from the catalogue) and a one-line message naming what was wrong. */
export class FlexiError extends Error {
  readonly code: ErrorCode;
  readonly field?: string;
  readonly route?: string;
  readonly library?: string;
  readonly headers?: Record<string, string>;
  constructor(code: ErrorCode, message: string, details?: ErrorDetails) {
    super(message, details?.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.name = 'FlexiError';
    if (details?.field !== undefined) this.field = details.field;
    if (details?.route !== undefined) this.route = details.route;
    if (details?.library !== undefined) this.library = details.library;
    if (details?.headers !== undefined) this.headers = details.headers;
  }

  /** The HTTP status of its code, or undefined when the code never answers HTTP. */
  get status(): number | undefined {
    return (ERRORS[this.code] as ErrorSpec).status;
  }

  /** The exit code of a command this error ends (1 when the catalogue names none). */
  get exitCode(): number {
    return (ERRORS[this.code] as ErrorSpec).exit ?? 1;
  }
}

/** One problem in a config file, with its line (1-based). */
export interface ConfigProblem {
  file: string;
  line: number;
  message: string;
}

/** All problems found in one config file; the message lists each as file:line. */
export class ConfigError extends FlexiError {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super('FLX_CONFIG_INVALID', problems.map((p) => `${p.file}:${p.line}: ${p.message}`).join('\n'));
    this.problems = problems;
    this.name = 'ConfigError';
  }
}
