/**
 * One flag or environment variable of the flexilib command and what it takes.
 * The table (table.ts) is a list of these; help, parseArgs options, env
 * reading, validation and the docs table are all generated from it.
 */
import { FlexiError } from '@flexilib/contract';

/** Turns the text of a flag or variable into its value; throws a usage error naming `name` (the flag or variable). */
export type Parser<T> = (text: string, name: string) => T;

export interface Setting<T> {
  /** The long flag without its dashes; absent for a variable only (ADMIN_TOKEN: a secret stays out of `ps`). */
  flag?: string;
  short?: string;
  /** Its environment variable; absent for a flag only (--help). */
  env?: string;
  /** The value's placeholder in help (N, MS, FILE); absent for a flag without a value. */
  arg?: string;
  /** Parses the flag's or variable's text; absent for a flag without a value and no variable. */
  parse?: Parser<T>;
  /** For a flag without a value (--no-watch, --help): the value its presence gives. */
  given?: T;
  /** The value when neither flag nor variable is set; a function for one computed at start (the CPU count). */
  default: T | (() => T);
  /** The default as help and the docs show it. */
  shown: string;
  /** Help lines, each at most ~45 characters so the [ENV, default] note fits beside the last. */
  help: string[];
  /** A fuller sentence for docs/operations.md's table; the help lines joined otherwise. */
  docs?: string;
  group: SettingGroup;
}

/** Help and the docs list settings by group, in this order. */
export const GROUPS = {
  server: 'Server',
  requests: 'Requests and connections',
  admin: 'Admin listener',
  cluster: 'Cluster (docs/cluster.md)',
  supervision: 'Supervision',
  logs: 'Logs and metrics',
  command: 'Command',
} as const;
export type SettingGroup = keyof typeof GROUPS;

export type SettingTable = Record<string, Setting<unknown>>;
/** The values a table resolves to, one per entry, typed by its parser. */
export type ValuesOf<S extends SettingTable> = { [K in keyof S]: S[K] extends Setting<infer T> ? T : never };

/** Infers an entry's value type from its parser (and checks the default against it). */
export function setting<T>(s: Setting<T>): Setting<T> {
  return s;
}

/** A bad flag or variable: FLX_USAGE, exit code 2. */
export function usage(message: string): FlexiError {
  return new FlexiError('FLX_USAGE', message);
}

/** How a setting is named in an error: its flag, else its variable. */
export function nameOf(s: Setting<unknown>): string {
  return s.flag ? `--${s.flag}` : s.env!;
}
