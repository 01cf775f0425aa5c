/**
 * Operator-facing errors and incidents of the supervisor, with stable codes.
 * Log lines about them carry the code in their `code` field.
 */
export const ERRORS = {
  FLX_USAGE: 'a command-line flag or environment variable is invalid (exit code 2)',
  FLX_CONFIG_INVALID: 'the config file has errors; the server does not start (exit code 1), or a SIGHUP reload is refused and the old config keeps serving',
  FLX_WORKER_EXIT: 'a worker died (signal or exit code, and the route and library it was calling); it is replaced',
  FLX_WORKER_HANG: 'an inline plugin call ran past --hang-timeout; its worker is killed and replaced',
  FLX_LIB_QUARANTINED: 'a library crashed workers --quarantine-crashes times within --quarantine-window seconds; its routes answer 503 until the file changes or SIGHUP',
  FLX_LIB_INCOMPLETE: 'a changed library file is not a complete ELF file yet; the old version keeps serving until the next change',
  FLX_LIB_RELOAD_FAILED: 'a changed library failed to load in a worker (wrong ABI, missing symbol, ...); the old version keeps serving',
  FLX_LIB_STORE: "the supervisor cannot write a library's verified copy in its run folder; workers loading it next read the file itself",
  FLX_PLUGIN_TIMEOUT: "a worker's threaded plugin call ran past its route's timeout and cannot be cancelled: the worker is replaced and exits once its other requests finish",
  FLX_WATCH_FAILED: 'a library folder cannot be watched; changes to its files need a SIGHUP',
  FLX_NOTIFY_FAILED: 'a systemd notification could not be sent to NOTIFY_SOCKET',
  FLX_DRAIN_TIMEOUT: 'requests were still in flight at --drain-timeout; their workers were killed (exit code 1)',
  FLX_UPSTREAM_STATE: 'the upstream state file (beside the config) cannot be read, parsed or written',
  FLX_UPSTREAM_BAD_REQUEST: 'a management API call on /servers is malformed (400, names the field)',
  FLX_UPSTREAM_BAD_URL: 'an origin URL is not http(s)://host:port (400, field url)',
  FLX_UPSTREAM_UNKNOWN_POOL: 'the named pool has no [upstream.NAME] section (400, field pool)',
  FLX_UPSTREAM_NOT_FOUND: 'DELETE /servers/:ip/:port named no origin of any pool (404)',
  FLX_SERVICE_STATE: 'the WASM services state file (.flexilib/services.json beside the config) is unreadable; the server does not start',
  FLX_SERVICE_INVALID: 'POST /services: a field is missing or malformed (400; `field` names it)',
  FLX_SERVICE_MODULE_INVALID: 'POST /services: the module was refused: not WebAssembly, missing exports, foreign imports, ABI, flexi_init (400)',
  FLX_SERVICE_EXISTS: 'POST /services: a service with this name is already registered (409)',
  FLX_SERVICE_PREFIX_TAKEN: 'POST /services: another service serves this prefix (409)',
  FLX_SERVICE_NOT_FOUND: 'no service with this name is registered (404)',
  FLX_LAMBDA_SPAWN: "a Lambda function's environment could not be started (bootstrap missing or not executable, interpreter not found)",
  FLX_LAMBDA_INIT: "a Lambda function's runtime reported an init error (its first invocation gets it as a function error)",
  FLX_LAMBDA_EXIT: "a Lambda function's environment exited during an invocation or before it was ready (Runtime.ExitError)",
  FLX_LAMBDA_TIMEOUT: 'a Lambda invocation ran past its timeout ("Task timed out after N.NN seconds"); its environment is killed, the next invocation gets a fresh one',
  FLX_LAMBDA_MEMORY: "a Lambda environment's processes used more memory than the function's memory setting: it is killed (Runtime.OutOfMemory)",
  FLX_LAMBDA_STATE: 'the Lambda functions state (.flexilib/lambda/functions.json beside the config) is unreadable; the server does not start',
  FLX_LAMBDA_WATCH: "a Lambda function's folder cannot be watched: its changes need a SIGHUP",
} as const;

export type ErrorCode = keyof typeof ERRORS;

export class SupervisorError extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
    this.name = 'SupervisorError';
  }
}

/** Exit codes of the flexilib command. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;
