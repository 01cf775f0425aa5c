/**
 * What a worker was doing when it died: its call marker (written by the worker
 * around every plugin call, see @flexilib/contract's marker-layout) read after the
 * death, mapped back to routes and libraries through the config generations.
 */
import { readFileSync, rmSync } from 'node:fs';
import { MARKER, readCalls } from '@flexilib/contract';
import type { ConfigGenerations } from './config-generations.js';
import type { CallAtDeath, ExitReason } from './events.js';

/** Signals a plugin's own fault raises. */
const CRASH_SIGNALS = new Set(['SIGSEGV', 'SIGBUS', 'SIGABRT', 'SIGFPE', 'SIGILL', 'SIGSYS', 'SIGTRAP']);

export interface Attribution {
  inCall: CallAtDeath[];
  /** The distinct libraries in a call. */
  libraries: string[];
}

/** Read (and remove) a dead worker's marker file and decode its calls in progress. */
export function attributeDeath(file: string, generations: ConfigGenerations): Attribution {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch {
    return { inCall: [], libraries: [] };
  }
  rmSync(file, { force: true });
  const inCall: CallAtDeath[] = readCalls(bytes).map((c) => {
    const mode = c.slot === MARKER.INLINE_SLOT ? ('inline' as const) : ('threaded' as const);
    const route = c.routeIndex === undefined ? undefined : generations.get(c.generation16)?.routes[c.routeIndex];
    if (!route) return { mode };
    return { mode, route: route.key, library: route.target.kind === 'native' ? route.target.library : undefined };
  });
  const libraries = [...new Set(inCall.flatMap((c) => (c.library ? [c.library] : [])))];
  return { inCall, libraries };
}

/** Classify an exit. `killedFor` is set when the supervisor killed it on purpose. */
export function exitReason(code: number | null, signal: string | null, stopping: boolean, killedFor: 'hang' | undefined, retired = false): ExitReason {
  if (killedFor === 'hang') return 'hang';
  if (stopping) return 'stopped';
  // A retired worker ends itself with SIGKILL; one that crashes meanwhile still crashed.
  if (retired && !(signal && CRASH_SIGNALS.has(signal))) return 'retired';
  if (signal) return CRASH_SIGNALS.has(signal) ? 'crash' : 'killed';
  void code;
  return 'exited';
}

/** Does this death count toward the quarantine of the libraries it was calling? */
export function countsAsPluginCrash(reason: ExitReason, attribution: Attribution): boolean {
  return attribution.libraries.length > 0 && (reason === 'crash' || reason === 'hang' || reason === 'exited');
}
