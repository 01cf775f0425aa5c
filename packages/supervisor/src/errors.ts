/** Operator-facing errors of the supervisor, with stable codes. */
export const ERRORS = {
  FLX_USAGE: 'a command-line flag or environment variable is invalid (exit code 2)',
  FLX_CONFIG_INVALID: 'the config file has errors; the server does not start (exit code 1)',
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
