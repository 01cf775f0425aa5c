/** Operator-facing errors of the supervisor, with stable codes. */
export const ERRORS = {
  FLX_USAGE: 'a command-line flag or environment variable is invalid (exit code 2)',
  FLX_CONFIG_INVALID: 'the config file has errors; the server does not start (exit code 1)',
  FLX_SERVICE_STATE: 'the WASM services state file (.flexilib/services.json beside the config) is unreadable; the server does not start',
  FLX_SERVICE_INVALID: 'POST /services: a field is missing or malformed (400; `field` names it)',
  FLX_SERVICE_MODULE_INVALID: 'POST /services: the module was refused: not WebAssembly, missing exports, foreign imports, ABI, flexi_init (400)',
  FLX_SERVICE_EXISTS: 'POST /services: a service with this name is already registered (409)',
  FLX_SERVICE_PREFIX_TAKEN: 'POST /services: another service serves this prefix (409)',
  FLX_SERVICE_NOT_FOUND: 'no service with this name is registered (404)',
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
