/** Reads a table of settings from argv and the environment: flag, else variable, else default. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { usage, type Setting, type SettingTable, type ValuesOf } from './setting.js';

type Options = NonNullable<ParseArgsConfig['options']>;
type Given = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** parseArgs options for the table's flags. */
export function optionsOf(table: SettingTable): Options {
  const options: Options = {};
  for (const s of Object.values(table)) {
    if (s.flag) options[s.flag] = { type: s.arg ? 'string' : 'boolean', ...(s.short ? { short: s.short } : {}) };
  }
  return options;
}

function valueOf<T>(s: Setting<T>, given: Given, env: NodeJS.ProcessEnv): T {
  const flagged = s.flag === undefined ? undefined : given[s.flag];
  if (flagged !== undefined) return typeof flagged === 'string' ? s.parse!(flagged, `--${s.flag}`) : (s.given as T);
  const fromEnv = s.env === undefined ? undefined : env[s.env];
  if (fromEnv !== undefined && fromEnv !== '') return s.parse!(fromEnv, s.env!);
  return typeof s.default === 'function' ? (s.default as () => T)() : s.default;
}

/**
 * The table's values from flags parseArgs already read (`given`) and `env`;
 * the first bad one throws naming it, after `command: ` when given (a subcommand).
 */
export function valuesOf<S extends SettingTable>(table: S, given: Given, env: NodeJS.ProcessEnv, command?: string): ValuesOf<S> {
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(table)) {
    try {
      out[key] = valueOf(s, given, env);
    } catch (err) {
      throw command ? usage(`${command}: ${(err as Error).message}`) : err;
    }
  }
  return out as ValuesOf<S>;
}

/** Parse `argv` (no positionals) against the table, then read every value. */
export function readSettings<S extends SettingTable>(table: S, argv: string[], env: NodeJS.ProcessEnv): ValuesOf<S> {
  let given;
  try {
    given = parseArgs({ args: argv, strict: true, allowPositionals: false, options: optionsOf(table) }).values;
  } catch (err) {
    throw usage(`${(err as Error).message} (see flexilib --help)`);
  }
  return valuesOf(table, given, env);
}
