/** Exit codes of the flexilib command (each error code's own is in @flexilib/contract's ERRORS). */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;
