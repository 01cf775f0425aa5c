/**
 * Every event the Supervisor emits, with its payload: the one place a
 * subscriber (metrics, structured logs, tests) learns what happens to the
 * workers, the config and the libraries. Listeners run synchronously inside
 * the supervisor: keep them quick and never throw.
 *
 * @example
 *   supervisor.on('worker-exit', (e) => crashes.inc({ reason: e.reason, library: e.library ?? '' }));
 *   supervisor.on('quarantine', (e) => log.warn(e, 'quarantined'));
 *
 * Lifecycle of one worker:
 *
 *   worker-start ──> worker-listening ──> ... ──> worker-exit ──> worker-start (its replacement,
 *                                                                  after restartInMs)
 */
import type { ConfigProblem } from '@flexilib/contract';

/** Why a worker exited. */
export type ExitReason =
  /** Killed by a crash signal (SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGSYS, SIGTRAP). */
  | 'crash'
  /** Killed by another signal (SIGKILL from an operator or the OOM killer, SIGTERM, ...). */
  | 'killed'
  /** Exited by itself with `code` (a plugin calling exit(), a fatal JavaScript error). */
  | 'exited'
  /** Killed by the supervisor because an inline plugin call ran past --hang-timeout. */
  | 'hang'
  /** Exited during a graceful stop of the whole server. */
  | 'stopped'
  /** Replaced while alive because a threaded plugin call never returned, then drained and
   * ended (SIGKILL by itself when calls were still stuck); not a crash. */
  | 'retired';

/** A plugin call a worker was inside when it died (from its call marker). */
export interface CallAtDeath {
  /** The route's key in proxy.ini; undefined when the config generation is no longer known. */
  route?: string;
  /** The library's resolved path. */
  library?: string;
  /** 'inline' (on the event loop) or 'threaded' (on a pool thread). */
  mode: 'inline' | 'threaded';
}

export interface WorkerStartEvent {
  pid: number;
  /** node:cluster worker id (unique for the supervisor's life). */
  id: number;
  /** A spare: set up ahead, idle until a worker dies (it then listens: worker-listening). */
  standby: boolean;
  /** The worker this one replaces, when it is forked as a replacement (a spare's is known at worker-listening). */
  replaces?: { pid: number; id: number };
}

export interface WorkerListeningEvent {
  pid: number;
  id: number;
  port: number;
  /** Milliseconds from fork to listening. */
  startMs: number;
  /** For a replacement: milliseconds from the death of the worker it replaces to listening. */
  sinceDeathMs?: number;
  /** For a replacement: the worker it replaces. */
  replaces?: { pid: number; id: number };
}

export interface WorkerExitEvent {
  pid: number;
  id: number;
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  /** Signal name, or null when it exited with a code. */
  signal: string | null;
  reason: ExitReason;
  /** The route and library of the plugin call it died in, when exactly one library was in a call. */
  route?: string;
  library?: string;
  /** Every call in progress at death (several with threaded routes). */
  inCall: CallAtDeath[];
  /** Whether this death counted toward the library's quarantine (crash, hang or exit inside exactly one library). */
  counted: boolean;
  /** Milliseconds until its replacement listens (a spare) or is forked (0: at once); undefined when it is not replaced (stopping). */
  restartInMs?: number;
  /** Milliseconds the worker lived. */
  uptimeMs: number;
}

export interface ReadyEvent {
  port: number;
  host: string;
  workers: number;
  adminPort: number | undefined;
  config: string;
}

export interface ReloadingEvent {
  /** What asked for the reload. */
  trigger: 'SIGHUP';
}

export interface ReloadedEvent {
  /** The new config generation (0 at start, +1 per successful reload). */
  generation: number;
  config: string;
  routes: number;
  /** Libraries the watcher now follows. */
  libraries: string[];
  /** Workers that confirmed the switch / that were asked. */
  applied: number;
  workers: number;
  durationMs: number;
}

export interface ReloadFailedEvent {
  config: string;
  /** One error code: FLX_CONFIG_INVALID (problems listed) or FLX_CONFIG_READ. */
  code: string;
  message: string;
  /** Every problem with its line (FLX_CONFIG_INVALID). */
  problems: ConfigProblem[];
}

export interface LibraryReloadedEvent {
  /** The library's resolved path. */
  file: string;
  /** True when every worker that had it loaded loaded the new version. */
  ok: boolean;
  /** Why not (the first worker's error, or the supervisor's own check of the file). */
  error?: string;
  /** Workers asked (0 when the file failed the supervisor's check and no worker was asked). */
  workers: number;
  /** Workers that had the library loaded and switched to the new version. */
  loaded: number;
  /** Milliseconds from the file change (end of debounce) to every worker's answer. */
  durationMs: number;
}

export interface QuarantineEvent {
  library: string;
  /** Crashes counted within the window. */
  crashes: number;
  windowS: number;
  /** Routes now answering 503. */
  routes: string[];
  /** The one-line reason the routes answer with. */
  reason: string;
}

export interface QuarantineLiftedEvent {
  library: string;
  /** 'file-changed': a new build was written; 'sighup': the config was reloaded. */
  why: 'file-changed' | 'sighup';
}

export interface StoppingEvent {
  signal: string;
  /** --drain-timeout. */
  deadlineMs: number;
  workers: number;
}

export interface StoppedEvent {
  /** The exit code the process exits with: 0 drained in time, 1 forced. */
  code: number;
  /** Workers killed at the deadline or by a second signal. */
  forced: number;
  durationMs: number;
}

/** Event name -> listener arguments (node's typed EventEmitter map). */
export interface SupervisorEvents {
  /** A worker process was forked (a serving one, or a spare). */
  'worker-start': [WorkerStartEvent];
  /** A worker's server listens on the shared port. */
  'worker-listening': [WorkerListeningEvent];
  /** A worker process ended, for any reason; attribution included. */
  'worker-exit': [WorkerExitEvent];
  /** Every worker listens for the first time (once per run; systemd READY=1). */
  ready: [ReadyEvent];
  /** A config reload started (SIGHUP; systemd RELOADING=1). */
  reloading: [ReloadingEvent];
  /** The new config is valid and every worker switched to it. */
  reloaded: [ReloadedEvent];
  /** The new config is invalid or unreadable; the old one keeps serving. */
  'reload-failed': [ReloadFailedEvent];
  /** A watched library file changed and the workers were asked to reload it (or it failed the check). */
  'library-reloaded': [LibraryReloadedEvent];
  /** A library crashed workers too often: its routes answer 503 in every worker. */
  quarantine: [QuarantineEvent];
  /** A quarantine ended. */
  'quarantine-lifted': [QuarantineLiftedEvent];
  /** A graceful stop began (SIGTERM/SIGINT; systemd STOPPING=1). */
  stopping: [StoppingEvent];
  /** Every worker is gone; the process exits with `code` right after. */
  stopped: [StoppedEvent];
}
