/**
 * What the supervisor tells the rest of the process: every lifecycle event,
 * named once here. Subscribers (event-log.ts logs them, metrics/ counts them)
 * keep supervisor.ts free of logging and bookkeeping.
 */

/** Why a worker exited. */
export type WorkerExitReason =
  /** it died unexpectedly (signal or exit code) and is replaced */
  | 'crash'
  /** the supervisor is stopping */
  | 'stop'
  /** the supervisor retired it on purpose (e.g. a reload that replaces workers) */
  | 'retired';

export interface WorkerStartEvent {
  pid: number;
  /** node:cluster's worker id: unique for the supervisor's life, names the worker's run files */
  id: number;
  /** true when it replaces a worker that exited */
  restart: boolean;
}

export interface WorkerListeningEvent {
  pid: number;
  id: number;
  port: number;
  address: string;
}

export interface WorkerExitEvent {
  pid: number;
  id: number;
  code: number | null;
  signal: string | null;
  reason: WorkerExitReason;
  /** the route whose call was running when the worker crashed, when known */
  route?: string;
  /** the library of that route, when known */
  library?: string;
}

export interface ReadyEvent {
  port: number;
  adminPort: number | undefined;
  workers: number;
}

export interface ReloadEvent {
  /** the config file being (re)loaded */
  file: string;
  generation?: number;
}

export interface ReloadFailedEvent extends ReloadEvent {
  error: string;
}

export interface LibraryReloadedEvent {
  file: string;
  ok: boolean;
  error?: string;
}

export interface QuarantineEvent {
  library: string;
  route?: string;
  /** crashes counted against the library */
  crashes?: number;
  /** when the quarantine ends, ms since the epoch */
  until?: number;
}

export interface QuarantineLiftedEvent {
  library: string;
}

export interface StoppingEvent {
  signal: string;
}

/** Event name -> listener arguments, for EventEmitter<SupervisorEvents>. */
export interface SupervisorEvents {
  'worker-start': [WorkerStartEvent];
  'worker-listening': [WorkerListeningEvent];
  'worker-exit': [WorkerExitEvent];
  ready: [ReadyEvent];
  reloading: [ReloadEvent];
  reloaded: [ReloadEvent];
  'reload-failed': [ReloadFailedEvent];
  'library-reloaded': [LibraryReloadedEvent];
  quarantine: [QuarantineEvent];
  'quarantine-lifted': [QuarantineLiftedEvent];
  stopping: [StoppingEvent];
}
