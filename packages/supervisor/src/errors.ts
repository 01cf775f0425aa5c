/**
 * Operator-facing errors and incidents of the supervisor, with stable codes.
 * Log lines about them carry the code in their `code` field.
 */
export const ERRORS = {
  FLX_USAGE: 'a command-line flag or environment variable is invalid (exit code 2)',
  FLX_CONFIG_INVALID: 'the config file has errors; the server does not start (exit code 1), or a SIGHUP reload is refused and the old config keeps serving',
  FLX_LISTEN: 'the traffic address cannot be listened on (port in use, host unknown); the server does not start (exit code 1)',
  FLX_WORKER_EXIT: 'a worker died (signal or exit code, and the route and library it was calling); it is replaced',
  FLX_WORKER_FORK: 'a worker process could not be started (spawn failed: E2BIG, ENOMEM, ...); retried with growing delays while the other workers keep serving',
  FLX_WORKER_NO_REPLY: 'a worker did not answer a request (config switch, library reload, WASM services) in time; the outcome leaves it out',
  FLX_WORKER_GONE: 'a worker died before answering a request; the outcome leaves it out (its replacement starts with the current state)',
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
  FLX_SERVICE_PATH_REFUSED: 'POST /services: "path" is outside the modules folder (the config\'s, or --modules-dir), missing, not a regular file, or over the module size limit (400, field path)',
  FLX_SERVICE_MODULE_INVALID: 'POST /services: the module was refused: not WebAssembly, missing exports, foreign imports, ABI, flexi_init (400)',
  FLX_SERVICE_EXISTS: 'POST /services: a service with this name is already registered (409)',
  FLX_SERVICE_PREFIX_TAKEN: 'POST /services: another service serves this prefix (409)',
  FLX_SERVICE_NOT_FOUND: 'no service with this name is registered (404)',
  FLX_CLUSTER_UNREACHABLE: 'cluster mode: etcd cannot be reached; traffic keeps the last state, shared mutations answer 503 with Retry-After',
  FLX_CLUSTER_AUTH: 'cluster mode: etcd refused the user or password (--cluster-user/--cluster-password), or the user may not use the cluster prefix; the server does not start',
  FLX_CLUSTER_CONFLICT: 'cluster mode: the change conflicts with the shared state (the origin or service already exists) (409)',
  FLX_CLUSTER_SNAPSHOT: 'cluster mode: the local snapshot of the shared state (beside the config) cannot be read or written',
  FLX_CLUSTER_MODULE: 'cluster mode: a WASM module named by the shared state is missing or its chunks do not match its sha256; the service is not served on this host',
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
