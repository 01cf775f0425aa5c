/** Operator-facing errors of the supervisor, with stable codes. */
export const ERRORS = {
  FLX_USAGE: 'a command-line flag or environment variable is invalid (exit code 2)',
  FLX_CONFIG_INVALID: 'the config file has errors; the server does not start (exit code 1)',
  FLX_UPSTREAM_STATE: 'the upstream state file (beside the config) cannot be read, parsed or written',
  FLX_UPSTREAM_BAD_REQUEST: 'a management API call on /servers is malformed (400, names the field)',
  FLX_UPSTREAM_BAD_URL: 'an origin URL is not http(s)://host:port (400, field url)',
  FLX_UPSTREAM_UNKNOWN_POOL: 'the named pool has no [upstream.NAME] section (400, field pool)',
  FLX_UPSTREAM_NOT_FOUND: 'DELETE /servers/:ip/:port named no origin of any pool (404)',
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
